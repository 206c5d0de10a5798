//! `cudapkgs check` on a store built from NVIDIA's CUDA runtime wheel: the `lib` output's
//! closure passes, the `out` output's (which links headers, the static library and the
//! rest) breaks the rules, each violation with the chain from the root; a policy file
//! and flags switch rules off and deny packages.

mod common;

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
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the CUDA runtime wheel is missing: run scripts/install-nvidia-tools.sh"
        );
        eprintln!("skipped: the CUDA runtime wheel is missing (scripts/install-nvidia-tools.sh)");
    }
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
    assert_eq!(code, 2);
    assert!(stderr.contains("--deny"), "{stderr}");
}
