//! `gpu-check` and `--gpu native` where the driver is missing or is not a driver: the
//! messages, exit codes and JSON error documents every machine can check. What they do
//! on a GPU is checked on the GPU machine (docs/gpu-check.md).

use crate::common;

use common::{run, s};

use serde_json::Value;

fn error_document(stdout: &str) -> Value {
    let document: Value = serde_json::from_str(stdout).expect("one JSON document");
    document["error"].clone()
}

#[test]
fn a_folder_without_the_driver_is_named_in_the_error() {
    let empty = tempfile::tempdir().expect("temp dir");
    let folder = s(empty.path());
    let (code, _, stderr) = run(&["gpu-check", "--driver-dir", folder, "./x"]);
    common::assert_refused(
        code,
        &stderr,
        &format!("no NVIDIA driver found (looked in {folder})"),
    );
    let (code, stdout, _) = run(&["--json", "gpu-check", "--driver-dir", folder, "./x"]);
    assert_eq!(code, 2);
    let error = error_document(&stdout);
    assert_eq!(
        error["message"],
        format!("no NVIDIA driver found (looked in {folder})")
    );
    assert!(
        error["hint"]
            .as_str()
            .is_some_and(|h| h.contains("--driver-dir"))
    );
    // libcuda.so is the linker's name (and the stubs'), never taken for the driver.
    std::fs::write(empty.path().join("libcuda.so"), b"").expect("write");
    let (code, _, stderr) = run(&["gpu-check", "--driver-dir", folder, "./x"]);
    common::assert_refused(code, &stderr, "no NVIDIA driver found");
}

#[test]
fn a_file_that_is_not_the_driver_is_refused_with_what_it_lacks() {
    let folder = tempfile::tempdir().expect("temp dir");
    let fake = folder.path().join("libcuda.so.1");
    std::fs::write(&fake, b"not a library").expect("write");
    let (code, _, stderr) = run(&["gpu-check", "--driver-dir", s(folder.path()), "./x"]);
    common::assert_refused(code, &stderr, &format!("cannot load {}", fake.display()));
    // A real shared library that is not the driver: loaded, and its lack named.
    let libz = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib64/libz.so.1",
        "/usr/lib/aarch64-linux-gnu/libz.so.1",
    ]
    .into_iter()
    .find(|path| std::path::Path::new(path).exists())
    .expect("zlib is installed");
    std::fs::copy(libz, &fake).expect("copy");
    let (code, _, stderr) = run(&["gpu-check", "--driver-dir", s(folder.path()), "./x"]);
    common::assert_refused(
        code,
        &stderr,
        &format!("{}: no symbol cuInit", fake.display()),
    );
}

#[test]
fn native_without_a_driver_fails_every_command_the_same_way() {
    // This machine's driver, if any, is found by the default search; only a machine
    // without one can show the message.
    let search = cudapkgs_gpu_search_finds_nothing();
    if !search {
        eprintln!("skipped: this machine has an NVIDIA driver; the GPU machine checks native");
        return;
    }
    let fixture = common::fixture("libscale_i.so");
    for args in [
        vec!["inspect", "--gpu", "native", s(&fixture)],
        vec!["prune", "--gpu", "native", "--dry-run", s(&fixture)],
        vec!["flags", "--gpu", "native"],
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("no NVIDIA driver found (looked in /run/opengl-driver/lib, /usr/lib/wsl/lib, /etc/ld.so.cache)"),
            "{args:?}: {stderr}"
        );
        let mut json = vec!["--json"];
        json.extend(&args);
        let (code, stdout, _) = run(&json);
        assert_eq!(code, 2);
        assert!(
            error_document(&stdout)["message"]
                .as_str()
                .is_some_and(|m| m.contains("no NVIDIA driver found")),
            "{stdout}"
        );
    }
}

/// Whether none of the places the driver search looks holds a `libcuda.so.1`.
fn cudapkgs_gpu_search_finds_nothing() -> bool {
    let (code, _, stderr) = run(&["gpu-check", "./x"]);
    code == 2 && stderr.contains("no NVIDIA driver found")
}
