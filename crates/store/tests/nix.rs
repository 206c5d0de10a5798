//! Differential tests against a real Nix 2.8 (Debian's nix-bin, installed by
//! scripts/test.sh): NAR bytes equal `nix-store --dump`, NAR hashes equal `nix-hash`,
//! and store paths equal what `nix-store --add` creates, in `/nix/store` and in another
//! store folder, on trees with symbolic links, executables, empty folders and odd names.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cudapkgs_nix::{base32, nar, store_path};
use cudapkgs_store::restore;

fn nix() -> bool {
    let found = Command::new("nix-store")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "nix-store is missing: CI must install nix-bin"
    );
    found
}

fn nix_command(program: &str) -> Command {
    let mut command = Command::new(program);
    // No substituter: a command must not try to reach the public cache.
    command.env(
        "NIX_CONFIG",
        "substituters = \nexperimental-features = nix-command",
    );
    command
}

/// A tree with every kind of node and names that sort in surprising ways.
fn odd_tree(root: &Path) -> PathBuf {
    let tree = root.join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(tree.join("empty")).expect("mkdir");
    for (name, size) in [
        ("zero", 0usize),
        ("one", 1),
        ("eight", 8),
        ("nine", 9),
        ("big", 100_003),
    ] {
        let bytes: Vec<u8> = (0..size)
            .map(|i| u8::try_from(i % 251).expect("byte"))
            .collect();
        std::fs::write(tree.join(name), bytes).expect("write");
    }
    for name in [
        "B",
        "a",
        "_",
        "Z",
        "-dash",
        "with space",
        "ünïcode",
        "sub/deeper/x.so.1",
    ] {
        std::fs::write(tree.join(name), name.as_bytes()).expect("write");
    }
    let exe = tree.join("run.sh");
    std::fs::write(&exe, "#!/bin/sh\necho hi\n").expect("write");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let group_exec = tree.join("group-only-exec");
    std::fs::write(&group_exec, "x").expect("write");
    std::fs::set_permissions(&group_exec, std::fs::Permissions::from_mode(0o654)).expect("chmod");
    std::os::unix::fs::symlink("sub/deeper/x.so.1", tree.join("link")).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/target", tree.join("dangling")).expect("symlink");
    std::os::unix::fs::symlink("../tree", tree.join("sub/loop")).expect("symlink");
    tree
}

#[test]
fn nar_bytes_and_hashes_equal_nix() {
    if !nix() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let tree = odd_tree(dir.path());
    for target in [
        tree.clone(),
        tree.join("big"),
        tree.join("link"),
        tree.join("empty"),
        tree.join("run.sh"),
    ] {
        let expected = nix_command("nix-store")
            .arg("--dump")
            .arg(&target)
            .output()
            .expect("nix-store");
        assert!(
            expected.status.success(),
            "{}",
            String::from_utf8_lossy(&expected.stderr)
        );
        let mut ours = Vec::new();
        nar::dump(&target, &mut ours).expect("dump");
        assert_eq!(ours, expected.stdout, "{}", target.display());

        let (hash, size) = nar::hash(&target).expect("hash");
        assert_eq!(size, ours.len() as u64);
        let theirs = nix_command("nix-hash")
            .args(["--type", "sha256", "--base32"])
            .arg(&target)
            .output()
            .expect("nix-hash");
        assert_eq!(
            base32::encode(&hash),
            String::from_utf8_lossy(&theirs.stdout).trim(),
            "{}",
            target.display()
        );
    }
}

#[test]
fn store_paths_equal_nix_store_add() {
    if !nix() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let tree = odd_tree(dir.path());
    for (store_dir, store) in [
        (
            store_path::NIX_STORE_DIR.to_owned(),
            format!("local?root={}", dir.path().join("root1").display()),
        ),
        (
            "/custom/store".to_owned(),
            format!(
                "local?root={}&store=/custom/store",
                dir.path().join("root2").display()
            ),
        ),
    ] {
        for target in [tree.clone(), tree.join("nine"), tree.join("run.sh")] {
            let output = nix_command("nix-store")
                .args(["--add", "--store", &store])
                .arg(&target)
                .output()
                .expect("nix-store");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let expected = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            let name = target.file_name().and_then(|n| n.to_str()).expect("name");
            let (hash, _) = nar::hash(&target).expect("hash");
            let ours = store_path::source_path(&store_dir, name, &hash, &[], false).expect("path");
            assert_eq!(ours, expected, "{}", target.display());
        }
    }
}

#[test]
fn unreadable_input_is_reported_with_the_path() {
    let err = nar::hash(Path::new("/nonexistent/tree")).expect_err("missing");
    // The message names the path; the operating system's reason is its source.
    assert_eq!(err.to_string(), "/nonexistent/tree");
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    let dir = tempfile::tempdir().expect("temp");
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let err = nar::hash(dir.path()).expect_err("fifo");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}

#[test]
fn restores_what_nix_dumps_and_dumps_it_back_identically() {
    if !nix() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let tree = odd_tree(dir.path());
    // The loop link points outside the tree once restored elsewhere; remove it.
    std::fs::remove_file(tree.join("sub/loop")).expect("rm");
    let archive = nix_command("nix-store")
        .arg("--dump")
        .arg(&tree)
        .output()
        .expect("nix-store")
        .stdout;
    let restored = dir.path().join("restored");
    restore::restore(archive.as_slice(), &restored).expect("restore");
    let mut again = Vec::new();
    nar::dump(&restored, &mut again).expect("dump");
    assert_eq!(again, archive);
    // Nix restores our NAR to the same tree.
    let mut ours = Vec::new();
    nar::dump(&tree, &mut ours).expect("dump");
    let by_nix = dir.path().join("by-nix");
    let mut child = nix_command("nix-store")
        .arg("--restore")
        .arg(&by_nix)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nix-store --restore");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), &ours).expect("write");
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());
    let mut from_nix = Vec::new();
    nar::dump(&by_nix, &mut from_nix).expect("dump");
    assert_eq!(from_nix, ours);
}

#[test]
fn hostile_archives_are_refused_with_the_offset() {
    let dir = tempfile::tempdir().expect("temp");
    let tree = odd_tree(dir.path());
    std::fs::remove_file(tree.join("sub/loop")).expect("rm");
    let mut good = Vec::new();
    nar::dump(&tree, &mut good).expect("dump");

    let cases = hostile_cases(&good);
    for (index, (bytes, expected)) in cases.iter().enumerate() {
        let target = dir.path().join(format!("case{index}"));
        let err = restore::restore(bytes.as_slice(), &target)
            .expect_err(expected)
            .to_string();
        assert!(
            err.starts_with("malformed NAR at offset 0x"),
            "{index}: {err}"
        );
        assert!(err.contains(expected), "{index}: {err}");
        assert!(
            target.symlink_metadata().is_err(),
            "{index}: a refused archive leaves nothing"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".cudapkgs"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let err = restore::restore(good.as_slice(), &tree).expect_err("exists");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains("already exists")),
        "{err}: {cause:?}"
    );
}

/// Archives a reader must refuse, each with the words of its refusal.
fn hostile_cases(good: &[u8]) -> Vec<(Vec<u8>, &'static str)> {
    let token = |text: &[u8]| {
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(text);
        out.resize(out.len() + (8 - text.len() % 8) % 8, 0);
        out
    };
    let archive = |parts: &[&[u8]]| parts.iter().flat_map(|p| token(p)).collect::<Vec<u8>>();
    // A folder's first entry named `name`, its node begun, then `rest`.
    let directory_entry = |name: &[u8], rest: &[&[u8]]| {
        let mut parts: Vec<&[u8]> = vec![
            b"nix-archive-1",
            b"(",
            b"type",
            b"directory",
            b"entry",
            b"(",
            b"name",
            name,
            b"node",
        ];
        parts.extend_from_slice(rest);
        archive(&parts)
    };
    vec![
        (good[..good.len() / 2].to_vec(), "ends"),
        (archive(&[b"nix-archive-2"]), "expected `nix-archive-1`"),
        (directory_entry(b"..", &[]), "invalid name `..`"),
        (directory_entry(b"a/b", &[]), "invalid name `a/b`"),
        (
            directory_entry(
                b"b",
                &[
                    b"(", b"type", b"symlink", b"target", b"x", b")", b")", b"entry", b"(",
                    b"name", b"a", b"node",
                ],
            ),
            "not in sorted order",
        ),
        (
            archive(&[b"nix-archive-1", b"(", b"type", b"fifo"]),
            "unknown node type `fifo`",
        ),
        (
            {
                let mut a = archive(&[b"nix-archive-1", b"(", b"type", b"symlink", b"target"]);
                a.extend_from_slice(&u64::MAX.to_le_bytes());
                a
            },
            "at most 4096",
        ),
        (
            {
                let mut a = good.to_vec();
                a.push(0);
                a
            },
            "bytes after the end",
        ),
    ]
}
