//! End-to-end tests of the store's default location, declared inputs, garbage-collector
//! roots, `cudapkgs gc` and `cudapkgs diff`.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{run, s};

/// Runs cudapkgs with only `XDG_DATA_HOME` set, so the store is the default one.
fn run_at(data_home: &Path, args: &[&str]) -> (i32, String, String) {
    common::cudapkgs()
        .args(args)
        .env("XDG_DATA_HOME", data_home)
        .run()
        .into_parts()
}

/// Adds a tree holding one file with `text`; returns its store path.
fn add_text(data_home: &Path, name: &str, text: &str, extra: &[&str]) -> String {
    let source = data_home.join("sources").join(name);
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(source.join("file"), text).expect("write");
    let args = [&["store", "add", "--name", name][..], extra, &[s(&source)]].concat();
    let (code, stdout, stderr) = run_at(data_home, &args);
    assert_eq!(code, 0, "{stderr}");
    stdout.trim().to_owned()
}

fn json(data_home: &Path, args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = run_at(data_home, &[&["--json"][..], args].concat());
    assert_eq!(code, 0, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).expect("json")
}

fn valid(data_home: &Path, path: &str) -> bool {
    run_at(data_home, &["path-info", path]).0 == 0
}

#[test]
fn the_default_store_lives_under_xdg_data_home_and_needs_a_home() {
    let dir = tempfile::tempdir().expect("temp");
    let path = add_text(dir.path(), "hello", "hi\n", &[]);
    let folder = format!("{}/cudapkgs/store/", dir.path().display());
    assert!(path.starts_with(&folder), "{path}");
    assert!(Path::new(&path).join("file").is_file());
    assert!(dir.path().join("cudapkgs/var/cudapkgs/db.sqlite").is_file());

    let (code, _, stderr) = run(&["store", "add", s(dir.path())]);
    common::assert_refused(code, &stderr, "neither XDG_DATA_HOME nor HOME");
}

#[test]
fn gc_keeps_the_closures_of_roots_and_removes_everything_else() {
    let dir = tempfile::tempdir().expect("temp");
    let home = dir.path();
    let lib = add_text(home, "lib", "a library\n", &[]);
    let unrelated = add_text(home, "unrelated", "not needed\n", &[]);
    // The app mentions both, but declares only the library as an input: only the
    // library becomes a reference.
    let app_text = format!("runpath {lib}/lib\nlog {unrelated}\n");
    let app = add_text(
        home,
        "app",
        &app_text,
        &["--input", &lib, "--gc-root", "app"],
    );
    let info = json(home, &["path-info", &app]);
    assert_eq!(info[0]["references"], serde_json::json!([lib]));
    // Scanning every valid path instead finds both (and gives another path).
    let scanned = add_text(home, "app", &app_text, &["--scan-references"]);
    assert_ne!(scanned, app);
    let info = json(home, &["path-info", &scanned]);
    let mut both = vec![lib.clone(), unrelated.clone()];
    both.sort();
    assert_eq!(info[0]["references"], serde_json::json!(both));

    // Named like a store path, unregistered: an interrupted add's, removed. Named like
    // nothing of the store's: somebody's, never touched.
    let stray = Path::new(&app).with_file_name("00000000000000000000000000000000-stray");
    std::fs::create_dir(&stray).expect("mkdir");
    let foreign = Path::new(&app).with_file_name("notes-by-hand");
    std::fs::write(&foreign, "mine\n").expect("write");

    let roots = json(home, &["store", "root", "list"]);
    assert_eq!(roots, serde_json::json!([{"name": "app", "path": app}]));

    let dry = json(home, &["gc", "--dry-run"]);
    let would: Vec<&str> = dry["removed"]
        .as_array()
        .expect("list")
        .iter()
        .map(|entry| entry["path"].as_str().expect("path"))
        .collect();
    let mut expected = vec![unrelated.as_str(), scanned.as_str()];
    expected.sort_unstable();
    assert_eq!(would, expected);
    assert_eq!(dry["unregistered_removed"], serde_json::json!([s(&stray)]));
    assert_eq!(dry["kept"], 2);
    assert!(valid(home, &unrelated) && Path::new(&unrelated).exists() && stray.exists());

    let done = json(home, &["gc"]);
    assert_eq!(done["removed"], dry["removed"]);
    assert!(!valid(home, &unrelated) && !Path::new(&unrelated).exists());
    assert!(!Path::new(&scanned).exists() && !stray.exists());
    assert_eq!(std::fs::read_to_string(&foreign).expect("kept"), "mine\n");
    assert!(valid(home, &app) && valid(home, &lib));
    let (code, report, stderr) = run_at(home, &["store", "verify"]);
    assert_eq!(code, 0, "{report}{stderr}");

    // Without its root, the app goes, and with it the library.
    assert_eq!(run_at(home, &["store", "root", "remove", "app"]).0, 0);
    let (code, _, stderr) = run_at(home, &["store", "root", "remove", "app"]);
    common::assert_refused(code, &stderr, "no root named `app`");
    let done = json(home, &["gc"]);
    assert_eq!(done["removed"].as_array().map(Vec::len), Some(2));
    let folder = Path::new(&app).parent().expect("store folder");
    let left: Vec<_> = std::fs::read_dir(folder)
        .expect("store folder")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(
        left,
        ["notes-by-hand", ".cudapkgs-store"],
        "left in the store: the user's file and the store's mark"
    );
}

#[test]
fn roots_refuse_invalid_paths_and_names() {
    let dir = tempfile::tempdir().expect("temp");
    let home = dir.path();
    let lib = add_text(home, "lib", "a library\n", &[]);
    let missing = format!("{}x", &lib[..lib.len() - 1]);
    let (code, _, stderr) = run_at(home, &["store", "root", "add", "r", &missing]);
    common::assert_refused(code, &stderr, "is not a valid path");
    let (code, _, stderr) = run_at(home, &["store", "root", "add", "a/b", &lib]);
    common::assert_refused(code, &stderr, "invalid root name `a/b`");
    let (code, _, stderr) = run_at(
        home,
        &["store", "add", "--name", "x", "--input", &missing, s(home)],
    );
    common::assert_refused(code, &stderr, "is not a valid path");
}

#[test]
fn diff_names_packages_added_removed_and_changed_with_sizes() {
    let dir = tempfile::tempdir().expect("temp");
    let home = dir.path();
    let old_lib = add_text(home, "foo-1.0-lib", "old\n", &[]);
    let new_lib = add_text(home, "foo-1.1-lib", "new and bigger\n", &[]);
    let bar = add_text(home, "bar-2.0", "bar\n", &[]);
    let baz = add_text(home, "baz-1", "baz\n", &[]);
    let before_text = format!("{old_lib} {bar}\n");
    let before = add_text(home, "env", &before_text, &["--scan-references"]);
    let after_text = format!("{new_lib} {baz}\n");
    let after = add_text(home, "env", &after_text, &["--scan-references"]);
    let size = |path: &str| {
        json(home, &["path-info", path])[0]["narSize"]
            .as_i64()
            .expect("size")
    };

    let report = json(home, &["diff", &before, &after]);
    let change = |package: &str| {
        report["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| c["package"] == package)
            .unwrap_or_else(|| panic!("{package} missing from {report}"))
            .clone()
    };
    let foo = change("foo");
    assert_eq!(foo["change"], "version");
    assert_eq!(foo["before"], serde_json::json!(["1.0"]));
    assert_eq!(foo["after"], serde_json::json!(["1.1"]));
    assert_eq!(foo["size_delta"], size(&new_lib) - size(&old_lib));
    assert_eq!(change("bar")["change"], "removed");
    assert_eq!(change("bar")["size_delta"], -size(&bar));
    assert_eq!(change("baz")["change"], "added");
    let total_before = size(&before) + size(&old_lib) + size(&bar);
    let total_after = size(&after) + size(&new_lib) + size(&baz);
    assert_eq!(report["size_delta"], total_after - total_before);
    assert_eq!(
        report["changes"].as_array().map(Vec::len),
        Some(3 + usize::from(size(&before) != size(&after)))
    );

    let (code, text, _) = run_at(home, &["diff", &before, &after]);
    assert_eq!(code, 0);
    assert!(text.contains("foo: 1.0 → 1.1, +"), "{text}");
    assert!(text.contains("bar: 2.0 → ∅, -"), "{text}");
    // The same closure on both sides: nothing changed.
    let same = json(home, &["diff", &after, &after]);
    assert_eq!(same["changes"], serde_json::json!([]));
    assert_eq!(same["size_delta"], 0);
}

#[test]
fn adding_again_puts_back_a_valid_path_deleted_behind_the_stores_back() {
    let dir = tempfile::tempdir().expect("temp");
    let home = dir.path();
    let path = add_text(home, "lib", "a library\n", &[]);
    let status = Command::new("chmod")
        .args(["-R", "u+w", &path])
        .status()
        .expect("chmod");
    assert!(status.success());
    std::fs::remove_dir_all(&path).expect("rm");
    let (code, report, _) = run_at(home, &["store", "verify"]);
    assert_eq!(code, 1);
    assert!(
        report.contains("registered but missing from disk"),
        "{report}"
    );
    assert_eq!(add_text(home, "lib", "a library\n", &[]), path);
    assert_eq!(
        std::fs::read_to_string(Path::new(&path).join("file")).expect("back"),
        "a library\n"
    );
    assert_eq!(run_at(home, &["store", "verify"]).0, 0);
}

/// Every entry of the store folder under `data_home`, sorted.
fn store_folder(data_home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_home.join("cudapkgs/store"))
        .expect("store folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != ".cudapkgs-store")
        .collect();
    names.sort();
    names
}

#[test]
fn a_missing_or_empty_database_beside_store_paths_is_refused_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().expect("temp");
    let home = dir.path().join("home");
    let kept = add_text(&home, "kept", "rooted\n", &["--gc-root", "kept"]);
    let loose = add_text(&home, "loose", "not rooted\n", &[]);
    let database = home.join("cudapkgs/var/cudapkgs/db.sqlite");
    let folder = store_folder(&home);
    // A database that registers nothing, with all its tables: another store's, whose
    // only path was collected.
    let other = dir.path().join("other");
    add_text(&other, "gone", "collected\n", &[]);
    assert_eq!(run_at(&other, &["gc"]).0, 0);
    let empty = std::fs::read(other.join("cudapkgs/var/cudapkgs/db.sqlite")).expect("read");
    let original = std::fs::read(&database).expect("read");

    let missing: &[u8] = &[];
    for (what, replacement) in [
        ("missing", None),
        ("empty", Some(missing)),
        ("without paths", Some(empty.as_slice())),
    ] {
        match replacement {
            None => std::fs::remove_file(&database).expect("rm"),
            Some(bytes) => std::fs::write(&database, bytes).expect("write"),
        }
        for command in [
            &["gc"][..],
            &["gc", "--dry-run"],
            &["store", "verify", "--repair"],
            &["store", "add", s(&home.join("sources/kept"))],
        ] {
            let (code, _, stderr) = run_at(&home, command);
            assert_eq!(code, 2, "{what}, {command:?}: {stderr}");
            // Without a file, only what creates a store looks at the folder; it and
            // everything else refuses a database that knows none of its paths.
            let refused = if what == "missing" && !command.contains(&"add") {
                format!("has no database at {}", database.display())
            } else if what == "without paths" {
                // Another store's: it says so before it looks at the folder.
                format!(
                    "describes the store folder {}",
                    other.join("cudapkgs/store").display()
                )
            } else {
                format!("such as {}", kept.as_str().min(loose.as_str()))
            };
            assert!(stderr.contains(&refused), "{what}, {command:?}: {stderr}");
            assert_eq!(store_folder(&home), folder, "{what}, {command:?}");
            let now = std::fs::read(&database).ok();
            assert_eq!(
                now.as_deref(),
                replacement,
                "{what}, {command:?} changed the database"
            );
        }
    }
    // With its own database back, the store collects as it should.
    std::fs::write(&database, original).expect("write");
    let done = json(&home, &["gc"]);
    assert_eq!(done["removed"][0]["path"], loose.as_str());
    assert!(valid(&home, &kept) && Path::new(&kept).exists());
}

#[test]
fn a_first_store_and_a_store_emptied_by_collections_are_not_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let home = dir.path();
    // Empty: nothing to protect. What is not named like a store path is never the
    // store's to remove.
    let path = add_text(home, "only", "collected\n", &[]);
    assert_eq!(json(home, &["gc"])["removed"][0]["path"], path.as_str());
    std::fs::write(home.join("cudapkgs/store/notes"), "by hand\n").expect("write");
    let done = json(home, &["gc"]);
    assert_eq!(done["unregistered_removed"], serde_json::json!([]));
    assert_eq!(json(home, &["gc"])["kept"], 0);
    let (code, report, _) = run_at(home, &["store", "verify", "--repair"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(store_folder(home), ["notes"]);
    // The next add into the emptied store works.
    add_text(home, "again", "added\n", &[]);
}

/// How long the concurrency test runs: `CUDAPKGS_STRESS_SECONDS`, 30 by default.
fn stress_duration() -> std::time::Duration {
    let seconds = std::env::var("CUDAPKGS_STRESS_SECONDS")
        .ok()
        .map_or(30, |value| {
            value.parse().expect("CUDAPKGS_STRESS_SECONDS: seconds")
        });
    std::time::Duration::from_secs(seconds)
}

/// Runs `work(0)`, `work(1)`, … until `deadline`; returns how many rounds ran.
fn until(deadline: std::time::Instant, mut work: impl FnMut(u32)) -> u32 {
    let mut round = 0;
    while std::time::Instant::now() < deadline {
        work(round);
        round += 1;
    }
    round
}

/// Adds paths referring to `shared` until `deadline`, two in three with a root (every
/// fourth of which gives its root up again, for its path to be collected), the third
/// rooted after its add, racing the collections; returns the
/// roots still held, with their paths, and how many adds ran.
fn add_until(
    home: &Path,
    shared: &str,
    adder: u32,
    deadline: std::time::Instant,
) -> (Vec<(String, String)>, u32) {
    let mut rooted: Vec<(String, String)> = Vec::new();
    let rounds = until(deadline, |round| {
        let name = format!("p{adder}-{round}");
        let text = format!("{name} uses {shared}\n{}", "x".repeat(64 << 10));
        if round % 3 == 0 {
            // Unrooted: a collection may take it at once; a root added afterwards
            // either holds it or is refused because the path is gone.
            let path = add_text(home, &name, &text, &["--scan-references"]);
            let late = format!("late-{name}");
            let (code, _, stderr) = run_at(home, &["store", "root", "add", &late, &path]);
            match code {
                0 => rooted.push((late, path)),
                _ => assert!(stderr.contains("is not a valid path"), "{stderr}"),
            }
            return;
        }
        let path = add_text(
            home,
            &name,
            &text,
            &["--scan-references", "--gc-root", &name],
        );
        if round % 4 == 1 {
            if let Some((old, _)) = rooted.pop() {
                let (code, _, stderr) = run_at(home, &["store", "root", "remove", &old]);
                assert_eq!(code, 0, "{stderr}");
            }
        }
        rooted.push((name, path));
    });
    (rooted, rounds)
}

#[test]
fn collections_repairs_and_rooted_adds_at_once_lose_no_rooted_path() {
    let dir = tempfile::tempdir().expect("temp");
    let home = dir.path();
    // A path every add refers to (so collections follow references too).
    let shared = add_text(home, "shared", "needed by all\n", &["--gc-root", "shared"]);
    let deadline = std::time::Instant::now() + stress_duration();
    let verifying = |command: &'static [&'static str]| {
        move || {
            until(deadline, |_| {
                let (code, report, stderr) = run_at(home, command);
                assert_eq!(code, 0, "{command:?}: {report}{stderr}");
                assert!(report.contains(" 0 problems"), "{command:?}: {report}");
            })
        }
    };
    let collected = std::sync::atomic::AtomicUsize::new(0);
    let collecting = || {
        until(deadline, |_| {
            let removed = json(home, &["gc"])["removed"]
                .as_array()
                .map_or(0, Vec::len);
            collected.fetch_add(removed, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let (rooted, rounds) = std::thread::scope(|scope| {
        let shared = shared.as_str();
        let adders =
            [0, 1].map(|adder| scope.spawn(move || add_until(home, shared, adder, deadline)));
        let others = [
            scope.spawn(collecting),
            scope.spawn(verifying(&["store", "verify", "--repair"])),
            scope.spawn(verifying(&["store", "verify"])),
        ];
        let mut rooted = Vec::new();
        let mut rounds = Vec::new();
        for adder in adders {
            let (paths, count) = adder.join().expect("adder");
            rooted.extend(paths);
            rounds.push(count);
        }
        rounds.extend(others.map(|other| other.join().expect("checker")));
        (rooted, rounds)
    });
    eprintln!(
        "rounds: adds {} and {}, gc {} (removing {} paths), verify --repair {}, verify {}; {} paths rooted",
        rounds[0],
        rounds[1],
        rounds[2],
        collected.load(std::sync::atomic::Ordering::Relaxed),
        rounds[3],
        rounds[4],
        rooted.len()
    );
    assert!(
        rounds.iter().all(|&count| count > 1),
        "every loop ran: {rounds:?}"
    );
    assert!(
        collected.into_inner() > 0,
        "the collections removed nothing"
    );
    // Every path still rooted is valid, whole, and held by its root.
    let roots = json(home, &["store", "root", "list"]);
    for (name, path) in &rooted {
        assert!(valid(home, path), "{name}: {path} lost");
        assert!(
            Path::new(path).join("file").is_file(),
            "{name}: {path} emptied"
        );
        let held = roots
            .as_array()
            .expect("roots")
            .iter()
            .any(|root| root["name"] == name.as_str() && root["path"] == path.as_str());
        assert!(held, "{name} no longer holds {path}");
    }
    assert!(valid(home, &shared));
    let (code, report, stderr) = run_at(home, &["store", "verify"]);
    assert_eq!(code, 0, "{report}{stderr}");
    assert!(report.contains(" 0 problems"), "{report}");
}
