//! Build records: a second build of the same inputs takes its outputs from the store's
//! record (nothing unpacked or added), `--rebuild` builds again to the same paths, other
//! inputs are another build, and a record whose outputs were collected is built again.

use crate::common;

use std::path::Path;

use common::tar::{file, nvidia_archive};
use common::{run, s};

fn build(dir: &Path, archive: &Path, extra: &[&str]) -> serde_json::Value {
    let input = format!("libfoo={}", archive.display());
    common::build_json(dir, &input, extra)
}

/// Names in the store folder, sorted (what an add would change).
fn store_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("store"))
        .expect("store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_same_inputs_are_built_once() {
    let dir = tempfile::tempdir().expect("temp");
    let archive = nvidia_archive(
        dir.path(),
        "libfoo",
        "1.0.0",
        &[
            file("libfoo/lib/libfoo.so.1", b"one"),
            file("libfoo/include/foo.h", b"1"),
        ],
    );
    let first = build(dir.path(), &archive, &[]);
    assert_eq!(first[0]["reused"], false);
    let entries = store_entries(dir.path());

    let second = build(dir.path(), &archive, &[]);
    assert_eq!(second[0]["reused"], true, "{second}");
    assert_eq!(second[0]["outputs"], first[0]["outputs"]);
    assert_eq!(
        store_entries(dir.path()),
        entries,
        "nothing added or left behind"
    );
    let (_, _, stderr) = run(&[
        "build",
        &format!("libfoo={}", archive.display()),
        "--store-dir",
        s(&dir.path().join("store")),
        "--state-dir",
        s(&dir.path().join("state")),
        "--cache",
        s(&dir.path().join("cache")),
    ]);
    assert!(stderr.contains("1 package already built"), "{stderr}");

    let forced = build(dir.path(), &archive, &["--rebuild"]);
    assert_eq!(forced[0]["reused"], false);
    assert_eq!(
        forced[0]["outputs"], first[0]["outputs"],
        "the same inputs, the same paths"
    );

    // Other contents under the same name are other inputs.
    std::fs::remove_file(&archive).expect("rm");
    let changed = nvidia_archive(
        dir.path(),
        "libfoo",
        "1.0.0",
        &[
            file("libfoo/lib/libfoo.so.1", b"changed"),
            file("libfoo/include/foo.h", b"1"),
        ],
    );
    let other = build(dir.path(), &changed, &[]);
    assert_eq!(other[0]["reused"], false);
    assert_ne!(other[0]["outputs"]["lib"], first[0]["outputs"]["lib"]);
}

#[test]
fn a_record_whose_outputs_were_collected_is_built_again() {
    let dir = tempfile::tempdir().expect("temp");
    let archive = nvidia_archive(
        dir.path(),
        "libfoo",
        "1.0.0",
        &[file("libfoo/lib/libfoo.so.1", b"one")],
    );
    let first = build(dir.path(), &archive, &["--no-gc-roots"]);
    let (store, state) = (dir.path().join("store"), dir.path().join("state"));
    let (code, _, stderr) = run(&["gc", "--store-dir", s(&store), "--state-dir", s(&state)]);
    assert_eq!(code, 0, "{stderr}");
    let lib = first[0]["outputs"]["lib"].as_str().expect("lib");
    assert!(!Path::new(lib).exists(), "collected");
    let again = build(dir.path(), &archive, &[]);
    assert_eq!(again[0]["reused"], false, "a stale record is not trusted");
    assert_eq!(again[0]["outputs"], first[0]["outputs"]);
    assert!(Path::new(lib).exists());
}
