//! What the commands print, text and JSON, on the committed fixtures: reviewed like code.
//! A change of wording or of a document shows here as a diff of the `.snap` files
//! (`INSTA_UPDATE=always cargo nextest run -p cudapkgs -E 'test(/snapshots/)'`, then read
//! the diff before committing it).

use std::fmt::Write as _;
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

/// [`output_of`] the words of `command`, then the same with `--json`.
fn text_and_json(code: i32, command: &str) -> (String, String) {
    let args: Vec<&str> = command.split_whitespace().collect();
    let json = [&["--json"][..], &args].concat();
    (output_of(code, &args), output_of(code, &json))
}

/// Commands whose text and JSON are each a snapshot, under the names of their files.
#[test]
fn commands_in_text_and_json() {
    for (name, code, command) in [
        (
            "prune_dry_run",
            0,
            "prune --dry-run --capabilities 9.0 arch_a.so",
        ),
        ("elf_of_a_program_and_a_library", 0, "elf app libscale_a.so"),
        (
            "patch_dry_run_names_each_change",
            0,
            "patch --dry-run --set-runpath $ORIGIN/../lib --set-soname libscale.so libscale_a.so",
        ),
        (
            "inspect_against_an_expectation",
            1,
            "inspect --expect-capabilities 8.0,9.0 libscale_a.so libscale_b.so",
        ),
        (
            "store_path_of_a_fixture",
            0,
            "store path --store-dir /nix/store app",
        ),
    ] {
        let (text, json) = text_and_json(code, command);
        insta::assert_snapshot!(name, text);
        insta::assert_snapshot!(format!("{name}-2"), json);
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

#[test]
fn flags_in_every_format() {
    let mut all = String::new();
    for format in ["nvcc", "cmake", "torch", "tensorflow", "nix", "env"] {
        let args = [
            "flags", "--cuda", "12.9", "--gpu", "L40S", "--format", format,
        ];
        let _ = writeln!(all, "$ cudapkgs {}", args.join(" "));
        all.push_str(&output_of(0, &args));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn gpus_as_json() {
    insta::assert_snapshot!(output_of(
        0,
        &["gpus", "--cuda", "12.9", "--format", "json"]
    ));
}

/// The options naming a store of this test's own at `/nix/store`, its files under a
/// root in `dir`.
fn store_options(dir: &Path) -> Vec<String> {
    let root = dir.join("root");
    let state = dir.join("state");
    [
        "--store-dir",
        "/nix/store",
        "--root",
        crate::common::s(&root),
        "--state-dir",
        crate::common::s(&state),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `cudapkgs [--json] WORDS… STORE-OPTIONS… OPERANDS…`: exit code, stdout and stderr.
fn on_store(dir: &Path, json: bool, words: &[&str], operands: &[&str]) -> (i32, String, String) {
    let options = store_options(dir);
    let mut args: Vec<&str> = Vec::new();
    if json {
        args.push("--json");
    }
    args.extend_from_slice(words);
    args.extend(options.iter().map(String::as_str));
    args.extend_from_slice(operands);
    crate::common::run(&args)
}

#[test]
fn a_store_described_path_by_path() {
    let dir = tempfile::tempdir().expect("temp");
    let dir = dir.path();
    let library_file = fixture("libscale_a.so");
    let (code, library, stderr) = on_store(
        dir,
        false,
        &["store", "add"],
        &[crate::common::s(&library_file)],
    );
    assert_eq!(code, 0, "{stderr}");
    let library = library.trim().to_owned();
    // A second path whose file names the first: a reference.
    let package = dir.join("package");
    std::fs::create_dir(&package).expect("mkdir");
    std::fs::write(package.join("uses"), format!("needs {library}\n")).expect("write");
    let (code, user, stderr) = on_store(
        dir,
        false,
        &["store", "add", "--scan-references"],
        &[crate::common::s(&package)],
    );
    assert_eq!(code, 0, "{stderr}");
    let user = user.trim().to_owned();

    let mut all = String::new();
    for (json, words, operands) in [
        (false, &["path-info", "-S", "-r"][..], &[user.as_str()][..]),
        (true, &["path-info", "-S", "-r"], &[&user]),
        (false, &["closure"], &[&user]),
        (true, &["closure"], &[&user]),
        (false, &["why"], &[&user, &library]),
        (false, &["diff"], &[&library, &user]),
        (false, &["store", "verify"], &[]),
        (false, &["gc", "--dry-run"], &[]),
    ] {
        let (code, stdout, stderr) = on_store(dir, json, words, operands);
        let json = if json { "--json " } else { "" };
        let _ = writeln!(
            all,
            "$ cudapkgs {json}{} STORE {} (exit {code})",
            words.join(" "),
            operands.join(" ")
        );
        all.push_str(&stdout);
        all.push_str(&stderr);
    }
    // What changes from run to run: the test's folder and the registration time.
    let all = all.replace(crate::common::s(dir), "[DIR]");
    insta::assert_snapshot!(registration_times_redacted(&all));
}

/// `"registrationTime": 1764681234` as `"registrationTime": [TIME]`.
fn registration_times_redacted(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once("\"registrationTime\": ") {
            Some((before, after)) => {
                let rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
                format!("{before}\"registrationTime\": [TIME]{rest}")
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `cudapkgs ARGS` in `dir` with `{mirror}` and `{dir}` filled in, `dir` redacted from
/// what it prints; `None` when the mirror is missing outside CI.
fn in_folder_with_mirror(dir: &Path, code: i32, args: &[&str]) -> Option<String> {
    let mirror = crate::common::mirror()?;
    let url = format!("file://{}", crate::common::s(&mirror));
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            arg.replace("{mirror}", &url)
                .replace("{dir}", crate::common::s(dir))
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (got, stdout, stderr) = crate::common::run_in(dir, &args);
    assert_eq!(got, code, "{args:?}: {stdout}{stderr}");
    let text = format!("{stdout}{stderr}");
    Some(
        text.replace(crate::common::s(dir), "[DIR]")
            .replace(&url, "[MIRROR]"),
    )
}

#[test]
fn a_release_listed_and_planned_from_a_mirror() {
    let dir = tempfile::tempdir().expect("temp");
    let list =
        "redist list --release 13.0.2 --base-url {mirror} --cache {dir}/dl --system linux-x86_64";
    let plan = "build --dry-run --source nvidia --cuda 13.0.2 --base-url {mirror} --cache {dir}/dl --system linux-x86_64 cuda_nvrtc";
    let mut shown = Vec::new();
    for command in [list, plan] {
        let args: Vec<&str> = command.split_whitespace().collect();
        let json = [&["--json"][..], &args].concat();
        for args in [args, json] {
            let Some(text) = in_folder_with_mirror(dir.path(), 0, &args) else {
                return;
            };
            shown.push(text);
        }
    }
    // The names of the files the four snapshots had when each was asserted on its own.
    let name = "a_release_listed_and_planned_from_a_mirror";
    for (index, text) in shown.iter().enumerate() {
        let file = if index == 0 {
            name.to_owned()
        } else {
            format!("{name}-{}", index + 1)
        };
        insta::assert_snapshot!(file, text);
    }
}

#[test]
fn a_tree_checked_and_its_targets_scanned() {
    let dir = tempfile::tempdir().expect("temp");
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    for name in ["libscale_a.so", "libscale_i.so"] {
        std::fs::copy(fixture(name), tree.join(name)).expect("copy");
    }
    std::fs::write(
        tree.join("CMakeLists.txt"),
        "project(x LANGUAGES CUDA)\nset(CMAKE_CUDA_ARCHITECTURES \"70;75;80\")\n",
    )
    .expect("write");
    let run = |args: &[&str]| {
        let (code, stdout, stderr) = crate::common::run_in(dir.path(), args);
        format!(
            "$ cudapkgs {} (exit {code})\n{stdout}{stderr}",
            args.join(" ")
        )
    };
    let mut all = String::new();
    for args in [
        // Inside the tree as its own file system: no library of this machine counts.
        &["check", "--gpu", "H100", "--root-fs", "tree", "./tree"][..],
        &[
            "--json",
            "check",
            "--gpu",
            "H100",
            "--root-fs",
            "tree",
            "./tree",
        ],
        &["targets", "scan", "--gpu", "H100", "tree"],
        &["--json", "targets", "scan", "--gpu", "H100", "tree"],
    ] {
        all.push_str(&run(args));
    }
    insta::assert_snapshot!(all.replace(crate::common::s(dir.path()), "[DIR]"));
}

#[test]
fn the_documents_with_a_schema() {
    insta::assert_snapshot!(output_of(0, &["schema"]));
}
