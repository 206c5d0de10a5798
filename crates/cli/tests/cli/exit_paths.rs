//! Every exit path of every command: one JSON document on stdout under `--json`, also for
//! usage errors that clap reports before any command runs; and a reader that closes the
//! pipe early is not an error.

use crate::common;

use std::process::{Command, Stdio};

/// The binary as a [`Command`] with the test's environment (these tests drive its pipes).
fn cudapkgs() -> Command {
    common::cudapkgs().inherit_env().command()
}

/// The subcommands `help` lists under "Commands:" for `path`, without `help` itself.
fn subcommands(path: &[String]) -> Vec<String> {
    let output = cudapkgs().args(path).arg("--help").output().expect("runs");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in text.lines() {
        if line == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            // Names sit at two spaces; wrapped descriptions are indented further.
            if line.as_bytes().get(2).is_some_and(|b| *b != b' ') {
                let name = line.split_whitespace().next().expect("a name");
                if name != "help" {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

/// Every runnable command path: leaves of the command tree.
fn command_paths() -> Vec<Vec<String>> {
    let mut leaves = Vec::new();
    let mut pending = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let children = subcommands(&path);
        if children.is_empty() {
            leaves.push(path);
        } else {
            for child in children {
                let mut next = path.clone();
                next.push(child);
                pending.push(next);
            }
        }
    }
    leaves.sort();
    leaves
}

#[test]
fn usage_errors_print_one_json_document_under_json() {
    let paths = command_paths();
    assert!(paths.len() >= 20, "the command tree was read: {paths:?}");
    for path in &paths {
        let help = cudapkgs().args(path).arg("--help").output().expect("runs");
        let takes_format = String::from_utf8_lossy(&help.stdout).contains("--format <");
        let spellings: &[&[&str]] = if takes_format {
            &[&["--json"], &["--format", "json"]]
        } else {
            &[&["--json"]]
        };
        for json in spellings {
            let output = cudapkgs()
                .args(path)
                .args(*json)
                .arg("--no-such-option")
                .output()
                .expect("runs");
            let stdout = String::from_utf8(output.stdout).expect("utf-8");
            let shown = format!(
                "cudapkgs {} {} --no-such-option",
                path.join(" "),
                json.join(" ")
            );
            assert_eq!(output.status.code(), Some(2), "{shown}");
            let document: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
                panic!("{shown}: stdout is not one JSON document ({e}): {stdout:?}")
            });
            let message = document["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("--no-such-option"), "{shown}: {document}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.starts_with("error: "), "{shown}: {stderr}");
        }
    }
}

#[test]
fn a_usage_error_without_json_prints_nothing_on_stdout() {
    let output = cudapkgs()
        .args(["gpus", "--no-such-option"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    // `--json` after `--` is an argument, not a request for JSON.
    let output = cudapkgs()
        .args(["inspect", "--no-such-option", "--", "--json"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}

#[test]
fn help_and_version_succeed() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["--json", "gpus", "--help"],
    ] {
        let output = cudapkgs().args(args).output().expect("runs");
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(!output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn the_version_under_json_is_a_json_document() {
    let output = cudapkgs()
        .args(["--json", "--version"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let version: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(version["name"], "cudapkgs");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_nar_is_no_json_document() {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(dir.path().join("f"), "x\n").expect("write");
    let output = cudapkgs()
        .args(["--json", "nar", "dump"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON error");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no JSON document")),
        "{error}"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // `gpus` prints a table longer than one line; the reader takes nothing.
    let mut child = cudapkgs()
        .arg("gpus")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("waits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}
