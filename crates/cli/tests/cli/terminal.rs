//! On a real terminal: `script` gives the binary a pseudo-terminal of 100 columns, as a
//! person's shell would. Downloads show a bar with the file's name and size, phases a
//! spinner with their count, a download round ends with one line; nothing of it in a
//! pipe, with `--quiet` or with `--json`. Tables fit the terminal's width.

use std::process::Command;

use crate::common::{self, PrivateStore, fixture, nvidia_args, s, served_mirror, tool};

/// The terminal's columns.
const COLUMNS: usize = 100;

/// What a terminal showed while `cudapkgs ARGS` ran in one: stdout and stderr as drawn,
/// escapes included; `None` outside CI when `script` is missing (said on stderr).
fn on_terminal(args: &[&str]) -> Option<String> {
    let script = tool("script")?;
    let mut line = format!("stty rows 40 cols {COLUMNS}; exec ");
    line.push_str(&shell_quote(env!("CARGO_BIN_EXE_cudapkgs")));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    let output = Command::new(script)
        .args([
            "--quiet",
            "--flush",
            "--return",
            "--command",
            &line,
            "/dev/null",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TERM", "xterm")
        .output()
        .expect("script runs");
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn inspecting_a_folder_shows_a_spinner_only_on_a_terminal_and_never_with_quiet_or_json() {
    // Relative, short enough for the spinner's label (the tests run in crates/cli).
    let folder = "../../fixtures/cuda/out";
    assert!(fixture("app").is_file());
    let Some(shown) = on_terminal(&["inspect", "--gpu", "9.0", folder]) else {
        return;
    };
    assert!(shown.contains(&format!("inspecting {folder}")), "{shown:?}");
    assert!(shown.contains(" files "), "{shown:?}");
    // The report itself is there too, after the spinner was cleared.
    assert!(shown.contains("kernels have no usable image"), "{shown:?}");
    for quiet in [
        &["--quiet", "inspect", "--gpu", "9.0", folder][..],
        &["--json", "inspect", "--gpu", "9.0", folder],
    ] {
        let shown = on_terminal(quiet).expect("script was found above");
        assert!(!shown.contains("inspecting"), "{quiet:?}: {shown:?}");
    }
    let (code, _, stderr) = common::run(&["inspect", "--gpu", "9.0", folder]);
    assert_eq!(code, 1, "one fixture has no image for 9.0: {stderr}");
    assert!(!stderr.contains("inspecting"), "{stderr:?}");
    assert!(!stderr.contains('\r'), "{stderr:?}");
}

#[test]
fn verifying_a_store_counts_its_paths_on_a_terminal() {
    let dir = tempfile::tempdir().expect("temp");
    let store = PrivateStore::under(dir.path());
    let package = dir.path().join("package");
    std::fs::create_dir(&package).expect("mkdir");
    std::fs::write(package.join("file"), b"contents").expect("write");
    store.add(&package);
    let mut args = vec!["store", "verify"];
    args.extend(store.args());
    let Some(shown) = on_terminal(&args) else {
        return;
    };
    assert!(
        shown.contains(&format!("verifying {}", s(&store.store))),
        "{shown:?}"
    );
    assert!(shown.contains("/1 paths"), "{shown:?}");
    assert!(shown.contains("1 valid path checked"), "{shown:?}");
}

#[test]
fn a_build_shows_each_download_and_phase_and_ends_with_one_line_each() {
    let Some(server) = served_mirror() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let store = PrivateStore::under(dir.path());
    let mut rest = store.args().to_vec();
    rest.push("cuda_cudart");
    let mut args = vec!["build".to_owned()];
    args.extend(nvidia_args(&server.url(), "13.0.2", &cache, &rest));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(shown) = on_terminal(&args) else {
        return;
    };
    // The bar may be drawn before any byte or after all of them, but always names the
    // file; its size shows as soon as a byte came.
    assert!(
        shown.contains("downloading cuda_cudart-linux-x86_64-13.0"),
        "{shown:?}"
    );
    assert!(shown.contains("downloaded 1 file ("), "{shown:?}");
    assert!(shown.contains("unpacking cuda_cudart"), "{shown:?}");
    assert!(shown.contains("built 1 package ("), "{shown:?}");

    // Built again from the record: nothing to download, unpack or add, nothing drawn.
    let again = on_terminal(&args).expect("script was found above");
    for phase in ["downloading", "downloaded", "unpacking", "adding"] {
        assert!(!again.contains(phase), "{phase}: {again:?}");
    }
}

#[test]
fn the_gpu_table_wraps_its_products_within_the_terminal_and_keeps_rows_whole_in_a_pipe() {
    let Some(shown) = on_terminal(&["gpus"]) else {
        return;
    };
    let shown = shown.replace('\r', "");
    let (code, piped, stderr) = common::run(&["gpus"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        piped.lines().any(|line| line.chars().count() > COLUMNS),
        "the table is wider than the terminal, or this proves nothing"
    );
    for line in shown.lines() {
        assert!(line.chars().count() <= COLUMNS, "{line:?}");
    }
    // The same words in the same order: only the line breaks differ.
    let words = |text: &str| {
        text.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(words(&shown), words(&piped));
    // A product name is never cut in two: each continuation line starts at the products
    // column with a whole name.
    let column = piped
        .lines()
        .next()
        .and_then(|header| header.find("products"))
        .expect("a products column");
    let continued: Vec<&str> = shown
        .lines()
        .filter(|line| line.starts_with(&" ".repeat(column)))
        .collect();
    assert!(!continued.is_empty(), "{shown}");
    for line in continued {
        let first = line[column..].split(',').next().unwrap_or_default();
        assert!(
            piped.contains(&format!(", {first}")),
            "{first:?} is not a whole product: {line:?}"
        );
    }
}

#[test]
fn push_and_copy_count_their_paths_on_a_terminal() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path();
    let store = PrivateStore::under(&work.join("a"));
    let package = work.join("package");
    std::fs::create_dir(&package).expect("mkdir");
    std::fs::write(package.join("file"), b"contents").expect("write");
    let path = store.add(&package);
    let (secret, public) = (work.join("k.sk"), work.join("k.pub"));
    let (code, _, stderr) = common::run(&["cache", "keygen", "test-1", s(&secret), s(&public)]);
    assert_eq!(code, 0, "{stderr}");
    let cache = format!("file://{}", s(&work.join("cache")));

    let mut push = vec!["push", "--to", &cache, "--secret-key-file", s(&secret)];
    push.extend(store.args());
    push.push(&path);
    let Some(shown) = on_terminal(&push) else {
        return;
    };
    assert!(
        shown.contains(&format!("pushing to {}", &cache[..20])),
        "{shown:?}"
    );
    assert!(shown.contains(" paths "), "{shown:?}");

    // Another store of the same store folder, under a root of its own.
    let (root, state) = (work.join("b-root"), work.join("b-state"));
    let other = [
        "--store-dir",
        s(&store.store),
        "--root",
        s(&root),
        "--state-dir",
        s(&state),
    ];
    let mut copy = vec!["copy", "--from", &cache, "--trusted-public-key", s(&public)];
    copy.extend(other);
    copy.push(&path);
    let shown = on_terminal(&copy).expect("script was found above");
    assert!(
        shown.contains(&format!("copying from {}", &cache[..20])),
        "{shown:?}"
    );
    let mut info = vec!["path-info"];
    info.extend(other);
    info.push(&path);
    let (code, _, stderr) = common::run(&info);
    assert_eq!(code, 0, "the copy registered the path: {stderr}");
}

#[test]
fn split_and_patch_auto_show_their_work_on_a_terminal() {
    let Some(mirror) = common::mirror() else {
        return;
    };
    let archives = mirror.join("cuda/redist/cuda_cudart/linux-x86_64");
    let archive = std::fs::read_dir(&archives)
        .expect("the mirror's cudart folder")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.to_string_lossy().ends_with(".tar.xz"))
        .expect("a cudart archive");
    let dir = tempfile::tempdir().expect("temp");
    let out = dir.path().join("out");
    let Some(shown) = on_terminal(&["split", s(&archive), "--out", s(&out)]) else {
        return;
    };
    assert!(shown.contains("unpacking "), "{shown:?}");
    assert!(out.join("lib").is_dir(), "{shown:?}");

    let shown = on_terminal(&["patch", "--auto", "--dry-run", s(&out.join("lib"))])
        .expect("script was found above");
    assert!(shown.contains("inspecting "), "{shown:?}");
    assert!(shown.contains(" files "), "{shown:?}");
}
