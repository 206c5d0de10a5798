//! The store as a library: real trees in temporary folders, added to a real SQLite
//! database, then verified, walked, collected.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cudapkgs_nix::{StorePath, nar};
use cudapkgs_store::store::{Access, Problem, Scan, Store};

/// A store with the logical folder `/nix/store`, kept under `dir/root`.
fn open(dir: &Path) -> Store {
    Store::open_with(
        "/nix/store",
        Some(&dir.join("root")),
        &dir.join("state"),
        Access::Create,
    )
    .expect("open")
}

/// A small tree at `dir/name` whose file `data` holds `text`.
fn tree(dir: &Path, name: &str, text: &str) -> PathBuf {
    let tree = dir.join("sources").join(name);
    std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
    std::fs::write(tree.join("data"), text).expect("write");
    std::fs::write(tree.join("sub/tool"), "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(
        tree.join("sub/tool"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::os::unix::fs::symlink("sub/tool", tree.join("link")).expect("link");
    tree
}

/// The entries of the store folder, sorted.
fn entries(store: &Store) -> Vec<String> {
    let folder = store.physical(store.folder());
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .expect("store folder")
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

/// The lock files of store paths in the store folder (an open's own owner lock, a
/// temporary's, aside).
fn lock_files(store: &Store) -> Vec<String> {
    entries(store)
        .into_iter()
        .filter(|name| {
            Path::new(name).extension().is_some_and(|e| e == "lock") && !name.starts_with('.')
        })
        .collect()
}

#[test]
fn an_added_tree_is_a_valid_path_with_its_nar_hash() {
    let dir = tempfile::tempdir().expect("temp");
    let mut store = open(dir.path());
    let source = tree(dir.path(), "hello", "hello\n");
    let path = store
        .add(&source, "hello", &Scan::Nothing, None)
        .expect("add");
    assert_eq!(path.dir(), "/nix/store");
    assert_eq!(path.name(), "hello");
    assert_eq!(StorePath::parse(path.as_str()).expect("parse"), path);
    let info = store.info(&path).expect("info").expect("valid");
    let (hash, size) = nar::hash(&source).expect("hash");
    assert_eq!(
        info.nar_hash,
        format!("sha256:{}", cudapkgs_nix::base32::encode(&hash))
    );
    assert_eq!(info.nar_size, size);
    assert!(info.references.is_empty());
    let stored = store.physical(&path);
    assert_eq!(
        std::fs::read_to_string(stored.join("data")).expect("read"),
        "hello\n"
    );
    assert_eq!(nar::hash(&stored).expect("hash"), (hash, size));
    assert_eq!(store.valid_paths().expect("valid"), [path.to_string()]);
}

#[test]
fn adding_the_same_tree_again_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    let mut store = open(dir.path());
    let source = tree(dir.path(), "same", "same\n");
    let first = store
        .add_with_info(&source, "same", &Scan::Nothing, None)
        .expect("add");
    let before = entries(&store);
    let again = store
        .add_with_info(&source, "same", &Scan::Nothing, None)
        .expect("add again");
    assert_eq!(again, first, "the same path, registered once");
    assert_eq!(entries(&store), before);
    assert_eq!(store.valid_paths().expect("valid").len(), 1);
    // Another open of the same store agrees.
    drop(store);
    let mut store = open(dir.path());
    let third = store
        .add(&source, "same", &Scan::Nothing, None)
        .expect("add");
    assert_eq!(third, first.path);
    assert_eq!(
        store
            .verify(false, &cudapkgs_report::Silent)
            .expect("verify")
            .problems,
        []
    );
}

#[test]
fn verify_finds_a_stored_file_that_changed() {
    let dir = tempfile::tempdir().expect("temp");
    let mut store = open(dir.path());
    let source = tree(dir.path(), "victim", "original\n");
    let path = store
        .add(&source, "victim", &Scan::Nothing, None)
        .expect("add");
    let clean = store
        .verify(false, &cudapkgs_report::Silent)
        .expect("verify");
    assert_eq!((clean.checked, clean.problems), (1, Vec::new()));
    let stored = store.physical(&path);
    let file = stored.join("data");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&file, "tampered\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let found = store
        .verify(false, &cudapkgs_report::Silent)
        .expect("verify");
    let [
        Problem::Changed {
            path: changed,
            registered,
            actual,
        },
    ] = &found.problems[..]
    else {
        panic!("one changed path: {:?}", found.problems);
    };
    assert_eq!(changed, &path.to_string());
    assert_ne!(registered, actual);
    // A repair only reports damaged valid paths: it never rewrites a tree.
    let repaired = store
        .verify(true, &cudapkgs_report::Silent)
        .expect("repair");
    assert_eq!(repaired.problems, found.problems);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "tampered\n");
}

#[test]
fn a_closure_follows_the_references_an_add_found() {
    let dir = tempfile::tempdir().expect("temp");
    let mut store = open(dir.path());
    let base = store
        .add(
            &tree(dir.path(), "base", "base\n"),
            "base",
            &Scan::Nothing,
            None,
        )
        .expect("add base");
    let middle = store
        .add(
            &tree(dir.path(), "middle", &format!("RUNPATH={base}/lib\n")),
            "middle",
            &Scan::EveryValidPath,
            None,
        )
        .expect("add middle");
    let top = store
        .add(
            &tree(dir.path(), "top", &format!("uses {middle}/bin\n")),
            "top",
            &Scan::ClosureOf(vec![middle.to_string()]),
            None,
        )
        .expect("add top");
    let unrelated = store
        .add(
            &tree(dir.path(), "unrelated", "nothing\n"),
            "unrelated",
            &Scan::EveryValidPath,
            None,
        )
        .expect("add unrelated");
    let info = |path: &StorePath| store.info(path).expect("info").expect("valid");
    assert_eq!(info(&middle).references, [base.to_string()]);
    assert_eq!(info(&top).references, [middle.to_string()]);
    assert!(info(&unrelated).references.is_empty());
    let mut closure: Vec<String> = store
        .closure(std::slice::from_ref(&top))
        .expect("closure")
        .into_iter()
        .map(|info| info.path)
        .collect();
    closure.sort();
    let mut expected = vec![base.to_string(), middle.to_string(), top.to_string()];
    expected.sort();
    assert_eq!(closure, expected);
    // A path that is not valid is named.
    let missing = store
        .parse_path(&format!("/nix/store/{}-gone", "0".repeat(32)))
        .expect("a store path");
    let error = store
        .closure(std::slice::from_ref(&missing))
        .expect_err("not valid");
    assert!(error.to_string().contains(missing.as_str()), "{error}");
}

#[test]
fn released_locks_leave_no_lock_files() {
    let dir = tempfile::tempdir().expect("temp");
    let mut store = open(dir.path());
    let kept = store
        .add(
            &tree(dir.path(), "kept", "kept\n"),
            "kept",
            &Scan::Nothing,
            Some("kept"),
        )
        .expect("add");
    store
        .add(
            &tree(dir.path(), "dropped", "dropped\n"),
            "dropped",
            &Scan::Nothing,
            None,
        )
        .expect("add");
    assert_eq!(lock_files(&store), Vec::<String>::new(), "after adds");
    store.collect_garbage(false).expect("collect");
    assert_eq!(
        lock_files(&store),
        Vec::<String>::new(),
        "after a collection"
    );
    // A lock file an older version left beside a path goes with the path's next lock.
    let doomed = store
        .add(
            &tree(dir.path(), "doomed", "doomed\n"),
            "doomed",
            &Scan::Nothing,
            None,
        )
        .expect("add");
    let stale = format!("{}.lock", store.physical(&doomed).display());
    std::fs::write(&stale, "").expect("stale lock");
    store.collect_garbage(false).expect("collect");
    assert!(Path::new(&stale).symlink_metadata().is_err(), "{stale}");
    let verified = store
        .verify(true, &cudapkgs_report::Silent)
        .expect("repair");
    assert_eq!(verified.problems, []);
    assert_eq!(lock_files(&store), Vec::<String>::new(), "after a repair");
    assert!(store.info(&kept).expect("info").is_some());
    // Once the store is closed, its own lock is gone too.
    let folder = store.physical(store.folder());
    drop(store);
    let left: Vec<_> = std::fs::read_dir(&folder)
        .expect("store folder")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| Path::new(name).extension().is_some_and(|e| e == "lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_collection_keeps_the_closures_of_roots_and_removes_the_rest() {
    let dir = tempfile::tempdir().expect("temp");
    let mut store = open(dir.path());
    let library = store
        .add(
            &tree(dir.path(), "library", "lib\n"),
            "library",
            &Scan::Nothing,
            None,
        )
        .expect("add library");
    let program = store
        .add(
            &tree(dir.path(), "program", &format!("needs {library}\n")),
            "program",
            &Scan::EveryValidPath,
            Some("program"),
        )
        .expect("add program");
    let garbage = store
        .add(
            &tree(dir.path(), "garbage", "junk\n"),
            "garbage",
            &Scan::Nothing,
            None,
        )
        .expect("add garbage");
    let other = store
        .add(
            &tree(dir.path(), "other", "other\n"),
            "other",
            &Scan::Nothing,
            None,
        )
        .expect("add other");
    store.add_root("other", &other).expect("root");
    assert!(store.remove_root("other").expect("unroot"));

    let dry = store.collect_garbage(true).expect("dry run");
    let mut dead: Vec<&str> = dry.dead.iter().map(|(path, _)| path.as_str()).collect();
    dead.sort_unstable();
    let mut expected = vec![garbage.as_str(), other.as_str()];
    expected.sort_unstable();
    assert_eq!(dead, expected);
    assert_eq!(dry.alive, 2);
    assert!(
        store.physical(&garbage).exists(),
        "a dry run removes nothing"
    );

    let collected = store.collect_garbage(false).expect("collect");
    assert_eq!(collected.dead, dry.dead);
    for gone in [&garbage, &other] {
        assert!(store.info(gone).expect("info").is_none(), "{gone}");
        assert!(store.physical(gone).symlink_metadata().is_err(), "{gone}");
    }
    for kept in [&program, &library] {
        assert!(store.info(kept).expect("info").is_some(), "{kept}");
        assert!(store.physical(kept).join("data").is_file(), "{kept}");
    }
    let roots = store.roots().expect("roots");
    assert_eq!(roots.len(), 1);
    assert_eq!(
        (roots[0].name.as_str(), &roots[0].path),
        ("program", &program.to_string())
    );
    assert_eq!(
        store
            .verify(false, &cudapkgs_report::Silent)
            .expect("verify")
            .problems,
        []
    );
}

#[test]
fn store_paths_are_parsed_against_the_stores_folder() {
    let dir = tempfile::tempdir().expect("temp");
    let store = open(dir.path());
    assert_eq!(store.store_dir().as_str(), "/nix/store");
    let good = format!("/nix/store/{}-x", "0".repeat(32));
    assert_eq!(store.parse_path(&good).expect("parse").as_str(), good);
    for bad in [
        format!("/other/store/{}-x", "0".repeat(32)),
        "/nix/store/short".to_owned(),
        "relative".to_owned(),
    ] {
        let error = store.parse_path(&bad).expect_err("refused");
        assert!(
            matches!(error, cudapkgs_store::Error::NotValid(ref p) if *p == bad),
            "{error}"
        );
    }
}
