//! Build records in a binary cache: a store that built the real CUDA runtime and NVRTC
//! from a mirror pushes them with its signed record; a second store, with an empty
//! download cache, builds the same request from the binary cache alone (the mirror sees
//! no archive requested) to the same paths. Records signed by another key, and caches
//! that hold none, are passed over and the set is built.

use crate::common;

use std::path::Path;

use common::serve::Serve;
use common::{Server, nvidia_args, rooted_store_args, run, s, served_mirror};

/// The packages each test here builds and pushes.
const THE_SET: [&str; 2] = ["cuda_cudart", "cuda_nvrtc"];

/// `build --source nvidia` of the mirror's CUDA runtime and NVRTC into a store under
/// `root` (store folder `/nix/store`, as machines that share a cache have), with `extra`.
fn build(
    base: &str,
    root: &Path,
    cache: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let mut rest = rooted_store_args(root).to_vec();
    rest.extend(THE_SET);
    rest.extend_from_slice(extra);
    let mut args = vec!["--json".to_owned(), "build".to_owned()];
    args.extend(nvidia_args(base, "13.0.2", cache, &rest));
    let (code, stdout, stderr) = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (code, json, stderr)
}

fn outputs(built: &serde_json::Value) -> Vec<serde_json::Value> {
    built
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["outputs"].clone())
        .collect()
}

/// The archives the mirror was asked for.
fn archive_requests(server: &Server) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|line| line.contains(".tar.xz") || line.contains(".whl"))
        .collect()
}

/// A key pair `name` in `dir`: (secret file, public file).
fn keygen(dir: &Path, file: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (sk, pk) = (
        dir.join(format!("{file}.sk")),
        dir.join(format!("{file}.pk")),
    );
    let (code, _, stderr) = run(&["cache", "keygen", "ci-1", s(&sk), s(&pk)]);
    assert_eq!(code, 0, "{stderr}");
    (sk, pk)
}

/// Pushes the set built under `root` to `cache`: refused until each package's licence
/// basis is given, then with its record.
fn push_set(root: &Path, cache: &str, sk: &Path) {
    let mut push = vec!["--json", "push", "--to", cache, "--secret-key-file", s(sk)];
    push.extend(rooted_store_args(root));
    push.extend(THE_SET);
    // NVIDIA's licences forbid redistributing some components: without a basis for
    // each package (or a private cache) nothing goes.
    let (code, _, stderr) = run(&push);
    assert_eq!(code, 2, "{stderr}");
    for package in ["cuda_cudart (CUDA Toolkit)", "cuda_nvrtc (CUDA Toolkit)"] {
        assert!(stderr.contains(package), "{stderr}");
    }
    let folder = Path::new(cache.trim_start_matches("file://"));
    assert!(
        std::fs::read_dir(folder).map_or(0, Iterator::count) == 0,
        "nothing written to the cache"
    );
    push.extend([
        "--redistributable",
        "cuda_cudart",
        "--redistributable",
        "cuda_nvrtc",
    ]);
    let (code, stdout, stderr) = run(&push);
    assert_eq!(code, 0, "{stderr}");
    let pushed: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        pushed["records"].as_array().map(Vec::len),
        Some(1),
        "{pushed}"
    );
}

/// `store verify` is clean and `gc` keeps everything in the store under `root`.
fn assert_registered_and_rooted(root: &Path) {
    for command in [&["store", "verify"][..], &["gc", "--dry-run"]] {
        let mut args = vec!["--json"];
        args.extend_from_slice(command);
        args.extend(rooted_store_args(root));
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{command:?}: {stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        if command[0] == "gc" {
            assert_eq!(report["removed"], serde_json::json!([]), "{report}");
        }
    }
}

#[test]
fn a_second_store_takes_a_recorded_build_from_the_cache_and_downloads_no_archive() {
    let Some(server) = served_mirror() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let base = server.url();
    let (sk, pk) = keygen(dir.path(), "cache");
    let (_, impostor) = keygen(dir.path(), "other");

    let first_root = dir.path().join("a");
    let (code, first, stderr) = build(&base, &first_root, &dir.path().join("cache-a"), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        archive_requests(&server).len(),
        2,
        "the first store downloads both"
    );
    let binary_cache = format!("file://{}", dir.path().join("binary-cache").display());
    push_set(&first_root, &binary_cache, &sk);

    // Trusting another key under the same name: the record is passed over, and built.
    let substituter = ["--substituter", &binary_cache, "--trusted-public-key"];
    let (code, built, stderr) = build(
        &base,
        &dir.path().join("u"),
        &dir.path().join("cache-u"),
        &[&substituter[..], &[s(&impostor)]].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("no trusted key signed it"), "{stderr}");
    assert_eq!(built[0]["reused"], false);
    assert_eq!(
        archive_requests(&server).len(),
        4,
        "built from the archives"
    );

    let (second_root, second_cache) = (dir.path().join("b"), dir.path().join("cache-b"));
    let (code, second, stderr) = build(
        &base,
        &second_root,
        &second_cache,
        &[&substituter[..], &[s(&pk)]].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("taken from"), "{stderr}");
    assert_eq!(outputs(&second), outputs(&first), "the same paths");
    assert_eq!(
        archive_requests(&server).len(),
        4,
        "the second store downloads no archive"
    );
    assert!(
        std::fs::read_dir(second_cache.join("sha256")).map_or(0, Iterator::count) == 0,
        "nothing in its download cache"
    );
    assert_registered_and_rooted(&second_root);
    // And a second run there is a plain record hit.
    let (code, again, stderr) = build(&base, &second_root, &second_cache, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again[0]["reused"], true);

    // Over HTTP, from the first store served as it is (its record signed on the fly)
    // and from the binary cache served as a folder.
    let store_server = Serve::spawn(
        dir.path(),
        &[
            "--store-dir",
            "/nix/store",
            "--root",
            s(&first_root),
            "--store",
            "--secret-key-file",
            s(&sk),
        ],
        &[],
    );
    let cache_server = Serve::spawn(dir.path(), &["--cache", &binary_cache], &[]);
    for (name, url) in [("store", &store_server.url), ("cache", &cache_server.url)] {
        let (code, built, stderr) = build(
            &base,
            &dir.path().join(format!("over-{name}")),
            &dir.path().join(format!("cache-{name}")),
            &["--substituter", url, "--trusted-public-key", s(&pk)],
        );
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stderr.contains("taken from"), "{name}: {stderr}");
        assert_eq!(outputs(&built), outputs(&first), "{name}");
        assert_eq!(archive_requests(&server).len(), 4, "{name}");
    }
}
