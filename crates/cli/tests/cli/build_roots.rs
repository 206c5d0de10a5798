//! Roots of builds of different versions, or of one version from other inputs: the
//! latest build takes the short names (`libfoo-lib`), every build keeps roots named by
//! its paths (`<hash>-libfoo-1.0.0-lib`), so no build moves another out of the
//! collector's reach.

use crate::common;

use std::path::Path;

use common::tar::{file, nvidia_archive};
use common::{run, s};

fn build(dir: &Path, archive: &Path) -> serde_json::Value {
    let input = format!("libfoo={}", archive.display());
    let (code, stdout, stderr) = run(&[
        "--json",
        "build",
        &input,
        "--store-dir",
        s(&dir.join("store")),
        "--state-dir",
        s(&dir.join("state")),
        "--cache",
        s(&dir.join("cache")),
    ]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("json")
}

/// A store path's base name: the root each build's output keeps.
fn base(path: &str) -> &str {
    path.rsplit('/').next().expect("base name")
}

fn store_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let (store, state) = (dir.join("store"), dir.join("state"));
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all.extend(["--store-dir", s(&store), "--state-dir", s(&state)]);
    let (code, stdout, stderr) = run(&all);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("json")
}

#[test]
fn a_build_of_another_version_keeps_the_first_rooted() {
    let dir = tempfile::tempdir().expect("temp");
    // Each version's library and header hold words of their own.
    let version = |number: &str, library: &[u8], header: &[u8]| {
        nvidia_archive(
            dir.path(),
            "libfoo",
            number,
            &[
                file("libfoo/lib/libfoo.so.1", library),
                file("libfoo/include/foo.h", header),
            ],
        )
    };
    let first = version("1.0.0", b"one", b"1");
    let second = version("2.0.0", b"two", b"2");
    let one = build(dir.path(), &first);
    let two = build(dir.path(), &second);
    let lib =
        |built: &serde_json::Value| built[0]["outputs"]["lib"].as_str().expect("lib").to_owned();
    assert_ne!(lib(&one), lib(&two));

    let collection = store_json(dir.path(), &["gc", "--dry-run"]);
    assert_eq!(collection["removed"], serde_json::json!([]), "{collection}");

    let roots = store_json(dir.path(), &["store", "root", "list"]);
    let root = |name: &str| {
        roots
            .as_array()
            .expect("roots")
            .iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["path"].as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        root("libfoo-lib"),
        Some(lib(&two)),
        "the short name follows the latest"
    );
    assert_eq!(root(base(&lib(&one))), Some(lib(&one)));
    assert_eq!(root(base(&lib(&two))), Some(lib(&two)));
    let took = |root: &str, output: &str| serde_json::json!({"root": root, "was": one[0]["outputs"][output]});
    assert_eq!(
        two[0]["repointed"],
        serde_json::json!([
            took("libfoo-lib", "lib"),
            took("libfoo-include", "include"),
            took("libfoo-dev", "dev"),
            took("libfoo", "out"),
        ]),
        "the build says which short names it took"
    );

    // Once the first version's own roots go, so can it.
    for output in ["lib", "include", "dev", "out"] {
        let name = base(one[0]["outputs"][output].as_str().expect("output"));
        let removed = store_json(dir.path(), &["store", "root", "remove", name]);
        assert_eq!(removed["removed"], name);
    }
    let collection = store_json(dir.path(), &["gc", "--dry-run"]);
    let removed: Vec<&str> = collection["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .map(|r| r["path"].as_str().expect("path"))
        .collect();
    let left = store_json(dir.path(), &["store", "root", "list"]);
    assert!(removed.contains(&lib(&one).as_str()), "{collection} {left}");
    assert!(!removed.contains(&lib(&two).as_str()), "{collection}");
}

#[test]
fn a_build_of_the_same_version_from_other_inputs_keeps_the_first_rooted() {
    let dir = tempfile::tempdir().expect("temp");
    let archive = |bytes: &[u8]| {
        let folder = dir.path().join(format!("{}", bytes.len()));
        std::fs::create_dir(&folder).expect("mkdir");
        nvidia_archive(
            &folder,
            "libfoo",
            "1.0.0",
            &[file("libfoo/lib/libfoo.so.1", bytes)],
        )
    };
    let (first, second) = (archive(b"one"), archive(b"other"));
    let one = build(dir.path(), &first);
    let two = build(dir.path(), &second);
    let lib =
        |built: &serde_json::Value| built[0]["outputs"]["lib"].as_str().expect("lib").to_owned();
    assert_ne!(lib(&one), lib(&two));
    // Both paths are named `libfoo-1.0.0-lib`: a root by that name alone would have
    // moved to the second build, while the warning said the first stays rooted.
    assert_eq!(base(&lib(&one))[33..], base(&lib(&two))[33..]);
    let collection = store_json(dir.path(), &["gc", "--dry-run"]);
    assert_eq!(collection["removed"], serde_json::json!([]), "{collection}");
    assert_eq!(
        two[0]["repointed"][0],
        serde_json::json!({"root": "libfoo-lib", "was": lib(&one)})
    );
}
