//! End-to-end tests of `cudapkgs patch`, checked with `cudapkgs elf` and patchelf.

use crate::common;

use common::{fixture, run, run_in, run_within, s, tool};

use std::path::{Path, PathBuf};

use serde_json::Value;

fn runpath(path: &Path) -> Option<String> {
    let (_, json, _) = run(&["elf", "--json", s(path)]);
    let report: Value = serde_json::from_str(&json).expect("json");
    report["files"][0]["runpath"].as_str().map(str::to_owned)
}

/// A small package: a program in bin/, two libraries in lib/, one of which loads the
/// driver (the CUDA runtime, which dlopens libcuda.so.1).
fn package() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("pkg");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::create_dir_all(root.join("lib/stubs")).expect("mkdir");
    std::fs::copy(fixture("app"), root.join("bin/app")).expect("copy");
    std::fs::copy(fixture("multiarch.so"), root.join("lib/libmulti.so")).expect("copy");
    let cudart = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/nvidia/nvidia/cu13/lib/libcudart.so.13");
    if cudart.exists() {
        std::fs::copy(&cudart, root.join("lib/libcudart.so.13")).expect("copy");
    } else {
        assert!(!cudapkgs_testkit::ci(), "NVIDIA libraries missing");
        std::fs::write(
            root.join("lib/libcudart.so.13"),
            std::fs::read(fixture("multiarch.so")).expect("read"),
        )
        .expect("write");
    }
    // A stub that must never end up in a runpath.
    std::fs::copy(
        fixture("multiarch.so"),
        root.join("lib/stubs/libcudart.so.13"),
    )
    .expect("copy");
    let root = std::fs::canonicalize(root).expect("canonical");
    (dir, root)
}

#[test]
fn explicit_changes_and_idempotence() {
    let dir = tempfile::tempdir().expect("temp");
    let lib = dir.path().join("libk.so");
    std::fs::copy(fixture("multiarch.so"), &lib).expect("copy");

    let (code, stdout, _) = run(&["patch", "--set-runpath", "$ORIGIN:/opt/cuda/lib64", s(&lib)]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("changed: runpath (none) → '$ORIGIN:/opt/cuda/lib64'"),
        "{stdout}"
    );
    assert_eq!(runpath(&lib).as_deref(), Some("$ORIGIN:/opt/cuda/lib64"));

    let (_, stdout, _) = run(&["patch", "--set-runpath", "$ORIGIN:/opt/cuda/lib64", s(&lib)]);
    assert!(stdout.contains("unchanged"), "{stdout}");

    run(&["patch", "--add-runpath", "/first", "--prepend", s(&lib)]);
    assert_eq!(
        runpath(&lib).as_deref(),
        Some("/first:$ORIGIN:/opt/cuda/lib64")
    );
    run(&["patch", "--add-runpath", "/last:/first", s(&lib)]);
    assert_eq!(
        runpath(&lib).as_deref(),
        Some("/first:$ORIGIN:/opt/cuda/lib64:/last")
    );

    // Nothing in those folders provides a needed library: shrinking removes them all.
    run(&["patch", "--shrink-runpath", s(&lib)]);
    assert_eq!(runpath(&lib), None);

    let (code, json, _) = run(&[
        "patch",
        "--json",
        "--replace-needed",
        "libcudart.so.13",
        "libcudart.so.14",
        "--set-soname",
        "libk.so.1",
        s(&lib),
    ]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["files"][0]["changed"], true);
    let (_, view, _) = run(&["elf", "--json", s(&lib)]);
    let view: Value = serde_json::from_str(&view).expect("json");
    assert_eq!(view["files"][0]["soname"], "libk.so.1");
    assert_eq!(view["files"][0]["needed"][0], "libcudart.so.14");
    // The report names each entry that changed, as the file now has it.
    assert_eq!(
        report["files"][0]["edits"],
        serde_json::json!([
            {"entry": "soname", "before": null, "after": "libk.so.1"},
            {"entry": "needed", "before": "libcudart.so.13", "after": "libcudart.so.14"},
        ])
    );
    let (_, stdout, _) = run(&["patch", "--set-soname", "libk.so.2", s(&lib)]);
    assert!(
        stdout.contains("changed: soname 'libk.so.1' → 'libk.so.2'\n"),
        "{stdout}"
    );
    let (_, stdout, _) = run(&["patch", "--force-rpath", "--set-runpath", "/r", s(&lib)]);
    assert!(
        stdout.contains("changed: runpath (none) → rpath '/r'\n"),
        "{stdout}"
    );
}

#[test]
fn dry_run_writes_nothing_and_bad_files_stay_untouched() {
    let dir = tempfile::tempdir().expect("temp");
    let lib = dir.path().join("libk.so");
    std::fs::copy(fixture("multiarch.so"), &lib).expect("copy");
    let before = std::fs::read(&lib).expect("read");
    let (code, stdout, _) = run(&["patch", "--dry-run", "--set-runpath", "/x", s(&lib)]);
    assert_eq!(code, 0);
    assert!(stdout.contains("would change"), "{stdout}");
    assert_eq!(std::fs::read(&lib).expect("read"), before);

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").expect("write");
    let object = dir.path().join("rdc.o");
    std::fs::copy(fixture("rdc_a.o"), &object).expect("copy");
    let object_before = std::fs::read(&object).expect("read");
    let (code, _, stderr) = run(&[
        "patch",
        "--set-runpath",
        "/x",
        s(&text),
        s(&object),
        s(&lib),
    ]);
    common::assert_refused(code, &stderr, "notes.txt: not an ELF file (left untouched)");
    assert!(stderr.contains("no dynamic section"), "{stderr}");
    assert_eq!(std::fs::read(&text).expect("read"), b"hello");
    assert_eq!(std::fs::read(&object).expect("read"), object_before);
    assert_eq!(
        runpath(&lib).as_deref(),
        Some("/x"),
        "the good file is still patched"
    );
    assert!(std::fs::read_dir(dir.path()).expect("dir").all(|e| {
        !e.expect("e")
            .file_name()
            .to_string_lossy()
            .starts_with(".cudapkgs")
    }));

    let (code, _, stderr) = run(&["patch", s(&lib)]);
    common::assert_refused(code, &stderr, "nothing to do");
}

/// `readelf -d`'s lines for the search paths of `path`.
fn search_path_entries(readelf: &Path, path: &Path) -> Vec<String> {
    let output = std::process::Command::new(readelf)
        .arg("-d")
        .arg(path)
        .output()
        .expect("readelf runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("(RPATH)") || line.contains("(RUNPATH)"))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Builds, in `dir`, `lib/libb.so`, `lib/liba.so` (which needs libb and has no search
/// path of its own) and `app`, which needs liba and has the DT_RPATH `$ORIGIN/lib`:
/// the loader finds libb through the program's DT_RPATH, as it would not through a
/// DT_RUNPATH.
fn program_with_rpath(gcc: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir(dir.join("lib")).expect("mkdir");
    let compile = |source: &str, args: &[&str]| {
        let file = dir.join("source.c");
        std::fs::write(&file, source).expect("write");
        let status = std::process::Command::new(gcc)
            .arg(&file)
            .args(args)
            .current_dir(dir)
            .status()
            .expect("gcc runs");
        assert!(status.success(), "gcc {args:?}");
    };
    compile(
        "int b(void) { return 42; }",
        &["-shared", "-fPIC", "-o", "lib/libb.so"],
    );
    compile(
        "int b(void); int a(void) { return b(); }",
        &["-shared", "-fPIC", "-o", "lib/liba.so", "-Llib", "-lb"],
    );
    compile(
        "#include <stdio.h>\nint a(void); int main(void) { printf(\"%d\\n\", a()); return 0; }",
        &[
            "-o",
            "app",
            "-Llib",
            "-la",
            "-Wl,-rpath-link,lib",
            "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib",
        ],
    );
    dir.join("app")
}

/// Runs the program of `program_with_rpath` with an empty environment.
fn prints_42(program: &Path) {
    let output = std::process::Command::new(program)
        .env_clear()
        .output()
        .expect("runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "42\n",
        "{}: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every edit keeps DT_RPATH, and the program keeps running (it used to become
/// DT_RUNPATH, and the program stopped finding libb). A file with neither still gets
/// DT_RUNPATH.
#[test]
fn edits_keep_rpath_as_rpath() {
    let (Some(gcc), Some(readelf)) = (tool("gcc"), tool("readelf")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let app = program_with_rpath(&gcc, dir.path());
    let lib = dir.path().join("lib");
    prints_42(&app);
    assert_eq!(
        search_path_entries(&readelf, &app),
        ["(RPATH) Library rpath: [$ORIGIN/lib]"]
    );

    let (_, stdout, _) = run(&["patch", "--shrink-runpath", s(&app)]);
    assert!(stdout.contains("app: unchanged"), "{stdout}");
    for (args, expected) in [
        (&["--add-runpath", "/opt/none"][..], "$ORIGIN/lib:/opt/none"),
        (&["--set-runpath", "$ORIGIN/lib"][..], "$ORIGIN/lib"),
        (
            &[
                "--set-runpath",
                "$ORIGIN/lib:/a/longer/folder/for/a/new/region/of/the/file",
            ][..],
            "$ORIGIN/lib:/a/longer/folder/for/a/new/region/of/the/file",
        ),
        (&["--shrink-runpath"][..], "$ORIGIN/lib"),
    ] {
        let (code, stdout, stderr) = run(&[&["patch"][..], args, &[s(&app)]].concat());
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(stdout.contains(": changed: rpath '"), "{stdout}");
        assert_eq!(
            search_path_entries(&readelf, &app),
            [format!("(RPATH) Library rpath: [{expected}]")],
            "{args:?}"
        );
        prints_42(&app);
    }

    // The automatic mode keeps it too (the copy finds its libraries under --lib-root).
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    std::fs::copy(&app, tree.join("app")).expect("copy");
    let (code, _, stderr) = run(&["patch", "--auto", s(&tree), "--lib-root", s(&lib)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        search_path_entries(&readelf, &tree.join("app")),
        [format!("(RPATH) Library rpath: [{}]", lib.display())]
    );
    prints_42(&tree.join("app"));

    let (code, stdout, _) = run(&["patch", "--set-runpath", "$ORIGIN", s(&lib.join("libb.so"))]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(": changed: runpath (none) → '$ORIGIN'"),
        "{stdout}"
    );
    assert_eq!(
        search_path_entries(&readelf, &lib.join("libb.so")),
        ["(RUNPATH) Library runpath: [$ORIGIN]"]
    );
    let (_, stdout, _) = run(&["patch", "--force-rpath", s(&lib.join("libb.so"))]);
    assert!(
        stdout.contains(": changed: runpath '$ORIGIN' → rpath '$ORIGIN'"),
        "{stdout}"
    );
    assert_eq!(
        search_path_entries(&readelf, &lib.join("libb.so")),
        ["(RPATH) Library rpath: [$ORIGIN]"]
    );
}

/// A relative --lib-root is taken from the working folder and written absolute (it used
/// to be written as it was, to be searched from each program's working folder); one
/// that does not exist is refused. An absolute entry a file already has that finds a
/// needed library resolves it (it used to be "found nowhere").
#[test]
fn auto_takes_relative_lib_roots_and_keeps_entries_that_resolve() {
    let dir = tempfile::tempdir().expect("temp");
    let folder = std::fs::canonicalize(dir.path()).expect("canonical");
    for sub in ["deps", "t1", "t2"] {
        std::fs::create_dir(folder.join(sub)).expect("mkdir");
    }
    // multiarch.so needs libcudart.so.13; any library of its class stands in for it.
    std::fs::copy(fixture("multiarch.so"), folder.join("deps/libcudart.so.13")).expect("copy");
    for tree in ["t1", "t2"] {
        std::fs::copy(
            fixture("multiarch.so"),
            folder.join(tree).join("libmulti.so"),
        )
        .expect("copy");
    }
    let deps = folder.join("deps").display().to_string();

    let (code, _, stderr) = run_in(&folder, &["patch", "--auto", "t1", "--lib-root", "deps"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(runpath(&folder.join("t1/libmulti.so")), Some(deps.clone()));
    let (code, _, stderr) = run_in(&folder, &["patch", "--auto", "t1", "--lib-root", "nope"]);
    common::assert_refused(code, &stderr, "--lib-root `nope`: No such file");

    let lib = folder.join("t2/libmulti.so");
    let (code, _, stderr) = run(&["patch", "--set-runpath", &deps, s(&lib)]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run(&["patch", "--auto", s(&folder.join("t2"))]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("libmulti.so: unchanged"), "{stdout}");
    assert_eq!(runpath(&lib), Some(deps));
}

/// A file named without a folder, from the folder it is in: `$ORIGIN` is that folder
/// (it used to be empty, so `$ORIGIN` read as `/`, the library it finds was missing and
/// --shrink-runpath dropped the entry).
#[test]
fn a_bare_file_name_has_its_folder_as_origin() {
    let dir = tempfile::tempdir().expect("temp");
    let lib = dir.path().join("libmulti.so");
    std::fs::copy(fixture("multiarch.so"), &lib).expect("copy");
    std::fs::copy(fixture("multiarch.so"), dir.path().join("libcudart.so.13")).expect("copy");
    let (code, _, stderr) = run(&["patch", "--set-runpath", "$ORIGIN:/nonexistent", s(&lib)]);
    assert_eq!(code, 0, "{stderr}");
    let (_, json, _) = run_in(dir.path(), &["elf", "--resolve", "--json", "libmulti.so"]);
    let report: Value = serde_json::from_str(&json).expect("json");
    let cudart = &report["files"][0]["resolved"][0];
    assert_eq!(cudart["name"], "libcudart.so.13", "{json}");
    assert_eq!(cudart["path"], "./libcudart.so.13", "{json}");
    assert_eq!(cudart["via"], "runpath", "{json}");

    let (code, _, stderr) = run_in(dir.path(), &["patch", "--shrink-runpath", "libmulti.so"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(runpath(&lib).as_deref(), Some("$ORIGIN"));
}

/// A store path's files are read-only, but root may replace them anyway (and anyone may
/// rename over a file in a folder they can write): patch and prune refuse a file
/// without write permission, named or through a link, and the store stays valid.
#[test]
fn read_only_store_paths_are_never_rewritten() {
    let dir = tempfile::tempdir().expect("temp");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("lib")).expect("mkdir");
    std::fs::copy(fixture("multiarch.so"), tree.join("lib/libk.so")).expect("copy");
    let (store_dir, state_dir) = (dir.path().join("store"), dir.path().join("var"));
    let store = ["--store-dir", s(&store_dir), "--state-dir", s(&state_dir)];
    let (code, added, stderr) = run(&[&["store", "add"][..], &store, &[s(&tree)]].concat());
    assert_eq!(code, 0, "{stderr}");
    let lib = Path::new(added.trim()).join("lib/libk.so");
    let before = std::fs::read(&lib).expect("read");
    let link = dir.path().join("link.so");
    std::os::unix::fs::symlink(&lib, &link).expect("link");

    let (code, _, stderr) = run(&["patch", "--set-runpath", "/elsewhere", s(&link)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{} is read-only", lib.display()))
            && stderr.contains("change a copy"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["prune", "--capabilities", "8.6", s(&lib)]);
    common::assert_refused(code, &stderr, "is read-only");

    assert_eq!(std::fs::read(&lib).expect("read"), before);
    let (code, stdout, stderr) = run(&[&["store", "verify"][..], &store].concat());
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn auto_sets_origin_providers_and_driver_folder_never_stubs() {
    let (_dir, root) = package();
    let (code, stdout, stderr) = run(&[
        "patch",
        "--auto",
        s(&root),
        "--driver-dir",
        "/run/opengl-driver/lib",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        runpath(&root.join("bin/app")).as_deref(),
        Some("$ORIGIN/../lib")
    );
    assert_eq!(
        runpath(&root.join("lib/libmulti.so")).as_deref(),
        Some("$ORIGIN")
    );
    let cudart = runpath(&root.join("lib/libcudart.so.13")).unwrap_or_default();
    assert!(
        cudart.ends_with("/run/opengl-driver/lib") && !cudart.contains("stubs"),
        "{cudart}"
    );

    // Resolution inside the package, without the system: only the C/C++ runtime is left.
    let (_, json, _) = run(&[
        "elf",
        "--resolve",
        "--no-system",
        "--json",
        s(&root.join("bin/app")),
    ]);
    let report: Value = serde_json::from_str(&json).expect("json");
    let cudart = report["files"][0]["resolved"]
        .as_array()
        .expect("resolved")
        .iter()
        .find(|r| r["name"] == "libcudart.so.13")
        .cloned()
        .expect("needed");
    assert_eq!(cudart["via"], "runpath");
    assert!(
        cudart["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("pkg/bin/../lib/libcudart.so.13")),
        "{cudart}"
    );

    // A second run changes nothing.
    let (_, stdout, _) = run(&[
        "patch",
        "--auto",
        s(&root),
        "--driver-dir",
        "/run/opengl-driver/lib",
    ]);
    assert!(stdout.contains("0 of 3 files changed"), "{stdout}");
}

#[test]
fn auto_refuses_unresolved_libraries_and_writes_nothing() {
    let (_dir, root) = package();
    std::fs::remove_file(root.join("lib/libcudart.so.13")).expect("rm");
    let before = std::fs::read(root.join("bin/app")).expect("read");
    let (code, _, stderr) = run(&["patch", "--auto", s(&root)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("bin/app: libcudart.so.13"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert_eq!(std::fs::read(root.join("bin/app")).expect("read"), before);

    let (code, _, stderr) = run(&[
        "patch",
        "--auto",
        s(&root),
        "--allow-unresolved",
        "libcudart.so.13",
    ]);
    assert_eq!(code, 0, "{stderr}");

    let (code, _, stderr) = run(&[
        "patch",
        "--auto",
        s(&root),
        "--no-system",
        "--allow-unresolved",
        "libcudart.so.13",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("libc.so.6"), "{stderr}");
}

/// The bytes of every file under `root`, by path.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).expect("dir").flatten() {
        let path = entry.path();
        if entry.file_type().expect("type").is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).expect("read")));
        }
    }
    files.sort();
    files
}

#[test]
fn special_files_are_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp");
    let fifo = dir.path().join("fifo");
    cudapkgs_testkit::make_fifo(&fifo);
    let limit = std::time::Duration::from_secs(30);
    for (file, kind) in [(s(&fifo), "a FIFO"), ("/dev/zero", "a device")] {
        let (code, _, stderr) = run_within(limit, &[], &["patch", "--set-runpath", "/x", file]);
        assert_eq!(code, 2, "{file}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "error: {file}: {kind}, not a regular file (left untouched)"
            )),
            "{stderr}"
        );
        let (code, _, stderr) = run_within(limit, &[], &["patch", "--auto", file]);
        assert_eq!(code, 2, "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("{file}: {kind}, not a regular file")),
            "{stderr}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["fifo"], "nothing was written beside it");
}

#[test]
fn auto_refuses_needed_paths_and_writes_nothing() {
    let (_dir, root) = package();
    for (file, old, new) in [
        ("bin/app", "libcudart.so.13", "../lib/libcudart.so.13"),
        ("lib/libmulti.so", "libgcc_s.so.1", "/etc/hostname"),
    ] {
        let (code, _, stderr) = run(&["patch", "--replace-needed", old, new, s(&root.join(file))]);
        assert_eq!(code, 0, "{stderr}");
    }
    let before = snapshot(&root);
    let (code, _, stderr) = run(&["patch", "--auto", s(&root)]);
    common::assert_refused(
        code,
        &stderr,
        "2 needed entries are paths, not library file names; nothing was written",
    );
    for line in [
        format!(
            "{}: `../lib/libcudart.so.13`",
            root.join("bin/app").display()
        ),
        format!(
            "{}: `/etc/hostname`",
            root.join("lib/libmulti.so").display()
        ),
    ] {
        assert!(stderr.contains(&line), "{line} in {stderr}");
    }
    assert!(stderr.contains("--replace-needed"), "the hint: {stderr}");
    assert!(snapshot(&root) == before, "a file changed");
}

#[test]
fn auto_refuses_a_driver_folder_that_is_not_absolute() {
    let (_dir, root) = package();
    let before = snapshot(&root);
    for (driver_dir, problem) in [
        ("relative/lib", "is not absolute"),
        ("/opt/a:/opt/b", "contains `:`"),
    ] {
        let (code, _, stderr) = run(&["patch", "--auto", s(&root), "--driver-dir", driver_dir]);
        common::assert_refused(
            code,
            &stderr,
            &format!("driver folder `{driver_dir}` {problem}"),
        );
        assert!(
            stderr.contains("--driver-dir takes an absolute folder"),
            "{stderr}"
        );
        assert!(snapshot(&root) == before, "a file changed");
    }
}
