//! The manual and the completions: docs/commands.md is what the binary writes, the man
//! page is roff that groff reads without a warning, and bash takes the completion script.

use std::process::Command;

use crate::common::{self, repo, run, tool};

#[test]
fn docs_commands_md_is_the_reference_the_binary_writes() {
    let (code, written, stderr) = run(&["man", "--format", "markdown"]);
    assert_eq!(code, 0, "{stderr}");
    let committed =
        std::fs::read_to_string(repo().join("docs/commands.md")).expect("docs/commands.md");
    assert!(
        committed == written,
        "docs/commands.md differs from the help: write it again with \
         `cargo run -q -- man --format markdown > docs/commands.md`"
    );
    for section in [
        "## cudapkgs build\n",
        "## cudapkgs store root add\n",
        "--capabilities",
    ] {
        assert!(written.contains(section), "{section}");
    }
}

#[test]
fn the_man_page_is_roff_groff_reads_without_warnings() {
    let Some(groff) = tool("groff") else {
        eprintln!("SKIPPED: needs groff");
        return;
    };
    let (code, page, stderr) = run(&["man"]);
    assert_eq!(code, 0, "{stderr}");
    let page_file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(page_file.path(), &page).expect("written");
    let rendered = Command::new(groff)
        // Plain text: no overstriking for bold, so headings read as words.
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .arg(page_file.path())
        .output()
        .expect("groff runs");
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(
        rendered.status.success() && warnings.is_empty(),
        "{warnings}"
    );
    let text = String::from_utf8_lossy(&rendered.stdout);
    for words in ["COMMANDS", "cudapkgs store root add", "--capabilities"] {
        assert!(text.contains(words), "the rendered page lacks {words}");
    }
}

#[test]
fn bash_takes_the_completion_script_and_completes_commands() {
    let Some(bash) = tool("bash") else {
        eprintln!("SKIPPED: needs bash");
        return;
    };
    let (code, script, stderr) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{stderr}");
    let script_file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(script_file.path(), &script).expect("written");
    // Complete `cudapkgs sto` the way bash's completion machinery would.
    let probe = format!(
        "source {}; COMP_WORDS=(cudapkgs sto); COMP_CWORD=1; COMP_LINE='cudapkgs sto'; \
         COMP_POINT=${{#COMP_LINE}}; _cudapkgs cudapkgs sto cudapkgs; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        common::s(script_file.path())
    );
    let completed = Command::new(bash)
        .args(["--norc", "-c", &probe])
        .output()
        .expect("bash runs");
    let words = String::from_utf8_lossy(&completed.stdout);
    assert!(
        completed.status.success() && words.lines().any(|word| word == "store"),
        "{words}{}",
        String::from_utf8_lossy(&completed.stderr)
    );
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let (code, stdout, stderr) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.contains("tcsh") && stderr.contains("bash"),
        "{stderr}"
    );
}
