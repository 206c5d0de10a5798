//! A real Nix store, built by Nix 2.8 in the test (a "torch" output that names a
//! "magma" output from inside a library), read with `--store local?root=R`: the
//! closure is `nix-store -qR`'s, hashes and sizes are Nix's, `why` names the file and
//! offset, `check --deny magma` fails with that chain, and nothing in the store or its
//! database changes; every command that would write is refused.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{run, s};

/// Two derivations built with `/bin/sh` (the sandbox given the host's `/bin`, `/lib`,
/// `/usr`): magma's library, and torch's, which names magma's folder.
const EXPRESSION: &str = r#"
let
  sh = script: [ "-c" script ];
  magma = builtins.derivation {
    name = "magma"; system = "x86_64-linux"; builder = "/bin/sh";
    args = sh "/bin/mkdir -p $out/lib; echo magma > $out/lib/libmagma.so";
  };
in builtins.derivation {
  name = "torch"; system = "x86_64-linux"; builder = "/bin/sh";
  args = sh "/bin/mkdir -p $out/lib; echo runpath ${magma}/lib > $out/lib/libtorch.so";
}
"#;

/// Builds the expression into a store under `root`; the torch output's path.
fn nix_build(root: &Path) -> String {
    let file = root.with_extension("nix");
    std::fs::write(&file, EXPRESSION).expect("write");
    let output = Command::new("nix-build")
        .arg("--store")
        .arg(format!("local?root={}", root.display()))
        .arg(&file)
        .args(["--no-out-link", "--option", "sandbox", "true"])
        .args(["--option", "extra-sandbox-paths", "/bin /lib /lib64 /usr"])
        .output()
        .expect("nix-build runs");
    assert!(
        output.status.success(),
        "nix-build: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn nix_store(root: &Path, args: &[&str]) -> String {
    let output = Command::new("nix-store")
        .arg("--store")
        .arg(format!("local?root={}", root.display()))
        .args(args)
        .output()
        .expect("nix-store runs");
    assert!(output.status.success(), "nix-store {args:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Every file under `root` with its size and contents' hash (the database's bytes
/// among them), but SQLite's `-wal` and `-shm` files, which any reader of a database in
/// WAL mode may create beside it (Nix's own commands remove them when they close it; a
/// read-only reader cannot).
fn state_of(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let metadata = path.symlink_metadata().expect("stat");
        let name = path.to_string_lossy();
        if name.ends_with("-wal") || name.ends_with("-shm") {
            continue;
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).expect("list") {
                pending.push(entry.expect("entry").path());
            }
            found.push(format!("{}/", path.display()));
        } else if metadata.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let digest = bytes
                .iter()
                .fold(0u64, |h, &b| h.rotate_left(5) ^ u64::from(b));
            found.push(format!("{} {} {digest:x}", path.display(), bytes.len()));
        } else {
            found.push(format!("{} link", path.display()));
        }
    }
    found.sort();
    found
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).expect("json")
}

/// The expression built into a fresh Nix store: the folder that holds it, the store's
/// root, the torch output and the store's URI; `None` (the test skipped) without Nix.
fn built() -> Option<(tempfile::TempDir, std::path::PathBuf, String, String)> {
    common::tool("nix-build")?;
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("root");
    let torch = nix_build(&root);
    let uri = format!("local?root={}", root.display());
    Some((dir, root, torch, uri))
}

#[test]
fn a_nix_store_is_read_as_nix_reads_it_and_never_changed() {
    let Some((dir, root, torch, uri)) = built() else {
        return;
    };
    let before = state_of(&root);

    let closure = json(&["closure", "--store", &uri, &torch]);
    let mut ours: Vec<&str> = common::closure_paths(&closure);
    ours.sort_unstable();
    let theirs = nix_store(&root, &["-qR", &torch]);
    let mut theirs: Vec<&str> = theirs.lines().collect();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
    let magma = theirs
        .iter()
        .find(|path| path.ends_with("-magma"))
        .expect("magma");

    let info = json(&["path-info", "-S", "--store", &uri, &torch]);
    let size = |path: &str| -> u64 {
        nix_store(&root, &["-q", "--size", path])
            .trim()
            .parse()
            .expect("size")
    };
    assert_eq!(info[0]["narSize"], size(&torch));
    assert_eq!(info[0]["closureSize"], size(&torch) + size(magma));

    let why = json(&["why", "--store", &uri, &torch, magma]);
    assert_eq!(why["chain"][0]["file"], "lib/libtorch.so");
    // The offset is where magma's hash is, in the file as it is on disk.
    let library = root
        .join(torch.trim_start_matches('/'))
        .join("lib/libtorch.so");
    let bytes = std::fs::read(library).expect("read");
    let offset =
        usize::try_from(why["chain"][0]["offset"].as_u64().expect("offset")).expect("small");
    assert!(
        bytes[offset..].starts_with(&magma.as_bytes()["/nix/store/".len()..][..32]),
        "{why}"
    );
    // The policy check names the chain that pulls the denied package in.
    let (code, stdout, stderr) = run(&[
        "--json", "check", "--store", &uri, &torch, "--deny", "magma",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let denied = &report["violations"][0];
    assert_eq!(
        (denied["rule"].as_str(), denied["path"].as_str()),
        (Some("denied"), Some(*magma))
    );
    assert_eq!(denied["chain"][0]["file"], "lib/libtorch.so");
    let (code, stdout, stderr) = run(&["check", "--store", &uri, &torch]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, report, stderr) = run(&["store", "verify", "--store", &uri]);
    assert_eq!(code, 0, "{report}{stderr}");

    // Nothing that would write runs on it, nor a collection (Nix's roots are not in
    // its database: every path would look dead).
    let src = dir.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    let refused: [&[&str]; 5] = [
        &["store", "add", s(&src)],
        &["gc"],
        &["gc", "--dry-run"],
        &["store", "verify", "--repair"],
        &["store", "root", "add", "mine", &torch],
    ];
    for command in refused {
        let mut args = command.to_vec();
        args.extend(["--store", &uri]);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?} must be refused: {stderr}");
        assert!(
            stderr.contains("only reads") || stderr.contains("is Nix's database"),
            "{args:?}: {stderr}"
        );
    }
    // Nor when the database is named as a state folder.
    let database = root.join("nix/var/nix/db");
    let (code, _, stderr) = run(&[
        "gc",
        "--store-dir",
        "/nix/store",
        "--root",
        s(&root),
        "--state-dir",
        s(&database),
    ]);
    common::assert_refused(code, &stderr, "is Nix's database");
    // A store of cudapkgs laid over Nix's (the same --root, its own database): its
    // collections would take Nix's paths for its own.
    for command in [&["store", "add", s(&src)][..], &["gc"]] {
        let mut args = command.to_vec();
        args.extend(["--store-dir", "/nix/store", "--root", s(&root)]);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("is also Nix's store"), "{args:?}: {stderr}");
    }
    assert_eq!(state_of(&root), before, "the store or its database changed");
}

#[test]
fn path_info_answers_with_the_keys_and_values_of_nix_path_info() {
    let Some((_dir, root, torch, uri)) = built() else {
        return;
    };
    // `path-info -S -r --json` is `nix path-info -S -r --json`, key for key.
    let ours = json(&["path-info", "-S", "-r", "--store", &uri, &torch]);
    let theirs = common::nix::path_info(&root, &["-S", "-r", &torch]);
    let by_path = |list: &serde_json::Value| {
        let mut entries = list.as_array().expect("list").clone();
        entries.sort_by_key(|entry| entry["path"].as_str().expect("path").to_owned());
        entries
    };
    let (ours, theirs) = (by_path(&ours), by_path(&theirs));
    assert_eq!(ours.len(), 2);
    assert_eq!(ours.len(), theirs.len());
    for (ours, theirs) in ours.iter().zip(&theirs) {
        for key in [
            "path",
            "narHash",
            "narSize",
            "references",
            "closureSize",
            "registrationTime",
        ] {
            assert!(!theirs[key].is_null(), "nix wrote no {key}: {theirs}");
            assert_eq!(ours[key], theirs[key], "{key}: {ours} against {theirs}");
        }
    }
}

#[test]
fn a_user_who_cannot_write_a_nix_store_still_reads_it() {
    if common::tool("nix-build").is_none() || common::tool("runuser").is_none() {
        return;
    }
    let uid = Command::new("id").arg("-u").output().expect("id runs");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("SKIPPED: needs root (the read runs as another user)");
        return;
    }
    let dir = common::world_readable_tempdir();
    let root = dir.path().join("root");
    let torch = nix_build(&root);
    let database = root.join("nix/var/nix/db");
    for name in ["db.sqlite-wal", "db.sqlite-shm"] {
        assert!(
            !database.join(name).exists(),
            "no Nix process has the database open"
        );
    }
    let binary = dir.path().join("cudapkgs");
    std::fs::copy(env!("CARGO_BIN_EXE_cudapkgs"), &binary).expect("copy");
    let output = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&binary)
        .args([
            "closure",
            "--store",
            &format!("local?root={}", root.display()),
            &torch,
        ])
        .output()
        .expect("runuser runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 paths"));
}
