use std::path::{Path, PathBuf};

use cudapkgs_nix::store_path::source_path;

use super::locks::lock_file;
use super::*;

fn open(dir: &Path, access: Access) -> Result<Store, Error> {
    Store::open_with(
        "/nix/store",
        Some(&dir.join("root")),
        &dir.join("state"),
        access,
    )
}

/// A tree under its final name, complete and read-only, as an add leaves it between
/// its rename and its registration.
fn place_by_hand(store: &Store, name: &str) -> (String, PathBuf) {
    let path = source_path("/nix/store", name, &[7; 32], &[], false).expect("path");
    let physical = store.physical(&path);
    std::fs::create_dir(&physical).expect("mkdir");
    std::fs::write(physical.join("file"), name).expect("write");
    copy::make_read_only(&physical).expect("read-only");
    (path, physical)
}

#[test]
fn temporaries_are_judged_by_their_owners_lock_not_by_a_process_id() {
    let dir = tempfile::tempdir().expect("temp");
    let store = open(dir.path(), Access::Create).expect("open");
    let folder = store.physical_folder();
    // Above any PID this machine hands out: a process of another PID namespace (a
    // container sharing the store), whose PID cannot be looked up here.
    let owner = "4194305.1.2";
    let temporary = folder.join(format!("{TEMP_PREFIX}{owner}-3-4"));
    std::fs::create_dir(&temporary).expect("mkdir");
    let held = lock_file(&store.owner_lock(owner), true, true)
        .expect("lock")
        .expect("taken");
    drop(open(dir.path(), Access::Existing).expect("open"));
    assert!(temporary.exists(), "its owner is alive: its lock is held");
    drop(held);
    drop(open(dir.path(), Access::Existing).expect("open"));
    assert!(!temporary.exists(), "its owner is gone");
    assert!(!store.owner_lock(owner).exists(), "and so is its lock");
    // An older version's temporary, named by a dead process's ID, goes too; the
    // work folders of a live open stay, and the open's lock goes with the last.
    let legacy = folder.join(format!("{TEMP_PREFIX}4194305-1-2"));
    std::fs::create_dir(&legacy).expect("mkdir");
    let work = store.work_dir().expect("work");
    let mine = store.owner_lock(&store.owner.as_ref().expect("owner").0);
    drop(store);
    drop(open(dir.path(), Access::Existing).expect("open"));
    assert!(!legacy.exists());
    assert!(work.path().is_dir() && mine.exists());
    drop(work);
    assert!(!mine.exists());
    // What sits at a lock's name but is no plain file locks nothing: a folder, a
    // link to nowhere.
    for (owner, make) in [("4194305.5.6", "folder"), ("4194305.7.8", "link")] {
        let store = open(dir.path(), Access::Existing).expect("open");
        let lock = store.owner_lock(owner);
        let temporary = folder.join(format!("{TEMP_PREFIX}{owner}-1-1"));
        std::fs::create_dir(&temporary).expect("mkdir");
        match make {
            "folder" => std::fs::create_dir(&lock).expect("mkdir"),
            _ => std::os::unix::fs::symlink("nowhere", &lock).expect("link"),
        }
        drop(store);
        drop(open(dir.path(), Access::Existing).expect("a writing open works"));
        assert!(
            lock.symlink_metadata().is_err() && !temporary.exists(),
            "{make}"
        );
    }
}

#[test]
fn a_pending_tree_is_work_in_progress_until_its_owner_is_gone() {
    let dir = tempfile::tempdir().expect("temp");
    let store = open(dir.path(), Access::Create).expect("open");
    // An add killed after placing its tree, before registering it.
    let (path, physical) = place_by_hand(&store, "killed");
    store.mark_pending(&path).expect("mark");
    drop(store);
    let reader = open(dir.path(), Access::ReadOnly).expect("open");
    assert_eq!(
        reader
            .verify(false, &cudapkgs_report::Silent)
            .expect("verify")
            .problems,
        []
    );
    // While the path's lock is held, its add is still at work: the tree stays.
    let held = lock_path(&physical, true).expect("lock");
    drop(open(dir.path(), Access::Existing).expect("open"));
    assert!(physical.exists());
    drop(held);
    // Once it is free, the next writing open removes the tree and the mark.
    let store = open(dir.path(), Access::Existing).expect("open");
    assert!(!physical.exists());
    assert_eq!(store.pending().expect("pending"), Vec::<String>::new());
    assert_eq!(
        store
            .verify(false, &cudapkgs_report::Silent)
            .expect("verify")
            .problems,
        []
    );
}

#[test]
fn a_collection_killed_before_removing_leaves_nothing_the_next_open_keeps() {
    let dir = tempfile::tempdir().expect("temp");
    let source = dir.path().join("source");
    std::fs::write(&source, "collected").expect("write");
    let mut store = open(dir.path(), Access::Create).expect("open");
    let path = store
        .add(&source, "source", &Scan::Nothing, None)
        .expect("add");
    // What a collection does first: unregister, and mark the tree pending.
    store
        .unregister(&[(path.to_string(), 0)])
        .expect("unregister");
    drop(store);
    // The database registers nothing, but the store path in the folder is pending:
    // not someone else's, and not refused.
    let store = open(dir.path(), Access::Existing).expect("open");
    assert!(!store.physical(&path).exists());
    assert_eq!(
        store
            .verify(false, &cudapkgs_report::Silent)
            .expect("verify")
            .problems,
        []
    );
}

#[test]
fn removals_stay_inside_the_store_folder() {
    let dir = tempfile::tempdir().expect("temp");
    let store = open(dir.path(), Access::Create).expect("open");
    let outside = dir.path().join("root/outside");
    std::fs::write(&outside, "not the store's").expect("write");
    for path in [
        "/nix/store/../outside",
        "/nix/store/..",
        "/nix/store/.",
        "/nix/store/",
        "/nix/store/a/b",
        "/nix/storefront",
        "/etc/passwd",
    ] {
        assert_eq!(store.entry(path), None, "{path}");
    }
    // A mark naming something else is dropped without removing anything.
    store.mark_pending("/nix/store/../outside").expect("mark");
    drop(store);
    let store = open(dir.path(), Access::Existing).expect("open");
    assert!(outside.exists());
    assert_eq!(store.pending().expect("pending"), Vec::<String>::new());
    assert!(matches!(
        store.remove_unregistered("/nix/store/../outside"),
        Err(Error::Database(_))
    ));
    assert!(outside.exists());
}

#[test]
fn a_store_opened_read_only_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    let source = dir.path().join("source");
    std::fs::write(&source, "a file").expect("write");
    let path = open(dir.path(), Access::Create)
        .expect("open")
        .add(&source, "source", &Scan::Nothing, Some("kept"))
        .expect("add");
    let mut store = open(dir.path(), Access::ReadOnly).expect("open");
    let refused = [
        store.add(&source, "other", &Scan::Nothing, None).err(),
        store.collect_garbage(false).err(),
        store.verify(true, &cudapkgs_report::Silent).err(),
        store.work_dir().err(),
        store.add_root("r", &path).err(),
        store.remove_root("kept").err(),
    ];
    for error in refused {
        assert!(matches!(error, Some(Error::ReadOnly(_))), "{error:?}");
    }
    // What it can do, it does.
    assert_eq!(store.collect_garbage(true).expect("dry run").alive, 1);
    assert_eq!(store.roots().expect("roots").len(), 1);
}

#[test]
fn unknown_store_paths_beside_an_empty_database_are_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let store = open(dir.path(), Access::Create).expect("open");
    let (_, physical) = place_by_hand(&store, "foreign");
    drop(store);
    let database = dir.path().join("state/db.sqlite");
    for access in [Access::Create, Access::Existing] {
        assert!(
            matches!(
                open(dir.path(), access),
                Err(Error::UnknownPaths { count: 1, .. })
            ),
            "{access:?}"
        );
    }
    // Nor does a missing database get created beside them.
    std::fs::remove_file(&database).expect("rm");
    assert!(matches!(
        open(dir.path(), Access::Create),
        Err(Error::UnknownPaths { .. })
    ));
    assert!(!database.exists());
    assert!(physical.exists());
}
