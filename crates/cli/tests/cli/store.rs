//! End-to-end tests of `cudapkgs nar` and `cudapkgs store` against a real Nix.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{fixture, run, s};

/// Whether a real `nix-store` is here; under CI its absence is a failure, elsewhere the
/// test says it is skipped.
fn have_nix() -> bool {
    have_tool("nix-store")
}

/// Whether `tool` is here; under CI its absence is a failure, elsewhere the calling test
/// says it is skipped.
fn have_tool(tool: &str) -> bool {
    common::tool(tool).is_some()
}

/// Runs `nix-store ARGS` against the store under `root`; returns stdout.
fn nix_store(root: &Path, args: &[&str]) -> String {
    let output = Command::new("nix-store")
        .env("NIX_CONFIG", "substituters = ")
        .args(["--store", &format!("local?root={}", root.display())])
        .args(args)
        .output()
        .expect("nix-store");
    assert!(
        output.status.success(),
        "nix-store {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Runs cudapkgs on the `/nix/store` store under the physical root `ours`.
fn in_store(ours: &Path, args: &[&str]) -> (i32, String, String) {
    run(&[args, &["--store-dir", "/nix/store", "--root", s(ours)][..]].concat())
}

/// Starts `cudapkgs store add TREE` on the `/nix/store` store under `root`, its output piped.
fn spawn_add(root: &Path, tree: &Path) -> std::process::Child {
    spawn_in_store(root, &["store", "add", s(tree)])
}

/// Starts cudapkgs on the `/nix/store` store under `root`, its output piped.
fn spawn_in_store(root: &Path, args: &[&str]) -> std::process::Child {
    common::cudapkgs()
        .inherit_env()
        .command()
        .args(args)
        .args(["--store-dir", "/nix/store", "--root", s(root)])
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cudapkgs")
}

/// A small package: `lib/libmulti.so` (a fixture with device code) and a link to it.
fn library_tree(parent: &Path, name: &str) -> std::path::PathBuf {
    let pkg = parent.join(name);
    std::fs::create_dir_all(pkg.join("lib")).expect("mkdir");
    std::fs::copy(fixture("multiarch.so"), pkg.join("lib/libmulti.so")).expect("copy");
    std::os::unix::fs::symlink("libmulti.so", pkg.join("lib/libmulti.so.1")).expect("link");
    pkg
}

#[test]
fn nar_dump_and_store_path_equal_nix() {
    if !have_nix() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let pkg = library_tree(dir.path(), "cuda-fixtures");

    let expected = Command::new("nix-store")
        .arg("--dump")
        .arg(&pkg)
        .output()
        .expect("nix-store");
    let ours = common::cudapkgs()
        .inherit_env()
        .command()
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
    cudapkgs_testkit::assert_succeeded(&added);
    let (code, stdout, _) = run(&["store", "path", "--store-dir", "/nix/store", s(&pkg)]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), String::from_utf8_lossy(&added.stdout).trim());

    // What Nix dumps, cudapkgs restores, and the copy dumps to the same bytes.
    let restored = dir.path().join("restored");
    let mut child = common::cudapkgs()
        .inherit_env()
        .command()
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

    let (code, _, stderr) = run(&[
        "store",
        "path",
        "--store-dir",
        "/nix/store",
        "--name",
        ".bad name",
        s(&pkg),
    ]);
    common::assert_refused(code, &stderr, "invalid store path name `.bad name`");
}

#[test]
fn store_add_places_and_registers_what_nix_would() {
    if !have_nix() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let pkg = library_tree(dir.path(), "cuda-lib");
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    let root = ["--store-dir", "/nix/store", "--root", s(&ours)];

    // An interrupted add leaves a temporary behind; the next open removes it.
    std::fs::create_dir_all(ours.join("nix/store/.cudapkgs-add-x/tree")).expect("mkdir");
    let (code, added, stderr) = run(&[&["store", "add"][..], &root, &[s(&pkg)]].concat());
    assert_eq!(code, 0, "{stderr}");
    let added = added.trim();
    assert!(!ours.join("nix/store/.cudapkgs-add-x").exists());
    let expected = nix_store(&theirs, &["--add", s(&pkg)]);
    assert_eq!(added, expected.trim());
    // Same bytes on disk, read-only, and the same NAR hash as Nix registers.
    let physical = ours.join(added.trim_start_matches('/'));
    let dump = |p: &Path| {
        Command::new("nix-store")
            .arg("--dump")
            .arg(p)
            .output()
            .expect("dump")
            .stdout
    };
    assert_eq!(dump(&physical), dump(&pkg));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(physical.join("lib/libmulti.so"))
            .expect("stat")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o444 | (mode & 0o111));
    assert_eq!(mode & 0o222, 0);
    let (code, info, _) = run(&[&["--json", "store", "info"][..], &root, &[added]].concat());
    assert_eq!(code, 0);
    let info: serde_json::Value = serde_json::from_str(&info).expect("json");
    assert_eq!(
        info[0]["narHash"].as_str(),
        common::nix::path_info(&theirs, &[added])[0]["narHash"].as_str()
    );
    assert_eq!(info[0]["references"], serde_json::json!([]));
    let (code, same, _) = run(&[&["--json", "path-info"][..], &root, &[added]].concat());
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&same).expect("json"),
        info
    );

    // Adding again changes nothing.
    let (code, again, _) = run(&[&["store", "add"][..], &root, &[s(&pkg)]].concat());
    assert_eq!((code, again.trim()), (0, added));

    // A tree naming the library: a reference only when asked for, and part of the hash.
    let wrapper = dir.path().join("wrapper");
    std::fs::write(&wrapper, format!("LD_LIBRARY_PATH={added}/lib\n")).expect("write");
    let (_, plain, _) = run(&[&["store", "add"][..], &root, &[s(&wrapper)]].concat());
    assert_eq!(
        plain.trim(),
        nix_store(&theirs, &["--add", s(&wrapper)]).trim()
    );
    let (code, scanned, _) = run(&[
        &["--json", "store", "add", "--scan-references"][..],
        &root,
        &[s(&wrapper)],
    ]
    .concat());
    assert_eq!(code, 0);
    let scanned: serde_json::Value = serde_json::from_str(&scanned).expect("json");
    assert_eq!(scanned["references"], serde_json::json!([added]));
    assert_ne!(scanned["path"].as_str(), Some(plain.trim()));
    let size = info[0]["narSize"].as_u64().expect("size");
    path_info_recursive_and_sizes(&root, added, scanned["path"].as_str().expect("path"), size);

    // A bad name stores nothing.
    let before = std::fs::read_dir(ours.join("nix/store"))
        .expect("ls")
        .count();
    let (code, _, stderr) =
        run(&[&["store", "add", "--name", "a/b"][..], &root, &[s(&pkg)]].concat());
    common::assert_refused(code, &stderr, "invalid store path name");
    assert_eq!(
        std::fs::read_dir(ours.join("nix/store"))
            .expect("ls")
            .count(),
        before
    );
    let (code, _, stderr) = run(&[&["store", "info"][..], &root, &["/nix/store/nope"]].concat());
    common::assert_refused(code, &stderr, "not a valid path");
}

/// `path-info -r` of `referrer` (which references `added`, of NAR size `size`)
/// describes both, by path, as `nix path-info -r`; text shows sizes for people unless
/// `--bytes` asks for the count.
fn path_info_recursive_and_sizes(root: &[&str], added: &str, referrer: &str, size: u64) {
    let (code, closure, _) = run(&[&["--json", "path-info", "-r"][..], root, &[referrer]].concat());
    assert_eq!(code, 0);
    let closure: serde_json::Value = serde_json::from_str(&closure).expect("json");
    let mut expected = vec![added, referrer];
    expected.sort_unstable();
    let listed: Vec<&str> = closure
        .as_array()
        .expect("list")
        .iter()
        .map(|info| info["path"].as_str().expect("path"))
        .collect();
    assert_eq!(listed, expected);
    assert!(size >= 1024, "a size the text shows in KiB: {size}");
    let (_, text, _) = run(&[&["path-info"][..], root, &[added]].concat());
    assert!(
        text.contains("  nar size: ") && text.contains(" KiB\n"),
        "{text}"
    );
    let (_, exact, _) = run(&[&["--bytes", "path-info"][..], root, &[added]].concat());
    assert!(exact.contains(&format!("  nar size: {size}\n")), "{exact}");
}

/// Every entry of the store folder outside temporaries and lock files: (path, writable).
fn store_entries(folder: &Path, found: &mut Vec<(std::path::PathBuf, bool)>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(folder).expect("ls") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".cudapkgs-add-")
            || Path::new(&name).extension().is_some_and(|e| e == "lock")
        {
            continue;
        }
        let metadata = entry.path().symlink_metadata().expect("stat");
        if metadata.file_type().is_symlink() {
            continue;
        }
        found.push((entry.path(), metadata.permissions().mode() & 0o222 != 0));
        if metadata.is_dir() {
            store_entries(&entry.path(), found);
        }
    }
}

/// Writes `count` files of `size` pseudo-random bytes into `folder`.
fn write_varied_files(folder: &Path, count: usize, size: usize) {
    let mut noise = cudapkgs_testkit::Noise::new();
    for i in 0..count {
        let bytes: Vec<u8> = noise.by_ref().take(size).collect();
        std::fs::write(folder.join(format!("part{i:03}.bin")), bytes).expect("write");
    }
}

/// How many temporaries of interrupted adds are in the store folder.
fn count_temporaries(folder: &Path) -> usize {
    std::fs::read_dir(folder).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".cudapkgs-add-")
            })
            .count()
    })
}

/// The store-path entries of the store folder (temporaries and lock files aside).
fn store_path_entries(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder).map_or_else(
        |_| Vec::new(),
        |entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| {
                    !name.starts_with('.')
                        && Path::new(name).extension().is_none_or(|e| e != "lock")
                })
                .collect()
        },
    );
    names.sort();
    names
}

/// `store verify` of the `/nix/store` store under `root`: clean, with `valid` paths.
fn assert_verify_clean(root: &Path, valid: usize, context: &str) {
    let (code, report, stderr) = in_store(root, &["store", "verify"]);
    assert_eq!(code, 0, "{context}: {report}{stderr}");
    assert!(
        report.contains(&format!(
            "{valid} valid {} checked, 0 problems",
            if valid == 1 { "path" } else { "paths" }
        )),
        "{context}: {report}"
    );
}

#[test]
fn killing_an_add_at_any_moment_leaves_nothing_registered_or_writable() {
    let dir = tempfile::tempdir().expect("temp");
    let tree = dir.path().join("big");
    std::fs::create_dir_all(&tree).expect("mkdir");
    // 48 MiB in 96 files of varied bytes, so an add takes long enough to interrupt.
    write_varied_files(&tree, 96, 512 << 10);
    let root = dir.path().join("root");
    let folder = root.join("nix/store");
    let add = || spawn_add(&root, &tree);
    let (code, expected, _) = run(&["store", "path", "--store-dir", "/nix/store", s(&tree)]);
    assert_eq!(code, 0);
    let expected = expected.trim().to_owned();
    let other = dir.path().join("other");
    std::fs::write(&other, "another path\n").expect("write");
    let clean = || {
        if root.exists() {
            let status = Command::new("chmod").args(["-R", "u+w", s(&root)]).status();
            assert!(status.expect("chmod").success());
            std::fs::remove_dir_all(&root).expect("clean root");
        }
        // The store exists, with another path, before any add is killed.
        let (code, _, stderr) = in_store(&root, &["store", "add", s(&other)]);
        assert_eq!(code, 0, "{stderr}");
    };
    // An add with the caches warm (the first one loads the binary and the tree) sets the
    // schedule.
    let mut full = std::time::Duration::MAX;
    for _ in 0..2 {
        clean();
        let started = std::time::Instant::now();
        assert!(add().wait().expect("wait").success());
        full = full.min(started.elapsed());
    }
    clean();
    // Kills at moments spread over two and a half adds (early ones land mid-add, late
    // ones after it, with slack for the clean-up an add does after a killed one), then
    // as many around the end of an add, where its tree is placed and registered.
    let spread = 16u32;
    let moments: Vec<std::time::Duration> = (0..spread)
        .map(|attempt| full * attempt / 6)
        .chain((0..spread).map(|attempt| full * (14 + attempt) / 20))
        .collect();
    let (mut unregistered, mut mid_copy) = (0, 0);
    for (attempt, moment) in moments.iter().enumerate() {
        let mut child = add();
        std::thread::sleep(*moment);
        let _ = child.kill();
        let _ = child.wait();
        // Counted before the next writing open removes them.
        mid_copy += usize::from(count_temporaries(&folder) > 0);
        // Registered means complete: the database and the disk agree.
        let (code, _, _) = in_store(&root, &["store", "info", &expected]);
        if code == 0 {
            let (_, hash, _) = run(&[
                "nar",
                "hash",
                s(&root.join(expected.trim_start_matches('/'))),
            ]);
            let (_, theirs, _) = run(&["nar", "hash", s(&tree)]);
            assert_eq!(
                hash.split_whitespace().next(),
                theirs.split_whitespace().next()
            );
        } else {
            unregistered += 1;
        }
        // Whatever the kill left is an add's work in progress, not a problem: right
        // away, and once a writing command has cleaned up.
        let valid = 1 + usize::from(code == 0);
        assert_verify_clean(&root, valid, &format!("attempt {attempt}, right after"));
        mid_copy += usize::from(count_temporaries(&folder) > 0);
        let mut entries = Vec::new();
        store_entries(&folder, &mut entries);
        let writable: Vec<_> = entries.iter().filter(|(_, w)| *w).collect();
        assert!(
            writable.is_empty(),
            "attempt {attempt}: writable {writable:?}"
        );
        let (code, _, stderr) = in_store(&root, &["store", "add", s(&other)]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(count_temporaries(&folder), 0, "attempt {attempt}");
        assert_eq!(
            store_path_entries(&folder).len(),
            valid,
            "attempt {attempt}: {:?}",
            store_path_entries(&folder)
        );
        assert_verify_clean(&root, valid, &format!("attempt {attempt}, cleaned"));
        if valid == 2 {
            clean();
        }
    }
    eprintln!(
        "{unregistered} of {} adds interrupted, {mid_copy} with a temporary left",
        moments.len()
    );
    assert!(
        unregistered > 0 && mid_copy > 0 && unregistered < moments.len(),
        "kills must land both during and after adds"
    );
    // The next add finishes the job and removes every temporary.
    let (code, added, _) = in_store(&root, &["store", "add", s(&tree)]);
    assert_eq!((code, added.trim()), (0, expected.as_str()));
    assert_eq!(count_temporaries(&folder), 0);
    assert_verify_clean(&root, 2, "at the end");
}

/// Holds the write lock of the SQLite database at `db` (as another process's
/// transaction would) until dropped.
struct DatabaseWriteLock(std::process::Child);

impl DatabaseWriteLock {
    fn take(db: &Path) -> DatabaseWriteLock {
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                 db.execute('BEGIN IMMEDIATE')\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()",
                s(db),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("read");
        assert_eq!(line.trim(), "locked");
        DatabaseWriteLock(child)
    }
}

impl Drop for DatabaseWriteLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn an_add_killed_while_it_waits_to_register_leaves_no_unregistered_path() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("root");
    let folder = root.join("nix/store");
    let first = library_tree(dir.path(), "first");
    let (code, _, stderr) = in_store(&root, &["store", "add", s(&first)]);
    assert_eq!(code, 0, "{stderr}");
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    write_varied_files(&tree, 2, 4096);
    let (_, expected, _) = run(&["store", "path", "--store-dir", "/nix/store", s(&tree)]);
    let expected = expected.trim();
    // Another process's transaction makes the add wait for the database once its copy
    // is staged: it is killed there, as deep into placing its tree as the lock lets it.
    let lock = DatabaseWriteLock::take(&root.join("nix/var/cudapkgs/db.sqlite"));
    let mut child = spawn_add(&root, &tree);
    let started = std::time::Instant::now();
    while count_temporaries(&folder) < 2 && !folder.join(&expected[11..]).exists() {
        assert!(
            started.elapsed().as_secs() < 30,
            "the add never staged its copy"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the add did not wait"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the add did not wait"
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(lock);
    assert_verify_clean(&root, 1, "after the kill");
    // The next writing command removes the temporaries; nothing unregistered is left.
    let (code, _, stderr) = in_store(&root, &["store", "add", s(&first)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(count_temporaries(&folder), 0);
    assert_eq!(store_path_entries(&folder).len(), 1);
    let (code, added, stderr) = in_store(&root, &["store", "add", s(&tree)]);
    assert_eq!((code, added.trim()), (0, expected), "{stderr}");
    assert_verify_clean(&root, 2, "after adding again");
}

/// Publishes `path` of the store under `root` in a `file://` cache at `cache`, claiming it
/// is content-addressed (`CA: fixed:r:…`), which a real Nix checks against the path
/// instead of a signature. `claimed` is the store path the narinfo announces.
fn publish(root: &Path, path: &str, claimed: &str, cache: &Path) {
    std::fs::create_dir_all(cache.join("nar")).expect("mkdir");
    std::fs::write(
        cache.join("nix-cache-info"),
        "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n",
    )
    .expect("write");
    let hash_part = |p: &str| p.rsplit('/').next().expect("base")[..32].to_owned();
    let store_info = |json: &[&str]| {
        let (code, stdout, _) = run(&[
            json,
            &[
                "store",
                "info",
                "--store-dir",
                "/nix/store",
                "--root",
                s(root),
                path,
            ],
        ]
        .concat());
        assert_eq!(code, 0);
        stdout
    };
    let info: serde_json::Value = serde_json::from_str(&store_info(&["--json"])).expect("json");
    let nar = common::cudapkgs()
        .inherit_env()
        .command()
        .args(["nar", "dump"])
        .arg(root.join(path.trim_start_matches('/')))
        .output()
        .expect("nar dump")
        .stdout;
    let nar_file = format!("nar/{}.nar", hash_part(path));
    std::fs::write(cache.join(&nar_file), &nar).expect("write");
    // A narinfo takes the `sha256:<base-32>` notation the text shows.
    let text = store_info(&[]);
    let nar_hash = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("nar hash: "))
        .expect("nar hash line");
    let references: Vec<&str> = info[0]["references"]
        .as_array()
        .expect("references")
        .iter()
        .map(|r| r.as_str().expect("path").rsplit('/').next().expect("base"))
        .collect();
    let narinfo = format!(
        "StorePath: {claimed}\nURL: {nar_file}\nCompression: none\nFileHash: {nar_hash}\n\
         FileSize: {size}\nNarHash: {nar_hash}\nNarSize: {size}\nReferences: {refs}\n\
         CA: fixed:r:{nar_hash}\n",
        size = nar.len(),
        refs = references.join(" "),
    );
    std::fs::write(
        cache.join(format!("{}.narinfo", hash_part(claimed))),
        narinfo,
    )
    .expect("write");
}

/// Copies `path` from the cache into a store under `root` with a real Nix.
fn nix_copy(cache: &Path, root: &Path, path: &str) -> std::process::Output {
    Command::new("nix")
        .env(
            "NIX_CONFIG",
            "substituters = \nexperimental-features = nix-command\n\
             narinfo-cache-negative-ttl = 0\nnarinfo-cache-positive-ttl = 0",
        )
        .args(["copy", "--from", &format!("file://{}", cache.display())])
        .args(["--to", &format!("local?root={}", root.display()), path])
        .output()
        .expect("nix copy")
}

/// `cudapkgs closure` of `path` in the store under `ours`: biggest first, the total right,
/// the same paths as `nix-store --query --requisites` in the store under `theirs`.
fn assert_closure_equals_nix(ours: &Path, theirs: &Path, path: &str, count: usize) {
    let closure = common::rooted_closure(ours, path);
    let mut ours_closure: Vec<&str> = common::closure_paths(&closure);
    let sizes: Vec<u64> = closure["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p["narSize"].as_u64().expect("size"))
        .collect();
    assert!(
        sizes.windows(2).all(|w| w[0] >= w[1]),
        "biggest first: {sizes:?}"
    );
    assert_eq!(closure["total_nar_size"].as_u64(), Some(sizes.iter().sum()));
    ours_closure.sort_unstable();
    let nix_closure = nix_store(theirs, &["--query", "--requisites", path]);
    let mut nix_closure: Vec<&str> = nix_closure.lines().collect();
    nix_closure.sort_unstable();
    assert_eq!(ours_closure, nix_closure);
    assert_eq!(ours_closure.len(), count);
}

#[test]
fn paths_with_references_are_the_paths_nix_computes() {
    if !have_nix() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let ours = dir.path().join("ours");
    let lib = dir.path().join("cuda-lib");
    std::fs::create_dir_all(lib.join("lib")).expect("mkdir");
    std::fs::copy(fixture("multiarch.so"), lib.join("lib/libmulti.so")).expect("copy");
    let (_, lib_path, _) = in_store(&ours, &["store", "add", s(&lib)]);
    let lib_path = lib_path.trim().to_owned();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("bin")).expect("mkdir");
    std::fs::write(
        app.join("bin/run"),
        format!("#!/bin/sh\nLD_LIBRARY_PATH={lib_path}/lib\n"),
    )
    .expect("write");
    let (code, app_path, _) = in_store(&ours, &["store", "add", "--scan-references", s(&app)]);
    assert_eq!(code, 0);
    let app_path = app_path.trim().to_owned();
    let cache = dir.path().join("cache");
    publish(&ours, &lib_path, &lib_path, &cache);
    publish(&ours, &app_path, &app_path, &cache);

    // Nix accepts an unsigned path only if the path it computes from the content and the
    // references is the one claimed.
    let theirs = dir.path().join("theirs");
    let copied = nix_copy(&cache, &theirs, &app_path);
    cudapkgs_testkit::assert_succeeded(&copied);
    assert_eq!(
        nix_store(&theirs, &["--query", "--references", &app_path]).trim(),
        lib_path
    );
    // A third level: a wrapper naming the app; its closure is what Nix's is.
    let wrapper = dir.path().join("wrapper");
    std::fs::write(&wrapper, format!("exec {app_path}/bin/run\n")).expect("write");
    let (_, wrapper_path, _) = in_store(&ours, &["store", "add", "--scan-references", s(&wrapper)]);
    let wrapper_path = wrapper_path.trim().to_owned();
    publish(&ours, &wrapper_path, &wrapper_path, &cache);
    let copied = nix_copy(&cache, &theirs, &wrapper_path);
    cudapkgs_testkit::assert_succeeded(&copied);
    assert_closure_equals_nix(&ours, &theirs, &wrapper_path, 3);

    // Why the wrapper needs the library: two hops, each with the file and offset.
    let (code, why, stderr) = in_store(&ours, &["--json", "why", &wrapper_path, &lib_path]);
    assert_eq!(code, 0, "{stderr}");
    let why: serde_json::Value = serde_json::from_str(&why).expect("json");
    let offset_of = |file: &Path, path: &str| {
        let contents = std::fs::read_to_string(file).expect("read");
        contents.find(&path[11..43]).expect("hash part") as u64
    };
    assert_eq!(
        why["chain"],
        serde_json::json!([
            {"path": wrapper_path, "next": app_path, "file": "", "offset": offset_of(&wrapper, &app_path)},
            {"path": app_path, "next": lib_path, "file": "bin/run", "offset": offset_of(&app.join("bin/run"), &lib_path)},
        ])
    );
    let (code, _, _) = in_store(&ours, &["why", &lib_path, &wrapper_path]);
    assert_eq!(code, 1, "the library does not need the wrapper");

    // Control: the same content and references under the path without references is refused.
    let (_, unreferenced, _) = run(&["store", "path", "--store-dir", "/nix/store", s(&app)]);
    let unreferenced = unreferenced.trim();
    publish(&ours, &app_path, unreferenced, &cache);
    let refused = nix_copy(&cache, &dir.path().join("refused"), unreferenced);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("lacks a valid signature"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn several_processes_adding_at_once_agree() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("root");
    let trees: Vec<_> = (0..3)
        .map(|i| {
            let tree = dir.path().join(format!("tree{i}"));
            std::fs::create_dir_all(&tree).expect("mkdir");
            write_varied_files(&tree, 4 + i, 256 << 10);
            tree
        })
        .collect();
    // Each tree added by three processes at once, all nine running together.
    let children: Vec<_> = (0..9)
        .map(|i| (i % 3, spawn_add(&root, &trees[i % 3])))
        .collect();
    for (tree, child) in children {
        let output = child.wait_with_output().expect("wait");
        cudapkgs_testkit::assert_succeeded(&output);
        let (_, expected, _) = run(&[
            "store",
            "path",
            "--store-dir",
            "/nix/store",
            s(&trees[tree]),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            expected.trim()
        );
        let physical = root.join(expected.trim().trim_start_matches('/'));
        let (_, on_disk, _) = run(&["nar", "hash", s(&physical)]);
        let (_, source, _) = run(&["nar", "hash", s(&trees[tree])]);
        assert_eq!(
            on_disk.split_whitespace().next(),
            source.split_whitespace().next()
        );
    }
    assert_eq!(count_temporaries(&root.join("nix/store")), 0);
}

#[test]
fn verify_finds_changed_and_unregistered_paths_and_repairs_leftovers() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp");
    let ours = dir.path().join("ours");
    let pkg = library_tree(dir.path(), "cuda-lib");
    let root = ["--store-dir", "/nix/store", "--root", s(&ours)];
    let (code, added, _) = run(&[&["store", "add"][..], &root, &[s(&pkg)]].concat());
    assert_eq!(code, 0);
    let added = added.trim();
    let (code, report, _) = run(&[&["store", "verify"][..], &root].concat());
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("1 valid path checked, 0 problems"),
        "{report}"
    );

    // Something put in the store by hand, and a registered file changed on disk.
    let stray = ours.join("nix/store/00000000000000000000000000000000-stray");
    std::fs::create_dir_all(&stray).expect("mkdir");
    let library = ours
        .join(added.trim_start_matches('/'))
        .join("lib/libmulti.so");
    std::fs::set_permissions(
        library.parent().expect("lib"),
        PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::set_permissions(&library, PermissionsExt::from_mode(0o644)).expect("chmod");
    let mut bytes = std::fs::read(&library).expect("read");
    bytes[100] ^= 1;
    std::fs::write(&library, bytes).expect("write");
    // Without --repair the stray is reported with the flag that removes it.
    let (code, report, _) = run(&[&["store", "verify"][..], &root].concat());
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("-stray: not registered (--repair removes it)\n"),
        "{report}"
    );
    assert!(stray.exists());
    let (code, report, _) = run(&[&["store", "verify", "--repair"][..], &root].concat());
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains(&format!("{added}: changed on disk")),
        "{report}"
    );
    assert!(
        report.contains("-stray: not registered; removed"),
        "{report}"
    );
    assert!(!stray.exists());
    // The stray is gone; the damaged path stays reported, not silently dropped.
    let (code, report, _) = run(&[&["store", "verify"][..], &root].concat());
    assert_eq!(code, 1);
    assert!(report.contains("1 problem\n"), "{report}");
}

/// One change to a tree, the `i`-th of a series.
type Change = fn(&Path, u32);

/// Runs `change(tree, i)` for i = 0, 1, … every millisecond until stopped.
struct KeepChanging {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl KeepChanging {
    fn start(tree: &Path, change: Change) -> KeepChanging {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let tree = tree.to_owned();
        let thread = std::thread::spawn(move || {
            let mut i = 0;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                change(&tree, i);
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            i
        });
        KeepChanging {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; returns how many changes were made.
    fn stop(mut self) -> u32 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().expect("running").join().expect("join")
    }
}

/// Writes `bytes` at `offset` of `path`, in place.
fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    file.write_all_at(bytes, offset).expect("write");
}

#[test]
fn an_add_refuses_a_tree_that_changes_while_it_is_read() {
    // The tree is read in name order: `part000.bin` first, `part047.bin` last.
    let changes: [(&str, Change); 5] = [
        ("a write behind the reader", |tree, i| {
            overwrite(&tree.join("part000.bin"), 1000, &i.to_le_bytes());
        }),
        ("a write ahead of the reader", |tree, i| {
            overwrite(&tree.join("part047.bin"), 1000, &i.to_le_bytes());
        }),
        ("an append", |tree, i| {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(tree.join("part024.bin"))
                .expect("open");
            std::io::Write::write_all(&mut file, &i.to_le_bytes()).expect("append");
        }),
        ("a new file", |tree, i| {
            std::fs::write(tree.join(format!("new{i}")), b"new").expect("write");
        }),
        ("a removed file", |tree, i| {
            let _ = std::fs::remove_file(tree.join(format!("spare/{i}")));
        }),
    ];
    for (what, change) in changes {
        let dir = tempfile::tempdir().expect("temp");
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("spare")).expect("mkdir");
        write_varied_files(&tree, 48, 128 << 10);
        for i in 0..300 {
            std::fs::write(tree.join(format!("spare/{i}")), b"spare").expect("write");
        }
        let root = dir.path().join("root");
        let other = dir.path().join("other");
        std::fs::write(&other, b"another path").expect("write");
        assert_eq!(in_store(&root, &["store", "add", s(&other)]).0, 0);
        let changing = KeepChanging::start(&tree, change);
        let (code, stdout, stderr) = in_store(&root, &["store", "add", s(&tree)]);
        let changes_made = changing.stop();
        assert!(changes_made > 0, "{what}: nothing changed");
        assert_eq!(code, 2, "{what}: stored {stdout}");
        assert!(
            stderr.contains("changed while it was being read")
                && stderr.contains("nothing was stored"),
            "{what}: {stderr}"
        );
        assert!(stderr.contains(s(&tree)), "{what}: {stderr}");
        // Nothing is registered, placed or left behind.
        let folder = root.join("nix/store");
        assert_eq!(store_path_entries(&folder).len(), 1, "{what}");
        assert_eq!(count_temporaries(&folder), 0, "{what}");
        assert_verify_clean(&root, 1, what);
        // Once it stays still, the same tree is stored.
        let (code, _, stderr) = in_store(&root, &["store", "add", s(&tree)]);
        assert_eq!(code, 0, "{what}: {stderr}");
    }
}

#[test]
fn special_files_are_refused_at_once_and_json_errors_stay_alone_on_stdout() {
    if !have_tool("mkfifo") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    std::fs::write(tree.join("a"), b"a file before the pipe").expect("write");
    assert!(
        Command::new("mkfifo")
            .arg(tree.join("pipe"))
            .status()
            .expect("mkfifo")
            .success()
    );
    let root = dir.path().join("root");
    let missing = dir.path().join("missing");
    let cases: [(&[&str], &Path); 7] = [
        (&["nar", "dump"], &missing),
        (&["nar", "dump"], &fifo),
        (&["nar", "dump"], &tree),
        (&["nar", "dump"], Path::new("/dev/null")),
        (&["store", "add"], &fifo),
        (&["store", "add"], &tree),
        (&["store", "add"], Path::new("/dev/null")),
    ];
    for (command, input) in cases {
        let store = ["--store-dir", "/nix/store", "--root", s(&root)];
        let location: &[&str] = if command[0] == "store" { &store } else { &[] };
        let args = [&["--json"][..], command, location, &[s(input)]].concat();
        let (code, stdout, stderr) =
            common::run_within(std::time::Duration::from_secs(20), &[], &args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        // Exactly one JSON document: no NAR bytes before it.
        let error: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{args:?}: stdout is not one JSON document ({e}): {stdout:?}")
        });
        let message = error["error"]["message"].as_str().expect("message");
        let named = if input == tree {
            tree.join("pipe")
        } else {
            input.to_owned()
        };
        assert!(message.contains(s(&named)), "{args:?}: {message}");
        // A refused add touches no store.
        assert!(!root.exists(), "{args:?} created {}", root.display());
    }
}

/// Every file and folder under `root`: its path, type, size, permissions and
/// modification time.
fn snapshot(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let metadata = path.symlink_metadata().expect("stat");
        found.push(format!(
            "{} {:o} {} {}.{}",
            path.display(),
            metadata.mode(),
            metadata.size(),
            metadata.mtime(),
            metadata.mtime_nsec()
        ));
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).expect("ls") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    found.sort();
    found
}

/// Runs cudapkgs as a user who can read `root`'s store but not write it: `nobody` when
/// this is root (whom permissions do not stop), else this user with write permission
/// taken away (and given back after).
fn run_as_reader(root: &Path, args: &[&str]) -> (i32, String, String) {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let chmod = |mode: &str| {
        let status = Command::new("chmod").args(["-R", mode, s(root)]).status();
        assert!(status.expect("chmod").success());
    };
    let command = if is_root {
        common::TestCommand::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_cudapkgs"))
    } else {
        chmod("a-w");
        common::cudapkgs()
    };
    let run = command
        .args(args)
        .args(["--store-dir", "/nix/store", "--root", s(root)])
        .run();
    if !is_root {
        chmod("u+w");
    }
    run.into_parts()
}

#[test]
fn queries_work_for_a_reader_who_cannot_write_and_change_nothing() {
    if !have_tool("setpriv") {
        return;
    }
    let dir = common::world_readable_tempdir();
    let root = dir.path().join("root");
    let lib = library_tree(dir.path(), "cuda-lib");
    let (_, lib_path, _) = in_store(&root, &["store", "add", s(&lib)]);
    let lib_path = lib_path.trim().to_owned();
    let app = dir.path().join("app");
    std::fs::write(&app, format!("uses {lib_path}/lib\n")).expect("write");
    let (code, app_path, stderr) = in_store(
        &root,
        &[
            "store",
            "add",
            "--scan-references",
            "--gc-root",
            "app",
            s(&app),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let app_path = app_path.trim().to_owned();
    let queries: [&[&str]; 9] = [
        &["path-info", &app_path],
        &["store", "info", "app"],
        &["closure", "app"],
        &["why", &app_path, &lib_path],
        &["diff", &lib_path, &app_path],
        &["store", "verify"],
        &["store", "root", "list"],
        &["gc", "--dry-run"],
        &["--json", "gc", "--dry-run"],
    ];
    let before = snapshot(&root);
    for query in queries {
        let (code, stdout, stderr) = in_store(&root, query);
        assert_eq!(code, 0, "{query:?}: {stderr}");
        let (reader_code, reader_stdout, stderr) = run_as_reader(&root, query);
        assert_eq!(reader_code, 0, "{query:?} as a reader: {stderr}");
        assert_eq!(reader_stdout, stdout, "{query:?}");
        assert_eq!(snapshot(&root), before, "{query:?} changed the store");
    }
    // What writes says it cannot, and names what.
    let (code, _, stderr) = run_as_reader(&root, &["gc"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("Permission denied") || stderr.contains("cannot write"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: pass --root or --state-dir"),
        "{stderr}"
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn commands_on_a_store_that_does_not_exist_say_so_and_create_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    let typo = dir.path().join("typo");
    let path = "/nix/store/00000000000000000000000000000000-x";
    let commands: [&[&str]; 9] = [
        &["store", "verify"],
        &["store", "verify", "--repair"],
        &["path-info", path],
        &["closure", path],
        &["why", path, path],
        &["diff", path, path],
        &["store", "root", "list"],
        &["gc", "--dry-run"],
        &["gc"],
    ];
    for command in commands {
        let (code, _, stderr) =
            run(&[command, &["--store-dir", "/nix/store", "--root", s(&typo)]].concat());
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "there is no store at {}/nix/store",
                typo.display()
            )),
            "{command:?}: {stderr}"
        );
        assert!(
            stderr.contains("hint: check --store-dir and --root"),
            "{stderr}"
        );
        let (code, _, stderr) = run(&[command, &["--store-dir", s(&typo)]].concat());
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert!(
            stderr.contains("there is no store at"),
            "{command:?}: {stderr}"
        );
        assert!(!typo.exists(), "{command:?} created {}", typo.display());
    }
    // A store whose database is elsewhere than --state-dir says which file is missing.
    let root = dir.path().join("root");
    let lib = library_tree(dir.path(), "cuda-lib");
    assert_eq!(in_store(&root, &["store", "add", s(&lib)]).0, 0);
    let state = dir.path().join("state-typo");
    let (code, _, stderr) = in_store(&root, &["store", "verify", "--state-dir", s(&state)]);
    common::assert_refused(
        code,
        &stderr,
        &format!("has no database at {}/db.sqlite", state.display()),
    );
    assert!(!state.exists());
}

#[test]
fn a_corrupt_database_is_named_and_left_as_it_is() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("root");
    let lib = library_tree(dir.path(), "cuda-lib");
    let (_, added, _) = in_store(&root, &["store", "add", s(&lib)]);
    let database = root.join("nix/var/cudapkgs/db.sqlite");
    let garbage = b"this is not a database, only text that took its place\n".repeat(100);
    std::fs::write(&database, &garbage).expect("write");
    let commands: [&[&str]; 6] = [
        &["store", "verify"],
        &["store", "verify", "--repair"],
        &["path-info", added.trim()],
        &["gc"],
        &["gc", "--dry-run"],
        &["store", "add", s(&lib)],
    ];
    for command in commands {
        let (code, _, stderr) = in_store(&root, command);
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{} is not a usable store database",
                database.display()
            )),
            "{command:?}: {stderr}"
        );
        assert!(
            stderr.contains("hint: nothing was changed"),
            "{command:?}: {stderr}"
        );
        assert!(
            !stderr.contains("--root or --state-dir to use a store"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read(&database).expect("read"),
            garbage,
            "{command:?}"
        );
        assert!(root.join(added.trim().trim_start_matches('/')).exists());
    }
}

#[test]
fn a_write_that_fails_during_an_add_names_the_file_and_the_cause() {
    let dir = tempfile::tempdir().expect("temp");
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    std::fs::write(tree.join("a-small-file"), b"small").expect("write");
    write_varied_files(&tree, 1, 8 << 20);
    let big = tree.join("part000.bin");
    let root = dir.path().join("root");
    assert_eq!(
        in_store(
            &root,
            &["store", "add", s(&dir.path().join("tree/a-small-file"))]
        )
        .0,
        0
    );
    // Files this process writes may not grow past 1 MiB (with the signal that would kill
    // it ignored, the write fails instead): the store's copy of the big file cannot be
    // written, as on a full disk.
    let limited = |args: &[&str]| {
        let output = Command::new("sh")
            .args(["-c", "trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_cudapkgs"))
            .args(args)
            .env_clear()
            .output()
            .expect("sh");
        (
            output.status.code().expect("exit code"),
            String::from_utf8(output.stderr).expect("utf-8"),
        )
    };
    let (code, stderr) = limited(&[
        "store",
        "add",
        "--store-dir",
        "/nix/store",
        "--root",
        s(&root),
        s(&tree),
    ]);
    common::assert_refused(
        code,
        &stderr,
        &format!(
            "{}: cannot copy it into the store folder {}/nix/store",
            big.display(),
            root.display()
        ),
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(stderr.contains("nothing was stored"), "{stderr}");
    assert!(
        !stderr.contains("reader stopped") && !stderr.contains(".cudapkgs-"),
        "{stderr}"
    );
    let folder = root.join("nix/store");
    assert_eq!(store_path_entries(&folder).len(), 1);
    assert_eq!(count_temporaries(&folder), 0);
    assert_verify_clean(&root, 1, "after the failed add");
    // Restoring a NAR names the target the user gave, not its scratch folder.
    let nar = dir.path().join("tree.nar");
    let dumped = common::cudapkgs()
        .inherit_env()
        .command()
        .args(["nar", "dump", s(&tree)])
        .output()
        .expect("dump");
    std::fs::write(&nar, dumped.stdout).expect("write");
    let target = dir.path().join("restored");
    let output = Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 2048; exec \"$0\" nar restore \"$1\" < \"$2\"",
        ])
        .arg(env!("CARGO_BIN_EXE_cudapkgs"))
        .args([s(&target), s(&nar)])
        .env_clear()
        .output()
        .expect("sh");
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}/part000.bin\n  caused by: File too large",
            target.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(".cudapkgs-"), "{stderr}");
    assert!(!target.exists());
}

#[test]
fn verify_neither_reports_nor_removes_paths_added_while_it_runs() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("root");
    // Big enough that hashing it takes a while: 256 MiB (the source is sparse).
    let big = dir.path().join("big");
    std::fs::create_dir(&big).expect("mkdir");
    std::fs::File::create(big.join("zeros"))
        .and_then(|file| file.set_len(256 << 20))
        .expect("sparse file");
    let (code, _, stderr) = in_store(&root, &["store", "add", s(&big)]);
    assert_eq!(code, 0, "{stderr}");
    let mut valid = 1;
    let mut added_meanwhile = 0;
    for verify in [&["store", "verify"][..], &["store", "verify", "--repair"]] {
        let mut child = spawn_in_store(&root, verify);
        let mut added = Vec::new();
        let mut i = 0;
        while child.try_wait().expect("wait").is_none() {
            let tree = dir.path().join(format!("tree-{}-{i}", verify.len()));
            std::fs::write(&tree, format!("added while {verify:?} ran: {i}\n")).expect("write");
            let root_name = format!("r{}-{i}", verify.len());
            let (code, path, stderr) =
                in_store(&root, &["store", "add", "--gc-root", &root_name, s(&tree)]);
            assert_eq!(code, 0, "{stderr}");
            added_meanwhile += usize::from(child.try_wait().expect("wait").is_none());
            added.push(path.trim().to_owned());
            i += 1;
        }
        let output = child.wait_with_output().expect("wait");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{verify:?}: {report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(report.contains(" 0 problems"), "{verify:?}: {report}");
        for path in &added {
            assert_eq!(in_store(&root, &["store", "info", path]).0, 0, "{path}");
            assert!(
                root.join(path.trim_start_matches('/')).exists(),
                "{path} removed"
            );
        }
        valid += added.len();
        assert_verify_clean(&root, valid, &format!("after {verify:?}"));
    }
    eprintln!("{added_meanwhile} adds finished while a verify ran");
    assert!(
        added_meanwhile >= 2,
        "adds must finish while verify runs (a bigger store makes it run longer)"
    );
}
