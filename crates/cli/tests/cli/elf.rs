//! End-to-end tests of `cudapkgs elf`.

use crate::common;

use common::{fixture, run, s};

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Any real x86-64 shared library of this machine, to stand in for another.
fn some_library() -> PathBuf {
    [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("a libm to copy")
}

#[test]
fn shows_the_dynamic_view() {
    let (code, stdout, _) = run(&["elf", s(&fixture("multiarch.so"))]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(&format!(
            "{}: shared object, ELF64 x86_64",
            s(&fixture("multiarch.so"))
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("  needed       libcudart.so.13\n"),
        "{stdout}"
    );
    let (_, json, _) = run(&["elf", "--json", s(&fixture("app"))]);
    let report: Value = serde_json::from_str(&json).expect("json");
    let file = &report["files"][0];
    assert!(
        matches!(file["kind"].as_str(), Some("pie-executable" | "executable")),
        "{file}"
    );
    assert_eq!(file["class"], "ELF64");
    assert!(
        file["interpreter"]
            .as_str()
            .is_some_and(|i| i.contains("ld-linux"))
    );
}

#[test]
fn resolve_reports_missing_libraries_with_exit_1_and_finds_them_on_the_given_path() {
    let (code, stdout, _) = run(&[
        "elf",
        "--resolve",
        "--no-system",
        s(&fixture("multiarch.so")),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("libcudart.so.13 → NOT FOUND"), "{stdout}");

    let dir = tempfile::tempdir().expect("temp");
    for name in [
        "libcudart.so.13",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "libc.so.6",
    ] {
        std::fs::copy(some_library(), dir.path().join(name)).expect("copy");
    }
    let (code, stdout, _) = run(&[
        "elf",
        "--resolve",
        "--no-system",
        "--ld-library-path",
        s(dir.path()),
        "--json",
        s(&fixture("multiarch.so")),
    ]);
    assert_eq!(code, 0, "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("json");
    let resolved = report["files"][0]["resolved"].as_array().expect("resolved");
    assert!(
        resolved.iter().all(|r| r["via"] == "ld-library-path"),
        "{resolved:?}"
    );
    assert_eq!(report["summary"]["unresolved"], 0);
}

#[test]
fn driver_libraries_are_marked_and_stubs_are_problems() {
    let Some(patchelf) = cudapkgs_testkit::require_tool("patchelf") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let lib = dir.path().join("lib/libuser.so");
    std::fs::create_dir_all(dir.path().join("lib/stubs")).expect("mkdir");
    std::fs::copy(some_library(), &lib).expect("copy");
    // Two calls: patchelf 0.14 combining --add-needed and --set-rpath in one call
    // writes the needed name as the runpath.
    for args in [
        ["--add-needed", "libcuda.so.1"],
        ["--set-rpath", "$ORIGIN/stubs"],
    ] {
        let status = Command::new(&patchelf)
            .args(args)
            .arg(&lib)
            .status()
            .expect("patchelf");
        assert!(status.success());
    }

    let (code, stdout, _) = run(&["elf", "--resolve", "--no-system", s(&lib)]);
    assert!(
        stdout.contains("libcuda.so.1") && stdout.contains("driver library"),
        "{stdout}"
    );
    let needs_libc = stdout.contains("NOT FOUND");
    assert_eq!(code, i32::from(needs_libc), "{stdout}");

    std::fs::copy(some_library(), dir.path().join("lib/stubs/libcuda.so.1")).expect("copy");
    let (code, stdout, _) = run(&["elf", "--resolve", "--no-system", s(&lib)]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("PROBLEM: a stub, not the driver"),
        "{stdout}"
    );
}

#[test]
fn non_elf_and_missing_files_exit_2() {
    let dir = tempfile::tempdir().expect("temp");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").expect("write");
    let (code, _, stderr) = run(&["elf", s(&text)]);
    common::assert_refused(code, &stderr, "notes.txt: not an ELF file");
    let (code, _, stderr) = run(&["elf", "/nonexistent.so"]);
    common::assert_refused(code, &stderr, "No such file");
}
