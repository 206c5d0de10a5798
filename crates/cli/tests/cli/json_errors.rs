//! Under `--json`, every failure is one JSON error document on stdout: usage errors of
//! every command (which clap reports before any command runs) and failures found while
//! a command runs.

use crate::common::run;

/// Every command and subcommand, as the binary's own reference lists them.
fn every_command() -> Vec<Vec<String>> {
    let (code, reference, stderr) = run(&["man", "--format", "markdown"]);
    assert_eq!(code, 0, "{stderr}");
    let commands: Vec<Vec<String>> = reference
        .lines()
        .filter_map(|line| line.strip_prefix("## cudapkgs "))
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|words| !words.iter().any(|word| word == "help"))
        .collect();
    assert!(commands.len() > 30, "{commands:?}");
    commands
}

/// The one document on stdout, which must be an error with a message.
fn error_document(args: &[&str], stdout: &str) -> serde_json::Value {
    let document: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|error| panic!("{args:?}: not one JSON document ({error}): {stdout}"));
    let message = document["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{args:?}: {document}");
    document
}

#[test]
fn every_command_answers_a_bad_argument_with_one_json_error_document() {
    for command in every_command() {
        let mut args = vec!["--json"];
        args.extend(command.iter().map(String::as_str));
        args.push("--no-such-option");
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        let document = error_document(&args, &stdout);
        assert!(
            document["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("--no-such-option")),
            "{args:?}: {document}"
        );
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn failures_found_while_running_are_one_json_error_document_too() {
    let missing = "/nonexistent/cudapkgs-test-input";
    let bad_store_path = "/nix/store/00000000000000000000000000000000-none";
    let no_store = "/tmp/cudapkgs-no-store";
    let stopping: [&[&str]; 10] = [
        &["build", "--all"],
        &["flags", "--cuda", "banana"],
        &["store", "verify", "--store-dir", no_store],
        &["inspect", "--gpu", "no-such-gpu", missing],
        &["nar", "hash", missing],
        &["store", "path", missing],
        &["path-info", "--store-dir", no_store, bad_store_path],
        &["closure", "--store-dir", no_store, bad_store_path],
        &["split", missing, "--out", "/tmp/cudapkgs-no-such-out"],
        &["targets", "scan", missing],
    ];
    for case in stopping {
        let mut args = vec!["--json"];
        args.extend_from_slice(case);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        error_document(&args, &stdout);
    }
    let (_, stdout, _) = run(&["--json", "build", "--all"]);
    assert_eq!(
        error_document(&["build", "--all"], &stdout)["error"]["hint"],
        "add --source nvidia"
    );
}

#[test]
fn commands_over_many_files_report_each_failure_inside_their_one_document() {
    let missing = "/nonexistent/cudapkgs-test-input";
    let per_file: [&[&str]; 4] = [
        &["inspect", missing],
        &["prune", "--capabilities", "9.0", missing],
        &["patch", "--set-runpath", "/x", missing],
        &["elf", missing],
    ];
    for case in per_file {
        let mut args = vec!["--json"];
        args.extend_from_slice(case);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        let document: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("{args:?}: not one JSON document ({error}): {stdout}"));
        assert!(document.get("error").is_none(), "{args:?}: {document}");
        let text = document.to_string();
        assert!(
            text.contains(missing) && text.contains("No such file or directory"),
            "{args:?}: {document}"
        );
    }
}
