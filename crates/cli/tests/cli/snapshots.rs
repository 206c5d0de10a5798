//! What the commands print, text and JSON, on the committed fixtures: reviewed like code.
//! A change of wording or of a document shows here as a diff of the `.snap` files
//! (`INSTA_UPDATE=always cargo nextest run -p cudapkgs -E 'test(/snapshots/)'`, then read
//! the diff before committing it).

use std::path::Path;

use crate::common::{fixture, run_in};

/// Runs cudapkgs in the fixture folder (so paths print relative), expecting `code`;
/// stdout, then stderr when there is any.
fn output_of(code: i32, args: &[&str]) -> String {
    let folder = fixture("");
    let (got, stdout, stderr) = run_in(Path::new(&folder), args);
    assert_eq!(got, code, "{args:?}: {stdout}{stderr}");
    if stderr.is_empty() {
        stdout
    } else {
        format!("{stdout}--- stderr\n{stderr}")
    }
}

#[test]
fn inspect_one_library() {
    insta::assert_snapshot!(output_of(0, &["inspect", "libscale_a.so"]));
    insta::assert_snapshot!(output_of(0, &["--json", "inspect", "libscale_a.so"]));
}

#[test]
fn inspect_verdicts_for_two_gpus() {
    let args = [
        "inspect",
        "--gpu",
        "H100",
        "--gpu",
        "8.0",
        "libscale_a.so",
        "libscale_b.so",
        "libscale_i.so",
    ];
    insta::assert_snapshot!(output_of(1, &args));
}

#[test]
fn inspect_a_folder() {
    insta::assert_snapshot!(output_of(0, &["inspect", "--top", "5", "."]));
}

#[test]
fn prune_dry_run() {
    let args = ["prune", "--dry-run", "--capabilities", "9.0", "arch_a.so"];
    insta::assert_snapshot!(output_of(0, &args));
    let json = [&["--json"][..], &args].concat();
    insta::assert_snapshot!(output_of(0, &json));
}

#[test]
fn flags_for_two_gpus() {
    let args = [
        "flags", "--cuda", "12.9", "--gpu", "H100", "--gpu", "RTX 4090",
    ];
    insta::assert_snapshot!(output_of(0, &args));
    let json = [&args[..], &["--format", "json"]].concat();
    insta::assert_snapshot!(output_of(0, &json));
}

#[test]
fn gpus_of_a_release() {
    insta::assert_snapshot!(output_of(0, &["gpus", "--cuda", "13"]));
}

#[test]
fn nar_hash_of_a_fixture() {
    insta::assert_snapshot!(output_of(0, &["nar", "hash", "libscale_a.so"]));
}

#[test]
fn errors_for_people_and_for_programs() {
    insta::assert_snapshot!(output_of(2, &["flags", "--cuda", "banana"]));
    insta::assert_snapshot!(output_of(
        2,
        &["--json", "inspect", "--gpu", "Voodoo", "app"]
    ));
}
