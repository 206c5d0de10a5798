//! End-to-end tests of `cudapkgs nar` and `cudapkgs store` against a real Nix.

mod common;

use std::path::Path;
use std::process::Command;

use common::{fixture, run, s};

/// Whether a real `nix-store` is here; under CI its absence is a failure.
fn have_nix() -> bool {
    let nix = Command::new("nix-store")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        nix || std::env::var_os("CI").is_none(),
        "nix-store is missing: CI must install nix-bin"
    );
    nix
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
    Command::new(env!("CARGO_BIN_EXE_cudapkgs"))
        .args([
            "store",
            "add",
            "--store-dir",
            "/nix/store",
            "--root",
            s(root),
            s(tree),
        ])
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
        info[0]["nar_hash"].as_str(),
        Some(nix_store(&theirs, &["--query", "--hash", added]).trim())
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

    // A bad name stores nothing.
    let before = std::fs::read_dir(ours.join("nix/store"))
        .expect("ls")
        .count();
    let (code, _, stderr) =
        run(&[&["store", "add", "--name", "a/b"][..], &root, &[s(&pkg)]].concat());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid store path name"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(ours.join("nix/store"))
            .expect("ls")
            .count(),
        before
    );
    let (code, _, stderr) = run(&[&["store", "info"][..], &root, &["/nix/store/nope"]].concat());
    assert_eq!(code, 2);
    assert!(stderr.contains("not a valid path"), "{stderr}");
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
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..count {
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
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
    let (code, expected, _) = run(&["store", "path", s(&tree)]);
    assert_eq!(code, 0);
    let expected = expected.trim().to_owned();
    let clean = || {
        let status = Command::new("chmod").args(["-R", "u+w", s(&root)]).status();
        assert!(status.expect("chmod").success());
        std::fs::remove_dir_all(&root).expect("clean root");
    };
    // An add with the caches warm (the first one loads the binary and the tree) sets the
    // schedule; then adds are interrupted at moments spread over two and a half of it.
    let mut full = std::time::Duration::MAX;
    for _ in 0..2 {
        let started = std::time::Instant::now();
        assert!(add().wait().expect("wait").success());
        full = full.min(started.elapsed());
        clean();
    }
    let attempts = 16u32;
    let (mut unregistered, mut mid_copy) = (0, 0);
    for attempt in 0..attempts {
        let mut child = add();
        // From 0 to 2.5 adds: early kills land mid-add, late ones after it (with slack
        // for the clean-up an add does after a killed one).
        std::thread::sleep(full * attempt / 6);
        let _ = child.kill();
        let _ = child.wait();
        // Counted before the next open removes them.
        mid_copy += usize::from(count_temporaries(&folder) > 0);
        // Registered means complete: the database and the disk agree.
        let (code, _, _) = run(&[
            "store",
            "info",
            "--store-dir",
            "/nix/store",
            "--root",
            s(&root),
            &expected,
        ]);
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
        mid_copy += usize::from(count_temporaries(&folder) > 0);
        if folder.exists() {
            let mut entries = Vec::new();
            store_entries(&folder, &mut entries);
            let writable: Vec<_> = entries.iter().filter(|(_, w)| *w).collect();
            assert!(
                writable.is_empty(),
                "attempt {attempt}: writable {writable:?}"
            );
        }
    }
    eprintln!("{unregistered} of {attempts} adds interrupted, {mid_copy} with a temporary left");
    assert!(
        unregistered > 0 && mid_copy > 0 && unregistered < attempts,
        "kills must land both during and after adds"
    );
    // The next add finishes the job and removes every temporary.
    let (code, added, _) = run(&[
        "store",
        "add",
        "--store-dir",
        "/nix/store",
        "--root",
        s(&root),
        s(&tree),
    ]);
    assert_eq!((code, added.trim()), (0, expected.as_str()));
    assert_eq!(count_temporaries(&folder), 0);
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
    let (code, info, _) = run(&[
        "--json",
        "store",
        "info",
        "--store-dir",
        "/nix/store",
        "--root",
        s(root),
        path,
    ]);
    assert_eq!(code, 0);
    let info: serde_json::Value = serde_json::from_str(&info).expect("json");
    let nar = Command::new(env!("CARGO_BIN_EXE_cudapkgs"))
        .args(["nar", "dump"])
        .arg(root.join(path.trim_start_matches('/')))
        .output()
        .expect("nar dump")
        .stdout;
    let nar_file = format!("nar/{}.nar", hash_part(path));
    std::fs::write(cache.join(&nar_file), &nar).expect("write");
    let nar_hash = info[0]["nar_hash"].as_str().expect("hash");
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
    let (code, closure, _) = run(&[
        "--json",
        "closure",
        "--store-dir",
        "/nix/store",
        "--root",
        s(ours),
        path,
    ]);
    assert_eq!(code, 0);
    let closure: serde_json::Value = serde_json::from_str(&closure).expect("json");
    let mut ours_closure: Vec<&str> = common::closure_paths(&closure);
    let sizes: Vec<u64> = closure["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p["nar_size"].as_u64().expect("size"))
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
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
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
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
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
    let (_, unreferenced, _) = run(&["store", "path", s(&app)]);
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
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (_, expected, _) = run(&["store", "path", s(&trees[tree])]);
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
        report.contains("1 valid paths checked, 0 problems"),
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
