//! End-to-end tests of `cudapkgs nar` and `cudapkgs store path` against a real Nix.

mod common;

use std::process::Command;

use common::{fixture, run, s};

#[test]
fn nar_dump_and_store_path_equal_nix() {
    let nix = Command::new("nix-store")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        nix || std::env::var_os("CI").is_none(),
        "nix-store is missing: CI must install nix-bin"
    );
    if !nix {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let pkg = dir.path().join("cuda-fixtures");
    std::fs::create_dir_all(pkg.join("lib")).expect("mkdir");
    std::fs::copy(fixture("multiarch.so"), pkg.join("lib/libmulti.so")).expect("copy");
    std::os::unix::fs::symlink("libmulti.so", pkg.join("lib/libmulti.so.1")).expect("link");

    let expected = Command::new("nix-store")
        .arg("--dump")
        .arg(&pkg)
        .output()
        .expect("nix-store");
    let ours = Command::new(env!("CARGO_BIN_EXE_cudapkgs"))
        .args(["nar", "dump", s(&pkg)])
        .output()
        .expect("cudapkgs");
    assert!(ours.status.success());
    assert_eq!(ours.stdout, expected.stdout);

    let root = dir.path().join("root");
    let added = Command::new("nix-store")
        .env("NIX_CONFIG", "substituters = ")
        .args([
            "--add",
            "--store",
            &format!("local?root={}", root.display()),
        ])
        .arg(&pkg)
        .output()
        .expect("nix-store --add");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let (code, stdout, _) = run(&["store", "path", s(&pkg)]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), String::from_utf8_lossy(&added.stdout).trim());

    // What Nix dumps, cudapkgs restores, and the copy dumps to the same bytes.
    let restored = dir.path().join("restored");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cudapkgs"))
        .args(["nar", "restore", s(&restored)])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("cudapkgs");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), &expected.stdout)
        .expect("write");
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());
    let again = Command::new("nix-store")
        .arg("--dump")
        .arg(&restored)
        .output()
        .expect("nix-store");
    assert_eq!(again.stdout, expected.stdout);

    let (code, _, stderr) = run(&["store", "path", "--name", ".bad name", s(&pkg)]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid store path name `.bad name`"),
        "{stderr}"
    );
}
