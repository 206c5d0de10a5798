//! `cudapkgs check --capabilities/--gpu`: device code for exactly the GPUs requested, on
//! a folder (a program loading an nvcc-built library with SASS for sm_75 and sm_86 and
//! PTX for compute_86) and on a store path holding the same library. Requested and
//! missing: no kernel has an image the driver would load; present and not requested:
//! SASS or PTX no requested GPU loads, with its bytes as `inspect` counts them.

use crate::common;

use std::path::Path;

use common::{PrivateStore, run, s};

/// (rule, detail, bytes) of each violation, sorted.
fn violations(stdout: &str) -> Vec<(String, String, u64)> {
    let report: serde_json::Value = serde_json::from_str(stdout).expect("json");
    let mut found: Vec<(String, String, u64)> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().expect("rule").to_owned(),
                v["detail"].as_str().expect("detail").to_owned(),
                v["bytes"].as_u64().expect("bytes"),
            )
        })
        .collect();
    found.sort();
    found
}

/// The stored bytes `inspect` counts for `arch` in `file`.
fn inspected_bytes(file: &Path, arch: &str) -> u64 {
    let (code, stdout, stderr) = run(&["--json", "inspect", s(file)]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    report["summary"]["by_arch"]
        .as_array()
        .expect("by_arch")
        .iter()
        .find(|total| total["arch"] == arch)
        .and_then(|total| total["stored_bytes"].as_u64())
        .unwrap_or_else(|| panic!("no {arch} in {stdout}"))
}

/// A folder with `bin/prog`, a program that needs `lib/libmultiarch.so` (see
/// `common::multiarch_without_runtime`); returns the folder and the library.
fn tree_with_program(gcc: &Path, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("lib")).expect("mkdir");
    std::fs::create_dir_all(tree.join("bin")).expect("mkdir");
    let lib = tree.join("lib/libmultiarch.so");
    common::multiarch_without_runtime(&lib);
    common::compile(
        gcc,
        dir,
        "m.c",
        "int main(void){return 0;}",
        &[
            "-o",
            "tree/bin/prog",
            "-Wl,--no-as-needed",
            "-Ltree/lib",
            "-lmultiarch",
            // Its CUDA runtime symbols stay undefined: it is never run.
            "-Wl,--allow-shlib-undefined",
            "-Wl,-rpath,$ORIGIN/../lib",
        ],
    );
    (tree, lib)
}

#[test]
fn a_folder_holds_device_code_for_exactly_the_gpus_requested_or_says_what_differs() {
    let Some(gcc) = common::gcc() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let (tree, lib) = tree_with_program(&gcc, dir.path());
    let sm_75 = inspected_bytes(&lib, "sm_75");
    let sm_86 = inspected_bytes(&lib, "sm_86");
    let compute_86 = inspected_bytes(&lib, "compute_86");
    let size = std::fs::metadata(&lib).expect("size").len();
    let check = |targets: &[&str]| {
        let mut args = vec!["--json", "check", s(&tree)];
        args.extend_from_slice(targets);
        let (code, stdout, stderr) = run(&args);
        (code, stdout, stderr)
    };

    // Exactly the targets built: nothing to say.
    let (code, stdout, stderr) = check(&["--capabilities", "7.5,8.6"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(violations(&stdout), []);

    // 8.6 alone: the sm_75 SASS is for a GPU not requested; compute_86 is 8.6's.
    let (code, stdout, _) = check(&["--capabilities", "8.6"]);
    assert_eq!(code, 1);
    let unrequested = ("unrequested-target".to_owned(), "sm_75".to_owned(), sm_75);
    assert_eq!(violations(&stdout), std::slice::from_ref(&unrequested));
    // The chain names the program that loads the library.
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let violation = &report["violations"][0];
    assert!(
        violation["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("lib/libmultiarch.so"))
    );
    assert!(
        violation["start"]
            .as_str()
            .is_some_and(|f| f.ends_with("bin/prog"))
    );
    assert_eq!(
        violation["chain"][0]["loads"], "libmultiarch.so",
        "{violation}"
    );

    // A 9.0 GPU runs the compute_86 PTX, which is therefore not extra; both SASS are.
    let (code, stdout, _) = check(&["--gpu", "H100"]);
    assert_eq!(code, 1);
    assert_eq!(
        violations(&stdout),
        [
            unrequested.clone(),
            ("unrequested-target".to_owned(), "sm_86".to_owned(), sm_86),
        ]
    );

    // An 8.0 GPU has no image: SASS for 8.6 and PTX for 8.6 do not run on it.
    let (code, stdout, stderr) = check(&["--gpu", "A100", "--gpu", "T4"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        violations(&stdout),
        [
            ("missing-target".to_owned(), "8.0".to_owned(), size),
            (
                "unrequested-target".to_owned(),
                "compute_86".to_owned(),
                compute_86
            ),
            ("unrequested-target".to_owned(), "sm_86".to_owned(), sm_86),
        ]
    );
    let (code, stdout, _) = run(&["check", s(&tree), "--gpu", "A100"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("no image for a requested GPU `8.0`:") && stdout.contains("from "),
        "{stdout}"
    );

    switched_off_and_refused(&tree);
}

/// Rules switched off, and targets refused as other commands refuse them.
fn switched_off_and_refused(tree: &Path) {
    let check = |targets: &[&str]| {
        let mut args = vec!["--json", "check", s(tree)];
        args.extend_from_slice(targets);
        run(&args)
    };
    let (code, stdout, _) = check(&[
        "--capabilities",
        "8.0",
        "--allow",
        "missing-target",
        "--allow",
        "unrequested-target",
    ]);
    assert_eq!(code, 0, "{stdout}");
    let (code, _, stderr) = check(&["--capabilities", "8.8"]);
    common::assert_refused(code, &stderr, "--capabilities");
    let (code, _, stderr) = check(&["--gpu", "no such GPU"]);
    common::assert_refused(code, &stderr, "--gpu");
}

#[test]
fn a_store_path_holds_device_code_for_exactly_the_gpus_requested() {
    let dir = tempfile::tempdir().expect("temp");
    let package = dir.path().join("demo");
    std::fs::create_dir_all(package.join("lib")).expect("mkdir");
    let lib = package.join("lib/libmultiarch.so");
    common::multiarch_without_runtime(&lib);
    let sm_75 = inspected_bytes(&lib, "sm_75");
    let store = PrivateStore::under(dir.path());
    let path = store.add(&package);

    let (code, stdout, stderr) = store.run(&["check", &path, "--gpu", "RTX 3090"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(
        violations(&stdout),
        [("unrequested-target".to_owned(), "sm_75".to_owned(), sm_75)]
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["violations"][0]["file"], "lib/libmultiarch.so");
    assert_eq!(report["violations"][0]["path"], path.as_str());

    let (code, stdout, _) = store.run(&["check", &path, "--capabilities", "7.5 8.6"]);
    assert_eq!(code, 0, "{stdout}");
    // Without targets, device code is not judged.
    let (code, stdout, _) = store.run(&["check", &path]);
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = store.run(&["check", &path, "--capabilities", "8.0"]);
    assert_eq!(code, 1);
    assert!(
        violations(&stdout)
            .iter()
            .any(|(rule, detail, _)| rule == "missing-target" && detail == "8.0"),
        "{stdout}"
    );
}
