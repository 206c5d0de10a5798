//! `cudapkgs check` on a store built from NVIDIA's CUDA runtime wheel: the `lib` output's
//! closure passes, the `out` output's (which links headers, the static library and the
//! rest) breaks the rules, each violation with the chain from the root; a policy file
//! and flags switch rules off and deny packages.

use crate::common;

use std::path::{Path, PathBuf};

use common::{repo, run, s};

/// NVIDIA's CUDA runtime wheel, or `None` outside CI without it.
fn cudart_wheel() -> Option<PathBuf> {
    let folder = repo().join(".tools/nvidia/wheels");
    let found = std::fs::read_dir(&folder).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("nvidia_cuda_runtime-13"))
            })
    });
    cudapkgs_testkit::require(
        found.is_some(),
        "the CUDA runtime wheel (run scripts/install-nvidia-tools.sh)",
    );
    found
}

fn at(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let (store, state) = (dir.join("store"), dir.join("state"));
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all.extend(["--store-dir", s(&store), "--state-dir", s(&state)]);
    run(&all)
}

fn violations(stdout: &str) -> Vec<(String, String)> {
    let report: serde_json::Value = serde_json::from_str(stdout).expect("json");
    let mut found: Vec<(String, String)> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            let rule = v["rule"].as_str().expect("rule").to_owned();
            let file = v["file"].as_str().expect("file").to_owned();
            (rule, file)
        })
        .collect();
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    found
}

#[test]
fn the_runtime_closure_of_a_lib_output_passes_and_the_whole_package_does_not() {
    let Some(wheel) = cudart_wheel() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let input = format!("cuda_cudart={}", wheel.display());
    let (code, _, stderr) = at(
        dir.path(),
        &[
            "build",
            "--no-deps",
            &input,
            "--cache",
            s(&dir.path().join("cache")),
        ],
    );
    assert_eq!(code, 0, "{stderr}");

    let (code, stdout, stderr) = at(dir.path(), &["check", "cuda_cudart-lib"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(violations(&stdout), Vec::<(String, String)>::new());

    let (code, stdout, stderr) = at(dir.path(), &["check", "cuda_cudart"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let rules: Vec<String> = violations(&stdout)
        .into_iter()
        .map(|(rule, _)| rule)
        .collect();
    assert_eq!(rules, ["header", "static-library"], "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let header = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .find(|v| v["rule"] == "header")
        .expect("a header");
    assert!(
        header["file"]
            .as_str()
            .is_some_and(|f| f.starts_with("include/")),
        "{header}"
    );
    // The out output reaches the include output by a link it holds.
    let hop = &header["chain"][0];
    assert_eq!(hop["next"], header["path"], "{header}");
    assert!(
        hop["file"].as_str().is_some_and(|f| !f.is_empty()),
        "{header}"
    );

    // Rules switched off by a policy file and a flag; a denied package by name.
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "allow = [\"header\"]\ndeny = [\"cuda_cudart\"]\n").expect("write");
    let (code, stdout, _) = at(
        dir.path(),
        &[
            "check",
            "cuda_cudart",
            "--policy",
            s(&policy),
            "--allow",
            "static-library",
        ],
    );
    assert_eq!(code, 1);
    let rules: Vec<String> = violations(&stdout)
        .into_iter()
        .map(|(rule, _)| rule)
        .collect();
    assert_eq!(rules, ["denied"], "{stdout}");

    // Bad policies are refused, naming the file or the flag.
    std::fs::write(&policy, "allow = [\"headers\"]\n").expect("write");
    let (code, _, stderr) = at(
        dir.path(),
        &["check", "cuda_cudart", "--policy", s(&policy)],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("policy.toml") && stderr.contains("`headers`"),
        "{stderr}"
    );
    let (code, _, stderr) = at(dir.path(), &["check", "cuda_cudart", "--deny", "a/b"]);
    common::assert_refused(code, &stderr, "--deny");
}

/// NVIDIA's wheels of cuDNN 9 for CUDA 13, cuBLAS 13 and NVRTC 13, or `None` outside CI
/// without them.
fn cudnn_wheels() -> Option<Vec<PathBuf>> {
    let folder = repo().join(".tools/nvidia/wheels");
    let find = |prefix: &str| {
        std::fs::read_dir(&folder).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| {
                    path.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                })
        })
    };
    let wheels: Option<Vec<PathBuf>> = [
        "nvidia_cudnn_cu13-9",
        "nvidia_cublas-13",
        "nvidia_cuda_nvrtc-13",
    ]
    .iter()
    .map(|prefix| find(prefix))
    .collect();
    cudapkgs_testkit::require(
        wheels.is_some(),
        "the cuDNN, cuBLAS and NVRTC wheels (run scripts/install-nvidia-tools.sh)",
    );
    wheels
}

#[test]
fn a_pip_tree_is_checked_through_its_elf_graph_and_run_time_loads() {
    let Some(wheels) = cudnn_wheels() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let site = dir.path().join("site-packages");
    std::fs::create_dir(&site).expect("mkdir");
    for wheel in &wheels {
        let unzipped = std::process::Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(wheel)
            .arg(&site)
            .status()
            .expect("python3 runs");
        assert!(unzipped.success());
    }
    let front = site.join("nvidia/cudnn/lib/libcudnn.so.9");
    // The wheels name no driver folder: whether the driver is found depends on the
    // machine (check_driver.rs tests that rule).
    let (code, stdout, stderr) = run(&["--json", "check", s(&site), "--allow", "driver"]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // cuDNN's front library reaches cuBLASLt only through run-time loads: its
    // sub-libraries are loaded by name, and they load cuBLASLt.
    let (code, stdout, stderr) = run(&[
        "--json",
        "check",
        s(&front),
        "--deny",
        "cublasLt",
        "--allow",
        "driver",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let denied = &report["violations"][0];
    assert_eq!(denied["rule"], "denied");
    assert!(
        denied["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("/libcublasLt.so.13")),
        "{denied}"
    );
    let hops = denied["chain"].as_array().expect("chain");
    assert!(hops.len() >= 2, "through a sub-library: {denied}");
    assert!(
        hops[0]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("/libcudnn.so.9"))
            && hops[0]["loads"]
                .as_str()
                .is_some_and(|l| l.starts_with("libcudnn_")),
        "{denied}"
    );

    closure_by_distribution_and_why(&site, &front);

    // A needed library found nowhere, and a runpath into a stubs folder.
    let (code, _, stderr) = run(&[
        "patch",
        "--replace-needed",
        "librt.so.1",
        "libnot-there.so.1",
        "--add-runpath",
        "/usr/local/cuda/lib64/stubs",
        s(&front),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // A library of the tree needed without a runpath to it is found once its provider is
    // loaded (by its soname), as Python loads torch before torchvision: not found nowhere.
    let (code, _, stderr) = run(&[
        "patch",
        "--replace-needed",
        "libm.so.6",
        "libcublasLt.so.13",
        s(&front),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run(&["--json", "check", s(&site), "--allow", "driver"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let mut found: Vec<(&str, &str)> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().expect("rule"),
                v["detail"].as_str().expect("detail"),
            )
        })
        .collect();
    found.sort_unstable();
    assert_eq!(
        found,
        [
            ("stub-runpath", "/usr/local/cuda/lib64/stubs"),
            ("unresolved", "libnot-there.so.1")
        ]
    );
    let (code, _, stderr) = run(&["check", s(&front), "cuda_cudart"]);
    common::assert_refused(code, &stderr, "not both");
}

/// The closure of the installed tree by distribution, and `why` naming each hop's load.
fn closure_by_distribution_and_why(site: &Path, front: &Path) {
    // The same closure, by distribution, and `why` names each hop's load.
    let (code, stdout, stderr) = run(&["--json", "closure", s(site)]);
    assert_eq!(code, 0, "{stderr}");
    let closure: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let mut distributions: Vec<&str> = closure["by_distribution"]
        .as_array()
        .expect("by distribution")
        .iter()
        .filter_map(|d| d["distribution"].as_str())
        .collect();
    distributions.sort_unstable();
    assert_eq!(
        distributions,
        ["nvidia_cublas", "nvidia_cuda_nvrtc", "nvidia_cudnn_cu13"]
    );
    let total: u64 = closure["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["bytes"].as_u64().expect("bytes"))
        .sum();
    assert_eq!(closure["total_bytes"], total);
    let (code, stdout, stderr) = run(&["--json", "why", s(front), "libcublasLt.so.13"]);
    assert_eq!(code, 0, "{stderr}");
    let why: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let hops = why["chain"].as_array().expect("chain");
    assert_eq!(hops.len(), 2, "{why}");
    assert_eq!(hops[0]["at_run_time"], true);
    assert!(
        hops[1]["next"]
            .as_str()
            .is_some_and(|n| n.ends_with("/cu13/lib/libcublasLt.so.13")),
        "{why}"
    );
    let (code, _, _) = run(&["why", s(front), "libnot-there.so.1"]);
    assert_eq!(code, 1);
}

#[test]
fn fifos_are_no_libraries_and_unreached_files_provide_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    let tree = dir.path().join("tree");
    for folder in ["bin/lib", "other"] {
        std::fs::create_dir_all(tree.join(folder)).expect("mkdir");
    }
    // A program that needs libfoo.so from its own lib/ folder, where a FIFO has that
    // name; an unrelated library elsewhere in the tree is named libfoo.so too.
    let program = tree.join("bin/prog");
    std::fs::copy("/bin/true", &program).expect("copy /bin/true");
    let (code, _, stderr) = run(&[
        "patch",
        "--replace-needed",
        "libc.so.6",
        "libfoo.so",
        "--set-runpath",
        "$ORIGIN/lib",
        s(&program),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let fifo = tree.join("bin/lib/libfoo.so");
    cudapkgs_testkit::make_fifo(&fifo);
    let other = tree.join("other/libfoo.so");
    std::fs::copy(common::fixture("libscale_i.so"), &other).expect("copy");
    let (code, _, stderr) = run(&["patch", "--set-soname", "libfoo.so", s(&other)]);
    assert_eq!(code, 0, "{stderr}");
    let limit = std::time::Duration::from_secs(30);
    let (code, stdout, stderr) = common::run_within(limit, &[], &["--json", "check", s(&tree)]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let unresolved: Vec<&str> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter(|v| v["rule"] == "unresolved")
        .map(|v| v["detail"].as_str().expect("detail"))
        .collect();
    assert_eq!(unresolved, ["libfoo.so"], "{report}");
    let (code, _, stderr) = common::run_within(limit, &[], &["check", s(&fifo)]);
    common::assert_refused(code, &stderr, "neither a file nor a folder");
}

/// `tree/prog`, which needs `libA.so` from `tree/lib` and searches `$ORIGIN/lib`: a
/// runpath with `-Wl,--enable-new-dtags`, an rpath with `-Wl,--disable-new-dtags`. The
/// linker finds libA's own needs in `link_from`.
fn program_needing_lib_a(gcc: &Path, root: &Path, link_from: &str, dtags: &str) {
    let rpath_link = format!("-Wl,-rpath-link,{link_from}");
    common::compile(
        gcc,
        root,
        "m.c",
        "int a(void); int main(){return a();}",
        &[
            "-o",
            "tree/prog",
            "-Ltree/lib",
            "-lA",
            &rpath_link,
            "-Wl,-rpath,$ORIGIN/lib",
            dtags,
        ],
    );
}

#[test]
fn origin_is_the_folder_a_library_is_found_in_not_its_targets() {
    let Some(gcc) = common::tool("gcc") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path();
    for folder in ["tree/lib", "pkgs/A"] {
        std::fs::create_dir_all(root.join(folder)).expect("mkdir");
    }
    let compile = |source: &str, code: &str, args: &[&str]| {
        std::fs::write(root.join(source), code).expect("write");
        let built = std::process::Command::new(&gcc)
            .current_dir(root)
            .arg(source)
            .args(args)
            .status()
            .expect("gcc runs");
        assert!(built.success(), "gcc {source}");
    };
    compile(
        "b.c",
        "int b(void){return 0;}",
        &[
            "-shared",
            "-fPIC",
            "-o",
            "pkgs/A/libB.so",
            "-Wl,-soname,libB.so",
        ],
    );
    // libA finds libB beside itself: in pkgs/A, not beside the link that names it.
    compile(
        "a.c",
        "int b(void); int a(void){return b();}",
        &[
            "-shared",
            "-fPIC",
            "-o",
            "pkgs/A/libA.so",
            "-Wl,-soname,libA.so",
            "-Lpkgs/A",
            "-lB",
            "-Wl,-rpath,$ORIGIN",
            "-Wl,--enable-new-dtags",
        ],
    );
    std::os::unix::fs::symlink("../../pkgs/A/libA.so", root.join("tree/lib/libA.so"))
        .expect("link");
    program_needing_lib_a(&gcc, root, "pkgs/A", "-Wl,--enable-new-dtags");
    // The loader cannot start it: libA's $ORIGIN is tree/lib, where libB is not.
    let started = std::process::Command::new(root.join("tree/prog"))
        .output()
        .expect("runs");
    assert!(!started.status.success());
    let (code, stdout, stderr) = run(&["--json", "check", s(&root.join("tree"))]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["violations"][0]["rule"], "unresolved", "{report}");
    assert_eq!(report["violations"][0]["detail"], "libB.so", "{report}");
}

#[test]
fn a_programs_rpath_serves_the_libraries_it_loads_unless_they_have_a_runpath() {
    let Some(gcc) = common::gcc() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path();
    std::fs::create_dir_all(root.join("tree/lib")).expect("mkdir");
    common::compile(
        &gcc,
        root,
        "b.c",
        "int b(void){return 0;}",
        &[
            "-shared",
            "-fPIC",
            "-o",
            "tree/lib/libB.so",
            "-Wl,-soname,libB.so",
        ],
    );
    // libA needs libB and has no search list of its own (as auditwheel's vendored
    // libraries); the program's DT_RPATH finds both.
    let build = |a_runpath: Option<&str>| {
        let mut args = vec![
            "-shared",
            "-fPIC",
            "-o",
            "tree/lib/libA.so",
            "-Wl,-soname,libA.so",
            "-Ltree/lib",
            "-lB",
        ];
        let runpath = a_runpath.map(|r| format!("-Wl,-rpath,{r}"));
        if let Some(runpath) = &runpath {
            args.extend([runpath.as_str(), "-Wl,--enable-new-dtags"]);
        }
        common::compile(
            &gcc,
            root,
            "a.c",
            "int b(void); int a(void){return b();}",
            &args,
        );
        program_needing_lib_a(&gcc, root, "tree/lib", "-Wl,--disable-new-dtags");
    };
    let starts = || {
        std::process::Command::new(root.join("tree/prog"))
            .env_clear()
            .status()
            .expect("runs")
            .success()
    };
    build(None);
    assert!(
        starts(),
        "the loader finds libB through the program's RPATH"
    );
    let (code, stdout, stderr) = run(&["--json", "check", s(&root.join("tree"))]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // A RUNPATH of its own makes the loader ignore the RPATHs of those loading it.
    build(Some("/nonexistent"));
    assert!(!starts(), "the loader no longer finds libB");
    let (code, stdout, stderr) = run(&["--json", "check", s(&root.join("tree"))]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["violations"][0]["rule"], "unresolved", "{report}");
    assert_eq!(report["violations"][0]["detail"], "libB.so", "{report}");
}
