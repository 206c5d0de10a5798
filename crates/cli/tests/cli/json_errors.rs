//! Under `--json`, every failure is one JSON error document on stdout: usage errors of
//! every command (which clap reports before any command runs) and failures found while
//! a command runs.

use crate::common::{run, s};

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

/// A store whose database file is garbage: SQLite's refusal is the cause of cudapkgs'.
fn store_with_garbage_database(dir: &std::path::Path) -> (Vec<String>, String) {
    let root = dir.join("root");
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("hello"), b"hello\n").expect("write");
    let in_store = |args: &[&str]| -> Vec<String> {
        let store = ["--store-dir", "/nix/store", "--root", s(&root)];
        args.iter()
            .chain(&store)
            .map(|arg| (*arg).to_owned())
            .collect()
    };
    let add = in_store(&["store", "add", s(&tree)]);
    let (code, added, stderr) = run(&add.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stderr}");
    let database = root.join("nix/var/cudapkgs/db.sqlite");
    std::fs::write(&database, b"not a database\n".repeat(100)).expect("write");
    (
        in_store(&["path-info", added.trim()]),
        database.display().to_string(),
    )
}

#[test]
fn a_failure_prints_its_causes_beneath_a_message_that_does_not_repeat_them() {
    let dir = tempfile::tempdir().expect("temp");
    let (args, database) = store_with_garbage_database(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 2, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    // The message says what failed and where; SQLite's words follow as its cause.
    assert_eq!(
        lines.first().copied(),
        Some(format!("error: {database} is not a usable store database").as_str()),
        "{stderr}"
    );
    let causes: Vec<&str> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("  caused by: "))
        .collect();
    assert!(
        causes
            .first()
            .is_some_and(|cause| cause.contains("not a database")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .position(|line| line.starts_with("  caused by: "))
            < lines.iter().position(|line| line.starts_with("hint: ")),
        "{stderr}"
    );

    let mut json = vec!["--json"];
    json.extend_from_slice(&args);
    let (code, stdout, stderr) = run(&json);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let document = error_document(&json, &stdout);
    assert_eq!(
        document["error"]["message"],
        format!("{database} is not a usable store database"),
        "{document}"
    );
    let json_causes: Vec<&str> = document["error"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("no causes: {document}"))
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert_eq!(json_causes, causes, "{document}");
}

#[test]
fn a_failure_without_a_cause_has_an_empty_list_of_causes() {
    let (code, stdout, stderr) = run(&["--json", "flags", "--cuda", "banana"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let document = error_document(&["flags"], &stdout);
    assert_eq!(
        document["error"]["causes"],
        serde_json::json!([]),
        "{document}"
    );
    assert!(!stderr.contains("caused by:"), "{stderr}");
}
