//! Libraries loaded at run time keep working after cudapkgs rewrites runpaths: cuDNN's
//! front library `dlopen`s its sub-libraries by name and they load cuBLASLt and NVRTC, so
//! `patch --auto` over a venv's `nvidia/` tree and a build into the store must keep every
//! folder those loads need. Proven without a GPU: cuDNN reports its version and each
//! sub-library's version check passes, from a process with an empty environment.
//!
//! The wheels are NVIDIA's, from scripts/install-nvidia-tools.sh (cuDNN for CUDA 12 and
//! 13, cuBLAS and NVRTC for CUDA 13).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{repo, run, run_on_store, s};

/// The folder of NVIDIA's downloaded wheels, when installed (under CI it must be).
fn wheels() -> Option<PathBuf> {
    let folder = repo().join(".tools/nvidia/wheels");
    let present = [
        "nvidia_cudnn_cu12-9",
        "nvidia_cudnn_cu13-9",
        "nvidia_cublas-13",
        "nvidia_cuda_nvrtc-13",
    ]
    .iter()
    .all(|prefix| wheel(&folder, prefix).is_some());
    cudapkgs_testkit::require(
        present,
        "NVIDIA's wheels (run scripts/install-nvidia-tools.sh)",
    )
    .then_some(folder)
}

fn wheel(folder: &Path, prefix: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .ok()?
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "whl")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Unpacks the `nvidia/` part of each wheel into `site`, as pip would.
fn install(site: &Path, wheels: &[PathBuf]) {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    for path in wheels {
        let file = std::fs::File::open(path).expect("wheel");
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).expect("zip");
        for index in 0..zip.len() {
            let mut member = zip.by_index(index).expect("member");
            let name = member.name().to_owned();
            if !name.starts_with("nvidia/") || member.is_dir() {
                continue;
            }
            let target = site.join(&name);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            let mut bytes = Vec::new();
            member.read_to_end(&mut bytes).expect("read");
            std::fs::write(&target, bytes).expect("write");
            let mode = member.unix_mode().unwrap_or(0o644) & 0o777;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode | 0o600))
                .expect("chmod");
        }
    }
}

/// The real Python executable (not a shim that needs its environment).
fn python() -> PathBuf {
    let output = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    PathBuf::from(String::from_utf8(output.stdout).expect("utf-8").trim())
}

/// cuDNN's version and its four sub-library version checks, from `lib` loaded by a
/// process with an empty environment; `Err` with what went wrong.
fn cudnn_checks(lib: &Path) -> Result<String, String> {
    const SCRIPT: &str = "
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
checks = [getattr(lib, 'cudnn%sVersionCheck' % n)() for n in ('Graph', 'Ops', 'Cnn', 'Adv')]
print(lib.cudnnGetVersion(), *checks)
";
    let output = Command::new(python())
        .args(["-c", SCRIPT])
        .arg(lib)
        .env_clear()
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout} {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `92801 0 0 0 0`: a version of cuDNN 9 and four passed checks.
fn assert_cudnn_works(lib: &Path, when: &str) {
    let report = cudnn_checks(lib).unwrap_or_else(|e| panic!("{when}: cuDNN fails: {e}"));
    let fields: Vec<&str> = report.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{when}: {report}");
    assert!(fields[0].starts_with('9'), "{when}: version {report}");
    assert_eq!(&fields[1..], ["0", "0", "0", "0"], "{when}: {report}");
}

fn runpath_of(file: &Path) -> String {
    let (code, stdout, stderr) = run(&["--json", "elf", s(file)]);
    assert_eq!(code, 0, "{stderr}");
    let view: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let file = &view["files"][0];
    file["runpath"]
        .as_str()
        .or_else(|| file["rpath"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn patch_auto_keeps_cudnn_loading_its_sub_libraries_and_cublas() {
    let Some(wheels) = wheels() else { return };
    for (label, set) in [
        ("cuDNN for CUDA 12", vec!["nvidia_cudnn_cu12-9"]),
        (
            "cuDNN for CUDA 13 with cuBLAS and NVRTC",
            vec![
                "nvidia_cudnn_cu13-9",
                "nvidia_cublas-13",
                "nvidia_cuda_nvrtc-13",
            ],
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp");
        let site = dir.path().join("site-packages");
        let set: Vec<PathBuf> = set
            .iter()
            .map(|prefix| wheel(&wheels, prefix).expect("wheel"))
            .collect();
        install(&site, &set);
        let front = site.join("nvidia/cudnn/lib/libcudnn.so.9");
        assert_cudnn_works(&front, &format!("{label}, as installed"));
        let (code, _, stderr) = run(&["patch", "--auto", s(&site.join("nvidia"))]);
        assert_eq!(code, 0, "{label}: {stderr}");
        assert_cudnn_works(&front, &format!("{label}, after patch --auto"));
        assert_eq!(
            runpath_of(&front),
            "$ORIGIN",
            "{label}: the front library finds its sub-libraries beside it"
        );
        if site.join("nvidia/cu13/lib/libcublasLt.so.13").exists() {
            // The engines load cuBLASLt and NVRTC by name: their folder stays.
            let engines =
                runpath_of(&site.join("nvidia/cudnn/lib/libcudnn_engines_precompiled.so.9"));
            assert!(
                engines
                    .split(':')
                    .any(|entry| entry == "$ORIGIN/../../cu13/lib"),
                "{label}: {engines}"
            );
            // `elf --resolve` shows the loads: a stem the code completes with a version
            // as such, found through the runpath the automatic mode kept.
            let ext = site.join("nvidia/cudnn/lib/libcudnn_ext.so.9");
            let (code, text, stderr) = run(&["elf", "--resolve", s(&ext)]);
            assert_eq!(code, 0, "{label}: {stderr}");
            let nvrtc = text
                .lines()
                .map(|line| line.trim_start_matches("  dlopen").trim())
                .find(|line| line.starts_with("libnvrtc.so.* "));
            assert!(
                nvrtc.is_some_and(|line| line.contains("cu13/lib/libnvrtc.so.13")),
                "{label}: {text}"
            );
        }
        // The automatic mode is idempotent on the result.
        let (code, stdout, stderr) = run(&[
            "--json",
            "patch",
            "--auto",
            "--dry-run",
            s(&site.join("nvidia")),
        ]);
        assert_eq!(code, 0, "{label}: {stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        let changed: Vec<&serde_json::Value> = report["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter(|f| f["changed"].as_bool() == Some(true))
            .collect();
        assert!(
            changed.is_empty(),
            "{label}: a second run would change {changed:?}"
        );
    }
}

#[test]
fn shrink_runpath_keeps_the_folders_of_run_time_loads() {
    let Some(wheels) = wheels() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let site = dir.path().join("site-packages");
    let set: Vec<PathBuf> = [
        "nvidia_cudnn_cu13-9",
        "nvidia_cublas-13",
        "nvidia_cuda_nvrtc-13",
    ]
    .iter()
    .map(|prefix| wheel(&wheels, prefix).expect("wheel"))
    .collect();
    install(&site, &set);
    let front = site.join("nvidia/cudnn/lib/libcudnn.so.9");
    let engines = site.join("nvidia/cudnn/lib/libcudnn_engines_precompiled.so.9");
    for file in [&front, &engines] {
        let (code, _, stderr) = run(&["patch", "--shrink-runpath", s(file)]);
        assert_eq!(code, 0, "{stderr}");
    }
    assert_cudnn_works(&front, "after --shrink-runpath");
    assert_eq!(runpath_of(&front), "$ORIGIN");
    // cuBLASLt and NVRTC live in cu13/lib; the folders of other wheel layouts go.
    assert_eq!(runpath_of(&engines), "$ORIGIN:$ORIGIN/../../cu13/lib");
}

/// The store paths of `root`'s closure, by JSON.
fn closure(store: &Path, state: &Path, root: &str) -> Vec<String> {
    let (code, stdout, stderr) = run_on_store(store, state, &["--json", "closure", root]);
    assert_eq!(code, 0, "{stderr}");
    let closure: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    common::closure_paths(&closure)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The store path a root holds.
fn path_of(store: &Path, state: &Path, root: &str) -> String {
    let (code, stdout, stderr) = run_on_store(store, state, &["--json", "path-info", root]);
    assert_eq!(code, 0, "{stderr}");
    let infos: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    infos[0]["path"].as_str().expect("path").to_owned()
}

#[test]
fn cudnn_built_into_the_store_loads_cublas_and_nvrtc_from_their_outputs() {
    let Some(wheels) = wheels() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let (store, state) = (dir.path().join("store"), dir.path().join("state"));
    let input = |package: &str, prefix: &str| {
        format!(
            "{package}={}",
            wheel(&wheels, prefix).expect("wheel").display()
        )
    };
    let (cudnn, cublas, nvrtc) = (
        input("cudnn", "nvidia_cudnn_cu13-9"),
        input("libcublas", "nvidia_cublas-13"),
        input("cuda_nvrtc", "nvidia_cuda_nvrtc-13"),
    );
    let (code, _, stderr) = run_on_store(
        &store,
        &state,
        &[
            "build",
            &cudnn,
            &cublas,
            &nvrtc,
            "--cache",
            s(&dir.path().join("cache")),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let cudnn_closure = closure(&store, &state, "cudnn-lib");
    let lib_of = |root: &str| path_of(&store, &state, root);
    for needed in ["libcublas-lib", "cuda_nvrtc-lib"] {
        let path = lib_of(needed);
        assert!(
            cudnn_closure.contains(&path),
            "cuDNN's lib closure {cudnn_closure:?} lacks {needed} ({path})"
        );
    }
    let front = Path::new(&lib_of("cudnn-lib")).join("lib/libcudnn.so.9");
    assert_cudnn_works(&front, "from the store");
    let engines = runpath_of(&front.with_file_name("libcudnn_engines_precompiled.so.9"));
    assert!(
        engines.contains(&lib_of("libcublas-lib")) && engines.contains(&lib_of("cuda_nvrtc-lib")),
        "{engines}"
    );
    // `-lcudnn` links against the dev output (and the whole-package view), whose
    // unversioned links name the lib output; the program runs through its runpath.
    let dev = lib_of("cudnn-dev");
    let out = lib_of("cudnn");
    for (view, folder) in [("dev", format!("{dev}/lib")), ("out", format!("{out}/lib"))] {
        let link = Path::new(&folder).join("libcudnn.so");
        assert!(
            link.symlink_metadata().expect("there").is_symlink(),
            "{view}"
        );
        assert_eq!(
            std::fs::canonicalize(&link).expect("resolves"),
            Path::new(&lib_of("cudnn-lib")).join("lib/libcudnn.so.9"),
            "{view}"
        );
        let program = dir.path().join(format!("version-{view}"));
        let source = dir.path().join("version.c");
        std::fs::write(
            &source,
            "#include <stdio.h>\nsize_t cudnnGetVersion(void);\nint main(void) { printf(\"%zu\\n\", cudnnGetVersion()); return 0; }\n",
        )
        .expect("write");
        let linked = Command::new("gcc")
            .arg(&source)
            .arg(format!("-L{folder}"))
            .arg("-lcudnn")
            .arg(format!("-Wl,-rpath,{}/lib", lib_of("cudnn-lib")))
            .arg("-o")
            .arg(&program)
            .output()
            .expect("gcc runs");
        assert!(
            linked.status.success(),
            "{view}: {}",
            String::from_utf8_lossy(&linked.stderr)
        );
        let ran = Command::new(&program).env_clear().output().expect("runs");
        let printed = String::from_utf8_lossy(&ran.stdout);
        assert!(
            ran.status.success() && printed.starts_with('9'),
            "{view}: {printed}"
        );
    }
}
