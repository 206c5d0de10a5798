//! End-to-end tests of `cudapkgs build`: real NVIDIA components from the loopback mirror
//! (`cudapkgs_testkit::mirror`, served by `cudapkgs_testkit::Server`), and a pair of
//! gcc-built libraries packed in NVIDIA's layout for dependencies between packages.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{mirror, mirror_with_cublas, nvidia_args, run, s, served_mirror};

fn build_json(args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = run(&[&["--json", "build"][..], args].concat());
    assert_eq!(code, 0, "{stderr}");
    common::schema::assert_fits("build", &stdout);
    serde_json::from_str(&stdout).expect("json")
}

fn output<'a>(built: &'a serde_json::Value, package: &str, name: &str) -> &'a str {
    built
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["package"] == package)
        .and_then(|p| p["outputs"][name].as_str())
        .unwrap_or_else(|| panic!("{package} {name} in {built}"))
}

/// Runpaths of the built runtime and nvrtc in the store under `root`; the patched nvrtc
/// finds its builtins beside itself and compiles a kernel.
fn check_runpaths_and_nvrtc(root: &Path, built: &serde_json::Value) {
    let physical = |path: &str| root.join(path.trim_start_matches('/'));
    let lib = output(built, "cuda_cudart", "lib");
    // Runpaths: $ORIGIN, then the driver folder for libraries that load the driver.
    let nvrtc_lib = physical(output(built, "cuda_nvrtc", "lib"));
    let (_, view, _) = run(&["--json", "elf", s(&nvrtc_lib.join("lib/libnvrtc.so.13"))]);
    let view: serde_json::Value = serde_json::from_str(&view).expect("json");
    // nvrtc names libcuda.so.1 too (it may load the driver), so it gets the folder.
    assert_eq!(
        view["files"][0]["runpath"],
        "$ORIGIN:/run/opengl-driver/lib"
    );
    let (_, view, _) = run(&[
        "--json",
        "elf",
        s(&physical(lib).join("lib/libcudart.so.13")),
    ]);
    let view: serde_json::Value = serde_json::from_str(&view).expect("json");
    assert_eq!(
        view["files"][0]["runpath"],
        "$ORIGIN:/run/opengl-driver/lib"
    );
    // The patched nvrtc finds its builtins beside itself and compiles a kernel.
    let ptx = cudapkgs_testkit::nvrtc_ptx(&nvrtc_lib.join("lib/libnvrtc.so.13"));
    assert_eq!(ptx.matches(".entry scale(").count(), 1, "{ptx}");
}

#[test]
fn real_packages_build_deterministically_with_small_closures() {
    let Some(server) = served_mirror() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let url = server.url();
    let cache = dir.path().join("cache");
    let args = |root: &Path| {
        let rest = [
            "--store-dir",
            "/nix/store",
            "--root",
            s(root),
            "--gpu",
            "H100",
        ];
        nvidia_args(
            &url,
            "13.0.2",
            &cache,
            &[&rest[..], &["cuda_cudart", "cuda_nvrtc"]].concat(),
        )
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = build_json(&strs(&args(&a)));
    let second = build_json(&strs(&args(&b)));
    assert_eq!(first, second, "two stores, the same paths");
    let cudart = &first[0];
    assert_eq!(cudart["package"], "cuda_cudart");
    let names: Vec<&String> = cudart["outputs"]
        .as_object()
        .expect("outputs")
        .keys()
        .collect();
    assert_eq!(names, ["dev", "include", "lib", "out", "static"]);
    // The static libraries carry relocatable SASS (sm_90 among it); nothing there is a
    // kernel the driver loads, so the H100 check has no kernel to look at.
    assert!(
        cudart["architectures"]["static"]
            .as_array()
            .is_some_and(|a| a.contains(&serde_json::json!("sm_90")))
    );
    assert_eq!(cudart["kernels_checked"], 0);
    // The second build downloaded nothing: each archive was fetched once.
    let log = server.requests();
    assert_eq!(
        log.iter().filter(|l| l.contains("-archive.tar.xz")).count(),
        2,
        "{log:?}"
    );

    // The lib output's closure is itself: no headers, static libraries or stubs.
    let lib = output(&first, "cuda_cudart", "lib");
    let closure = common::rooted_closure(&a, lib);
    assert_eq!(closure["paths"].as_array().map(Vec::len), Some(1));
    // dev needs lib and include (its pkg-config file names them); out needs everything.
    let dev = output(&first, "cuda_cudart", "dev");
    let (_, info, _) = run(&[
        "--json",
        "path-info",
        "--store-dir",
        "/nix/store",
        "--root",
        s(&a),
        dev,
    ]);
    let info: serde_json::Value = serde_json::from_str(&info).expect("json");
    let mut expected = vec![lib, output(&first, "cuda_cudart", "include")];
    expected.sort_unstable();
    assert_eq!(info[0]["references"], serde_json::json!(expected));
    let physical = |path: &str| a.join(path.trim_start_matches('/'));
    let out = physical(output(&first, "cuda_cudart", "out"));
    assert_eq!(
        std::fs::read_link(out.join("lib/libcudart.so.13")).expect("a link"),
        Path::new(lib).join("lib/libcudart.so.13")
    );

    check_runpaths_and_nvrtc(&a, &first);
}

/// Libraries of the C and C++ runtimes, which the system provides.
const SYSTEM: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "ld-linux-x86-64.so.2",
];

/// Build arguments for the three-package `mirror` (a `file://` one), its cache and store.
fn source_args(mirror: &Path, cache: &Path, store: &Path) -> Vec<String> {
    let base = format!("file://{}", mirror.display());
    nvidia_args(&base, "1.0.0", cache, &["--store-dir", s(store)])
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn sh(command: &mut Command) {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Packs `folder` (under `parent`) as `<mirror>/cuda/redist/<relative>`; returns the
/// manifest record.
fn pack(parent: &Path, folder: &str, mirror: &Path, relative: &str) -> serde_json::Value {
    let archive = mirror.join("cuda/redist").join(relative);
    std::fs::create_dir_all(archive.parent().expect("parent")).expect("mkdir");
    sh(Command::new("tar")
        .arg("-cJf")
        .arg(&archive)
        .arg("-C")
        .arg(parent)
        .arg(folder));
    let digest = Command::new("sha256sum")
        .arg(&archive)
        .output()
        .expect("sha256sum");
    let digest = String::from_utf8_lossy(&digest.stdout);
    let size = std::fs::metadata(&archive).expect("archive").len();
    serde_json::json!({
        "relative_path": relative,
        "sha256": digest.split_whitespace().next().expect("digest"),
        "size": size.to_string(),
    })
}

/// A mirror of three packages: `libfoo` (libfoo.so.1, and libkernels.so with device
/// code, which needs the CUDA runtime), the real `cuda_cudart` from `real`, and `libbar` (libbar.so.1, which
/// needs libfoo, and bin/bartool, which needs libbar), built with gcc.
/// `two_package_mirror` in a temporary folder, and the arguments that build from it
/// into a store there.
struct TwoPackages {
    _dir: tempfile::TempDir,
    mirror: PathBuf,
    store: PathBuf,
    args: Vec<String>,
}

impl TwoPackages {
    /// `None` as `mirror` says.
    fn new() -> Option<TwoPackages> {
        let real = mirror()?;
        let dir = tempfile::tempdir().expect("temp");
        let mirror = two_package_mirror(dir.path(), &real);
        let store = dir.path().join("store");
        let args = source_args(&mirror, &dir.path().join("cache"), &store);
        Some(TwoPackages {
            _dir: dir,
            mirror,
            store,
            args,
        })
    }
}

fn two_package_mirror(dir: &Path, real: &Path) -> PathBuf {
    let src = dir.join("src");
    let foo_pkg = src.join("libfoo-linux-x86_64-1.0-archive");
    let bar_pkg = src.join("libbar-linux-x86_64-2.0-archive");
    for folder in [
        foo_pkg.join("lib"),
        foo_pkg.join("include"),
        bar_pkg.join("lib"),
        bar_pkg.join("bin"),
    ] {
        std::fs::create_dir_all(folder).expect("mkdir");
    }
    std::fs::write(src.join("foo.c"), "int foo(void) { return 40; }\n").expect("write");
    // A library with kernels (SASS for 7.5 and 8.6, PTX for 8.6) for the target checks.
    std::fs::copy(
        common::fixture("multiarch.so"),
        foo_pkg.join("lib/libkernels.so"),
    )
    .expect("copy");
    std::fs::write(foo_pkg.join("include/foo.h"), "int foo(void);\n").expect("write");
    std::fs::write(
        src.join("bar.c"),
        "int foo(void);\nint bar(void) { return foo() + 2; }\n",
    )
    .expect("write");
    std::fs::write(
        src.join("tool.c"),
        "#include <stdio.h>\nint bar(void);\nint main(void) { printf(\"%d\\n\", bar()); return 0; }\n",
    )
    .expect("write");
    sh(Command::new("gcc")
        .args(["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-o"])
        .arg(foo_pkg.join("lib/libfoo.so.1"))
        .arg(src.join("foo.c")));
    sh(Command::new("gcc")
        .args(["-shared", "-fPIC", "-Wl,-soname,libbar.so.1", "-o"])
        .arg(bar_pkg.join("lib/libbar.so.1"))
        .arg(src.join("bar.c"))
        .arg(foo_pkg.join("lib/libfoo.so.1")));
    sh(Command::new("gcc")
        .arg("-o")
        .arg(bar_pkg.join("bin/bartool"))
        .arg(src.join("tool.c"))
        .arg(bar_pkg.join("lib/libbar.so.1"))
        .arg(format!("-Wl,-rpath-link,{}", foo_pkg.join("lib").display())));
    let mirror = dir.join("mirror");
    let foo_record = pack(
        &src,
        "libfoo-linux-x86_64-1.0-archive",
        &mirror,
        "libfoo/linux-x86_64/libfoo-linux-x86_64-1.0-archive.tar.xz",
    );
    let bar_record = pack(
        &src,
        "libbar-linux-x86_64-2.0-archive",
        &mirror,
        "libbar/linux-x86_64/libbar-linux-x86_64-2.0-archive.tar.xz",
    );
    // The real CUDA runtime, which libkernels.so needs.
    let real_manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(real.join("cuda/redist/redistrib_13.0.2.json")).expect("manifest"),
    )
    .expect("json");
    let cudart = real_manifest["cuda_cudart"].clone();
    let relative = cudart["linux-x86_64"]["relative_path"]
        .as_str()
        .expect("path");
    let copy = mirror.join("cuda/redist").join(relative);
    std::fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
    std::fs::copy(real.join("cuda/redist").join(relative), &copy).expect("copy");
    let manifest = serde_json::json!({
        "release_label": "1.0.0",
        "libfoo": {"name": "foo", "version": "1.0", "linux-x86_64": foo_record},
        "libbar": {"name": "bar", "version": "2.0", "linux-x86_64": bar_record},
        "cuda_cudart": cudart,
    });
    std::fs::write(
        mirror.join("cuda/redist/redistrib_1.0.0.json"),
        manifest.to_string(),
    )
    .expect("write");
    mirror
}

#[test]
fn libraries_needed_from_other_packages_resolve_through_runpaths_alone() {
    let Some(set) = TwoPackages::new() else {
        return;
    };
    let store = &set.store;
    let common = strs(&set.args);
    // Alone, libbar needs a library no package of the set provides, and no package of
    // NVIDIA's is known to have it: a problem found (exit 1), naming library and file.
    let (code, _, stderr) = run(&[&["build"][..], &common, &["libbar"]].concat());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "libbar: lib/lib/libbar.so.1 needs libfoo.so.1, which no package of the set provides (no package of NVIDIA's releases is known to have it)"
        ),
        "{stderr}"
    );
    // Named first, it is built last: after the runtime, then libfoo.
    let built = build_json(&[&common[..], &["libbar", "libfoo", "cuda_cudart"]].concat());
    let order: Vec<&str> = built
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["package"].as_str().expect("name"))
        .collect();
    assert_eq!(order, ["cuda_cudart", "libfoo", "libbar"]);
    assert_eq!(built[1]["depends_on"], serde_json::json!(["cuda_cudart"]));
    assert_eq!(built[2]["depends_on"], serde_json::json!(["libfoo"]));
    let foo_lib = output(&built, "libfoo", "lib");
    let bar_lib = output(&built, "libbar", "lib");
    let bar_bin = output(&built, "libbar", "bin");
    let (_, view, _) = run(&[
        "--json",
        "elf",
        &format!("{bar_lib}/lib/libbar.so.1"),
        &format!("{bar_bin}/bin/bartool"),
    ]);
    let view: serde_json::Value = serde_json::from_str(&view).expect("json");
    let runpath = |suffix: &str| {
        view["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
            .map(|f| f["runpath"].clone())
            .expect("the file")
    };
    assert_eq!(runpath("libbar.so.1"), format!("$ORIGIN:{foo_lib}/lib"));
    assert_eq!(runpath("bartool"), format!("{bar_lib}/lib"));
    // The program runs with an empty environment: every library found by runpath.
    let out = Command::new(format!("{bar_bin}/bin/bartool"))
        .env_clear()
        .output()
        .expect("runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    // Nothing needed is left unresolved without the system's folders but libc.
    let (_, resolved, _) = run(&["--json", "elf", "--resolve", "--no-system", s(store)]);
    let resolved: serde_json::Value = serde_json::from_str(&resolved).expect("json");
    for file in resolved["files"].as_array().expect("files") {
        for library in file["resolved"].as_array().into_iter().flatten() {
            if library["path"].is_null() {
                let name = library["name"].as_str().expect("name");
                assert!(
                    SYSTEM.contains(&name),
                    "{name} unresolved in {}",
                    file["path"]
                );
            }
        }
    }
    // References follow the runpaths: bar's lib needs foo's lib, bin needs bar's lib.
    let (_, closure, _) = run(&["--json", "closure", "--store-dir", s(store), bar_bin]);
    let closure: serde_json::Value = serde_json::from_str(&closure).expect("json");
    let mut paths: Vec<&str> = common::closure_paths(&closure);
    paths.sort_unstable();
    let mut expected = vec![
        foo_lib,
        bar_lib,
        bar_bin,
        output(&built, "cuda_cudart", "lib"),
    ];
    expected.sort_unstable();
    assert_eq!(paths, expected);
}

#[test]
fn kernels_without_an_image_for_the_requested_gpus_warn_or_fail() {
    let Some(real) = mirror() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let mirror = two_package_mirror(dir.path(), &real);
    let cache = dir.path().join("cache");
    // Each store in a folder of its own, with its own default database beside it.
    let at = |store: &str| source_args(&mirror, &cache, &dir.path().join(store).join("store"));
    let args = |store: &str, extra: &[&str]| -> Vec<String> {
        let mut all = vec!["build".to_owned()];
        all.extend(at(store));
        all.extend(extra.iter().map(|a| (*a).to_owned()));
        all.push("libfoo".to_owned());
        all.push("cuda_cudart".to_owned());
        all
    };
    // 8.6: exact SASS for every kernel.
    let ok = args("a", &["--capabilities", "8.6"]);
    let built = build_json(&strs(&ok)[1..]);
    let libfoo = built
        .as_array()
        .and_then(|list| list.iter().find(|p| p["package"] == "libfoo"))
        .expect("libfoo");
    assert_eq!(libfoo["kernels_checked"], 2, "{built}");
    assert_eq!(libfoo["kernels_without_image"], 0);
    assert_eq!(
        libfoo["architectures"]["lib"],
        serde_json::json!(["compute_86", "sm_75", "sm_86"])
    );
    // The plan names each archive, cached now; --all takes every package of the release.
    let mut plan = vec!["build".to_owned(), "--dry-run".to_owned()];
    plan.extend(at("d"));
    plan.push("--all".to_owned());
    let (code, text, stderr) = run(&strs(&plan));
    assert_eq!(code, 0, "{stderr}");
    let cases = [
        ("cuda_cudart 13.0.96", true),
        ("libfoo 1.0", true),
        ("libbar 2.0", false),
    ];
    for (package, cached) in cases {
        let line = text.lines().find(|l| l.starts_with(package));
        assert_eq!(
            line.map(|l| l.ends_with("(cached)")),
            Some(cached),
            "{text}"
        );
    }
    assert!(!dir.path().join("d").exists(), "a dry run touches no store");
    // 7.0: SASS only for newer GPUs and PTX for 8.6: no image; a warning by default.
    let warned = args("b", &["--capabilities", "7.0"]);
    let (code, _, stderr) = run(&strs(&warned));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("lib/lib/libkernels.so") && stderr.contains("has no image for 7.0"),
        "{stderr}"
    );
    // With --strict-targets the build fails and adds nothing.
    let strict = args("c", &["--capabilities", "7.0", "--strict-targets"]);
    let (code, _, stderr) = run(&strs(&strict));
    common::assert_refused(
        code,
        &stderr,
        "kernels have no usable image for the GPUs checked",
    );
    assert!(
        stderr.contains("hint: without --strict-targets they are warnings"),
        "{stderr}"
    );
    let store = dir.path().join("c/store");
    let added: Vec<_> = std::fs::read_dir(&store)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(added.is_empty(), "added despite the failure: {added:?}");
}

#[test]
fn cublas_brings_nvrtc_and_its_lib_closure_is_the_two_libraries() {
    let Some(mirror) = mirror_with_cublas() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let store = dir.path().join("store");
    let base = format!("file://{}", mirror.display());
    let args = nvidia_args(
        &base,
        "13.0.2",
        &dir.path().join("cache"),
        &["--store-dir", s(&store), "libcublas"],
    );
    let built = build_json(&strs(&args));
    // cuBLASLt loads NVRTC at run time: asked for cuBLAS alone, the build brings NVRTC.
    let nvrtc = built
        .as_array()
        .and_then(|all| all.iter().find(|p| p["package"] == "cuda_nvrtc"))
        .expect("cuda_nvrtc brought");
    assert_eq!(nvrtc["required_by"], serde_json::json!(["libcublas"]));
    let lib = output(&built, "libcublas", "lib");
    let (code, closure, _) = run(&["--json", "closure", "--store-dir", s(&store), lib]);
    assert_eq!(code, 0);
    let closure: serde_json::Value = serde_json::from_str(&closure).expect("json");
    // Its lib output and NVRTC's: no headers, static libraries or stubs.
    let mut paths = common::closure_paths(&closure);
    paths.sort_unstable();
    let mut expected = vec![lib, output(&built, "cuda_nvrtc", "lib")];
    expected.sort_unstable();
    assert_eq!(paths, expected, "{closure}");
    let files: Vec<String> = std::fs::read_dir(Path::new(lib).join("lib"))
        .expect("lib")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("libcublasLt.so.")),
        "{files:?}"
    );
    assert!(
        files.iter().all(|f| f.contains(".so")),
        "only shared libraries: {files:?}"
    );
    assert!(!Path::new(lib).join("include").exists() && !Path::new(lib).join("lib/stubs").exists());
    // libcublas.so finds libcublasLt beside itself.
    let (_, view, _) = run(&[
        "--json",
        "elf",
        "--resolve",
        "--no-system",
        &format!("{lib}/lib/libcublas.so.13"),
    ]);
    let view: serde_json::Value = serde_json::from_str(&view).expect("json");
    let lt = view["files"][0]["resolved"]
        .as_array()
        .and_then(|r| r.iter().find(|l| l["name"] == "libcublasLt.so.13"))
        .expect("libcublasLt needed");
    assert!(
        lt["path"].as_str().is_some_and(|p| p.starts_with(lib)),
        "{lt}"
    );
}

/// The `.cudapkgs-` temporaries in the store folder under `root`.
fn temporaries(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("nix/store"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                // The store's mark is no temporary.
                .filter(|name| name.starts_with(".cudapkgs-") && name != ".cudapkgs-store")
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_build_killed_at_any_moment_resumes_to_the_same_paths() {
    let Some(mirror) = mirror() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let base = format!("file://{}", mirror.display());
    let cache = dir.path().join("cache");
    let args = |root: &Path| {
        let rest = [
            "--store-dir",
            "/nix/store",
            "--root",
            s(root),
            "cuda_cudart",
            "cuda_nvrtc",
        ];
        [
            vec!["build".to_owned()],
            nvidia_args(&base, "13.0.2", &cache, &rest),
        ]
        .concat()
    };
    let reference_root = dir.path().join("reference");
    let started = std::time::Instant::now();
    let (code, reference, stderr) = run(&strs(&args(&reference_root)));
    assert_eq!(code, 0, "{stderr}");
    let warm = started.elapsed();
    // Kills spread over one and a half builds' time, into one store; a kill that lands
    // mid-build leaves its work folder, which the next run's opening of the store removes.
    let root = dir.path().join("killed");
    let kills = 8u32;
    let mut interrupted = 0;
    for i in 0..kills {
        let mut child = common::cudapkgs()
            .inherit_env()
            .command()
            .args(args(&root))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cudapkgs");
        std::thread::sleep(warm * 3 * i / (2 * kills));
        let _ = child.kill();
        let _ = child.wait();
        interrupted += usize::from(!temporaries(&root).is_empty());
    }
    assert!(interrupted > 0, "no kill landed in the middle of a build");
    let (code, resumed, stderr) = run(&strs(&args(&root)));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(resumed, reference, "the same store paths after the kills");
    let (code, report, _) = run(&[
        "store",
        "verify",
        "--store-dir",
        "/nix/store",
        "--root",
        s(&root),
    ]);
    assert_eq!(code, 0, "{report}");
    let leftovers = temporaries(&root);
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}

/// `libevil-linux-x86_64-1.0-archive.tar.xz` under `dir`, in NVIDIA's layout:
/// lib/libevil.so.1, built with gcc, whose needed `libm.so.6` is rewritten to `needed`.
fn package_needing(dir: &Path, needed: &str) -> PathBuf {
    let src = dir.join("src");
    let package = src.join("libevil-linux-x86_64-1.0-archive");
    std::fs::create_dir_all(package.join("lib")).expect("mkdir");
    std::fs::write(
        src.join("evil.c"),
        "double evil(double x) { return x * 2; }\n",
    )
    .expect("write");
    let library = package.join("lib/libevil.so.1");
    sh(Command::new("gcc")
        .args(["-shared", "-fPIC", "-Wl,-soname,libevil.so.1", "-o"])
        .arg(&library)
        .arg(src.join("evil.c"))
        .args(["-Wl,--no-as-needed", "-lm"]));
    if needed != "libm.so.6" {
        let (code, _, stderr) = run(&[
            "patch",
            "--replace-needed",
            "libm.so.6",
            needed,
            s(&library),
        ]);
        assert_eq!(code, 0, "{stderr}");
    }
    let relative = "libevil/linux-x86_64/libevil-linux-x86_64-1.0-archive.tar.xz";
    pack(
        &src,
        "libevil-linux-x86_64-1.0-archive",
        &dir.join("mirror"),
        relative,
    );
    dir.join("mirror/cuda/redist").join(relative)
}

/// The entries of the store folder `store` that belong to the package `libevil`.
fn added(store: &Path) -> Vec<String> {
    std::fs::read_dir(store)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains("libevil"))
                .collect()
        })
        .unwrap_or_default()
}

/// `build SPEC` into the store `dir/store`, with its cache in `dir/cache`, and `extra`.
fn build_local(dir: &Path, spec: &str, extra: &[&str]) -> (i32, String, String) {
    let (store, cache) = (dir.join("store"), dir.join("cache"));
    let args = [
        "build",
        spec,
        "--store-dir",
        s(&store),
        "--cache",
        s(&cache),
    ];
    run(&[&args[..], extra].concat())
}

#[test]
fn needed_paths_are_not_system_libraries() {
    for needed in ["/etc/hostname", "../../../../../../etc/passwd"] {
        let dir = tempfile::tempdir().expect("temp");
        let archive = package_needing(dir.path(), needed);
        let store = dir.path().join("store");
        let spec = format!("libevil={}", archive.display());
        let (code, _, stderr) = build_local(dir.path(), &spec, &[]);
        assert_eq!(code, 2, "{needed}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "libevil: lib/lib/libevil.so.1 needs `{needed}`, which is not a library file name"
            )),
            "{stderr}"
        );
        assert_eq!(added(&store), Vec::<String>::new(), "{needed}");
    }
    // The same package needing the library by its name builds.
    let dir = tempfile::tempdir().expect("temp");
    let archive = package_needing(dir.path(), "libm.so.6");
    let store = dir.path().join("store");
    let spec = format!("libevil={}", archive.display());
    let (code, _, stderr) = build_local(dir.path(), &spec, &["-v"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!added(&store).is_empty());
    // Each phase's time with -v, and one summary line at the end; a local archive is
    // no download.
    assert!(stderr.contains("\n  resolved 1 package in "), "{stderr}");
    let phases = stderr
        .lines()
        .find(|line| line.starts_with("  unpack "))
        .unwrap_or_else(|| panic!("no phase times: {stderr}"));
    for phase in ["unpack ", ", split ", ", patch and add "] {
        assert!(phases.contains(phase), "{phase}: {phases}");
    }
    assert!(phases.ends_with(" s"), "{phases}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("built 1 package (") && last.ends_with(" s, 0 downloaded"),
        "{stderr}"
    );
    assert!(!last.starts_with("built 1 package (0 B)"), "{last}");
}

#[test]
fn driver_folders_must_be_absolute_and_package_names_plain() {
    let dir = tempfile::tempdir().expect("temp");
    let archive = package_needing(dir.path(), "libm.so.6");
    let store = dir.path().join("store");
    let spec = format!("libevil={}", archive.display());
    for (driver_dir, problem) in [
        (
            "relative/lib",
            "driver folder `relative/lib` is not absolute",
        ),
        (
            "/opt/a:/opt/b",
            "driver folder `/opt/a:/opt/b` contains `:`",
        ),
    ] {
        let (code, _, stderr) = build_local(dir.path(), &spec, &["--driver-dir", driver_dir]);
        common::assert_refused(code, &stderr, problem);
        assert!(
            stderr.contains("--driver-dir takes an absolute folder"),
            "{stderr}"
        );
        assert_eq!(added(&store), Vec::<String>::new());
    }
    // A package name is a file name inside the build's work folder, never a path out.
    let spec = format!("../../escaped={}", archive.display());
    let (code, _, stderr) = build_local(dir.path(), &spec, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`../../escaped=") && stderr.contains("`: expected a package name first"),
        "{stderr}"
    );
    let escaped: Vec<_> = walk_names(dir.path())
        .into_iter()
        .filter(|name| name.contains("escaped"))
        .collect();
    assert!(
        escaped.is_empty(),
        "made outside the work folder: {escaped:?}"
    );
}

/// Every path under `dir`.
fn walk_names(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        found.push(path.display().to_string());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk_names(&path));
        }
    }
    found
}

#[test]
fn every_missing_library_is_named_at_once_and_known_providers_are_brought() {
    let Some(set) = TwoPackages::new() else {
        return;
    };
    let mirror = &set.mirror;
    let common = strs(&set.args);
    // libfoo's libkernels.so needs the CUDA runtime; NVIDIA's cuda_cudart provides it,
    // and the release has it: a second round brings it.
    let (code, stdout, stderr) = run(&[&["--json", "build"][..], &common, &["libfoo"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "libfoo: lib/lib/libkernels.so needs libcudart.so.13, which no package of the set provides (cuda_cudart provides it); adding it"
        ),
        "{stderr}"
    );
    common::schema::assert_fits("build", &stdout);
    let built: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let names: Vec<&str> = built
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["package"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["cuda_cudart", "libfoo"]);

    // Two packages that each need a library none of the set provides: both are named
    // in one run, with the package that has one, and nothing is added.
    let other = tempfile::tempdir().expect("temp");
    let evil = package_needing(other.path(), "libcublasLt.so.13");
    let bar = mirror.join("cuda/redist/libbar/linux-x86_64/libbar-linux-x86_64-2.0-archive.tar.xz");
    let (code, stdout, stderr) = run(&[
        "--json",
        "build",
        "--no-deps",
        &format!("libevil={}", evil.display()),
        &format!("libbar={}", bar.display()),
        "--store-dir",
        s(&other.path().join("store")),
        "--cache",
        s(&other.path().join("cache")),
    ]);
    assert_eq!(code, 1, "{stderr}");
    common::schema::assert_fits("build-unresolved", &stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(
        report["unresolved"],
        serde_json::json!([
            {"package": "libevil", "file": "lib/lib/libevil.so.1", "library": "libcublasLt.so.13", "provider": "libcublas"},
            {"package": "libbar", "file": "lib/lib/libbar.so.1", "library": "libfoo.so.1", "provider": null},
        ])
    );
    assert!(
        stderr.contains("libevil: lib/lib/libevil.so.1 needs libcublasLt.so.13, which no package of the set provides (libcublas provides it)"),
        "{stderr}"
    );
    assert_eq!(added(&other.path().join("store")), Vec::<String>::new());
}
