//! A store's database describes one store folder: a folder of someone's files, a copy
//! of a store, a mistyped store folder beside a real one, or the logical folder given
//! without its `--root` is refused before anything is changed, so that no collection
//! judges a folder by another store's list of valid paths.

use crate::common;

use std::path::Path;

use common::{run, s};

/// A small tree to add.
fn source(dir: &Path) -> std::path::PathBuf {
    let source = dir.join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(source.join("f"), "x\n").expect("write");
    source
}

/// The names in `folder`, sorted.
fn names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .collect();
    names.sort();
    names
}

fn refused(args: &[&str], why: &str) {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 2, "{args:?} must be refused: {stdout}{stderr}");
    assert!(stderr.contains(why), "{args:?}: {stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
}

#[test]
fn a_folder_of_someones_files_is_not_made_a_store() {
    let dir = tempfile::tempdir().expect("temp");
    let src = source(dir.path());
    let home = dir.path().join("home/me");
    std::fs::create_dir_all(home.join("project")).expect("mkdir");
    std::fs::write(home.join("project/main.c"), "int main;\n").expect("write");
    std::fs::write(home.join("notes.txt"), "notes\n").expect("write");
    refused(
        &["store", "add", s(&src), "--store-dir", s(&home)],
        "is no store folder: it holds 2 entries that are no store paths",
    );
    assert_eq!(names(&home), ["notes.txt", "project"]);
    assert!(
        !dir.path().join("home/var").exists(),
        "no database was created"
    );
}

#[test]
fn a_copy_of_a_store_is_not_judged_by_the_originals_database() {
    let dir = tempfile::tempdir().expect("temp");
    let src = source(dir.path());
    let old = dir.path().join("old");
    let (code, _, stderr) = run(&[
        "store",
        "add",
        s(&src),
        "--store-dir",
        s(&old.join("store")),
        "--gc-root",
        "keep",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let new = dir.path().join("new");
    let copied = std::process::Command::new("cp")
        .args(["-a", s(&old), s(&new)])
        .status()
        .expect("cp");
    assert!(copied.success());
    let store = new.join("store");
    let before = names(&store);
    assert_eq!(
        before.len(),
        2,
        "the mark and the path (its add removed the path's lock file): {before:?}"
    );
    let described = format!("describes the store folder {}", s(&old.join("store")));
    for command in [
        &["gc"][..],
        &["store", "verify"],
        &["store", "verify", "--repair"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--store-dir", s(&store)]);
        refused(&args, &described);
    }
    assert_eq!(names(&store), before);
}

#[test]
fn a_mistyped_store_folder_beside_the_real_one_is_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let src = source(dir.path());
    let real = dir.path().join("store");
    let (code, path, stderr) = run(&["store", "add", s(&src), "--store-dir", s(&real)]);
    assert_eq!(code, 0, "{stderr}");
    // Both folders' default database is <parent>/var/cudapkgs: the unrooted path of the
    // real store was collected by a collection of the other one.
    let typo = dir.path().join("stor");
    refused(
        &["store", "add", s(&src), "--store-dir", s(&typo)],
        "describes the store folder",
    );
    assert!(!typo.exists(), "no folder was created for the typo");
    let (code, info, stderr) = run(&["path-info", path.trim(), "--store-dir", s(&real)]);
    assert_eq!(code, 0, "{info}{stderr}");
    // A second store beside the first, with its own database, is fine.
    let (code, _, stderr) = run(&[
        "store",
        "add",
        s(&src),
        "--store-dir",
        s(&typo),
        "--state-dir",
        s(&dir.path().join("state2")),
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_logical_folder_without_its_root_is_refused_and_a_moved_store_is_taken_over() {
    let dir = tempfile::tempdir().expect("temp");
    let src = source(dir.path());
    // The logical store folder also exists on this machine, with somebody else's path.
    let logical = dir.path().join("nix/store");
    let theirs = logical.join("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-glibc-2.40");
    std::fs::create_dir_all(theirs.join("lib")).expect("mkdir");
    std::fs::write(theirs.join("lib/libc.so.6"), "libc\n").expect("write");
    let chroot = dir.path().join("chroot");
    let (code, path, stderr) = run(&[
        "store",
        "add",
        s(&src),
        "--store-dir",
        s(&logical),
        "--root",
        s(&chroot),
        "--gc-root",
        "mine",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let state = chroot
        .join(dir.path().strip_prefix("/").expect("absolute"))
        .join("nix/var/cudapkgs");
    assert!(state.join("db.sqlite").is_file());
    refused(
        &["gc", "--store-dir", s(&logical), "--state-dir", s(&state)],
        "is not the one it was made for",
    );
    assert!(theirs.join("lib/libc.so.6").is_file());

    // Moved as a whole, the store is the same store at its new place (it carries its
    // mark), and so it is through a link left where it was.
    let moved = dir.path().join("moved");
    std::fs::rename(&chroot, &moved).expect("mv");
    let (code, stdout, stderr) = run(&[
        "--json",
        "gc",
        "--store-dir",
        s(&logical),
        "--root",
        s(&moved),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let collection: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(collection["kept"], 1, "{collection}");
    let name = path.trim().rsplit('/').next().expect("base");
    let physical = moved
        .join(logical.strip_prefix("/").expect("absolute"))
        .join(name);
    assert!(physical.join("f").is_file());
    assert!(theirs.join("lib/libc.so.6").is_file());
}

#[test]
fn a_moved_store_reached_through_a_link_is_the_same_store() {
    let dir = tempfile::tempdir().expect("temp");
    let src = source(dir.path());
    let home = dir.path().join("home");
    let store = home.join("store");
    let (code, _, stderr) = run(&[
        "store",
        "add",
        s(&src),
        "--store-dir",
        s(&store),
        "--gc-root",
        "k",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).expect("mkdir");
    std::fs::rename(&store, disk.join("store")).expect("mv");
    std::os::unix::fs::symlink(disk.join("store"), &store).expect("ln -s");
    for command in [
        &["gc"][..],
        &["store", "verify", "--repair"],
        &["store", "add", s(&src)],
    ] {
        let mut args = command.to_vec();
        args.extend(["--store-dir", s(&store)]);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
    }
}

#[test]
fn a_store_folder_is_claimed_by_one_database() {
    let dir = tempfile::tempdir().expect("temp");
    let src = source(dir.path());
    let other = dir.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("g"), "y\n").expect("write");
    let store = dir.path().join("store");
    let at = |state: &str, command: &[&str]| -> (i32, String, String) {
        let mut args = command.to_vec();
        let state = dir.path().join(state);
        args.extend(["--store-dir", s(&store), "--state-dir", s(&state)]);
        run(&args)
    };
    // The first database's only path is collected: the folder holds no store path,
    // and a second database is still refused (two first adds racing look the same).
    let (code, _, stderr) = at("s1", &["store", "add", s(&src)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(at("s1", &["gc"]).0, 0);
    let (code, _, stderr) = at("s2", &["store", "add", s(&other), "--gc-root", "theirs"]);
    common::assert_refused(code, &stderr, "is marked as the store of another database");
    assert!(
        !dir.path().join("s2").exists(),
        "no database was made for it"
    );

    // Wiped by hand and made anew by another database: the first one no longer
    // judges it.
    let (code, _, stderr) = at("s1", &["store", "add", s(&src), "--gc-root", "mine"]);
    assert_eq!(code, 0, "{stderr}");
    make_writable(&store);
    std::fs::remove_dir_all(&store).expect("rm -r");
    let (code, theirs, stderr) = at("s2", &["store", "add", s(&other), "--gc-root", "theirs"]);
    assert_eq!(code, 0, "{stderr}");
    for command in [
        &["gc"][..],
        &["store", "verify", "--repair"],
        &["store", "verify"],
    ] {
        let (code, _, stderr) = at("s1", command);
        assert_eq!(code, 2, "{command:?}: {stderr}");
    }
    assert!(Path::new(theirs.trim()).join("g").is_file());
}

/// Gives the owner write permission on everything under `root` (store paths are
/// read-only), so that a test can remove it.
fn make_writable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = root.symlink_metadata() else {
        return;
    };
    if metadata.is_symlink() {
        return;
    }
    let mode = metadata.permissions().mode() | 0o200;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if metadata.is_dir() {
        for entry in std::fs::read_dir(root).expect("list") {
            make_writable(&entry.expect("entry").path());
        }
    }
}

#[test]
fn a_copy_of_a_database_beside_its_original_is_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let src = source(dir.path());
    let original = dir.path().join("R");
    let at = |root: &Path, command: &[&str]| -> (i32, String, String) {
        let mut args = command.to_vec();
        args.extend(["--store-dir", "/nix/store", "--root", s(root)]);
        run(&args)
    };
    let (code, _, stderr) = at(&original, &["store", "add", s(&src), "--gc-root", "k"]);
    assert_eq!(code, 0, "{stderr}");
    // The store folder a link to another disk: a copy of the root reaches the same one.
    let disk = dir.path().join("disk");
    std::fs::rename(original.join("nix/store"), &disk).expect("mv");
    std::os::unix::fs::symlink(&disk, original.join("nix/store")).expect("ln -s");
    let copy = dir.path().join("R2");
    let copied = std::process::Command::new("cp")
        .args(["-a", s(&original), s(&copy)])
        .status()
        .expect("cp");
    assert!(copied.success());
    let before = names(&disk);
    for command in [
        &["gc"][..],
        &["store", "add", s(&src)],
        &["store", "verify", "--repair"],
    ] {
        let (code, _, stderr) = at(&copy, command);
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert!(stderr.contains("is a copy of"), "{stderr}");
    }
    assert_eq!(names(&disk), before);
    let (code, _, stderr) = at(&original, &["gc"]);
    assert_eq!(code, 0, "the original is still itself: {stderr}");
}
