//! `cudapkgs closure` of trees that are not venvs: a conda environment, whose files are
//! owned by the packages its `conda-meta/*.json` records list, and a container root,
//! whose libraries come from its own folders (never this machine's), links inside it
//! followed as the root names them.

use crate::common;

use std::path::Path;

use common::{compile, run, s};

/// A library `lib/libfoo.so` and a program `bin/prog` that needs it, built in `folder`.
fn program_and_library(gcc: &Path, folder: &Path) {
    for sub in ["bin", "lib"] {
        std::fs::create_dir_all(folder.join(sub)).expect("mkdir");
    }
    compile(
        gcc,
        folder,
        "foo.c",
        "int foo(void){return 0;}",
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libfoo.so",
            "-o",
            "lib/libfoo.so",
        ],
    );
    compile(
        gcc,
        folder,
        "prog.c",
        "int foo(void); int main(void){return foo();}",
        &[
            "-o",
            "bin/prog",
            "-Llib",
            "-lfoo",
            "-Wl,-rpath,$ORIGIN/../lib",
            "-Wl,--enable-new-dtags",
        ],
    );
}

fn closure(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "closure"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("json")
}

/// The distribution of the closure's file whose name is `name`.
fn owner_of<'a>(closure: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    closure["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|file| {
            file["path"]
                .as_str()
                .is_some_and(|path| path.ends_with(&format!("/{name}")))
        })
        .unwrap_or_else(|| panic!("no {name} in {closure}"))["distribution"]
        .as_str()
}

#[test]
fn a_conda_environment_is_reported_by_the_packages_its_records_list() {
    let Some(gcc) = common::gcc() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let env = dir.path().join("env");
    program_and_library(&gcc, &env);
    std::fs::create_dir(env.join("conda-meta")).expect("mkdir");
    // Records as conda writes them, with more keys than are read.
    std::fs::write(
        env.join("conda-meta/libfoo-1.2-h0_0.json"),
        r#"{"name": "libfoo", "version": "1.2", "build": "h0_0", "files": ["lib/libfoo.so"], "depends": []}"#,
    )
    .expect("write");
    std::fs::write(
        env.join("conda-meta/prog-0.1-h0_0.json"),
        r#"{"name": "prog", "version": "0.1", "files": ["bin/prog", "share/doc/prog.txt"]}"#,
    )
    .expect("write");
    std::fs::write(env.join("conda-meta/history"), "==> 2026-12-02 <==\n").expect("write");
    let report = closure(&[s(&env)]);
    assert_eq!(owner_of(&report, "libfoo.so"), Some("libfoo"));
    assert_eq!(owner_of(&report, "prog"), Some("prog"));
    let mut names: Vec<&str> = report["by_distribution"]
        .as_array()
        .expect("by distribution")
        .iter()
        .filter_map(|d| d["distribution"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["libfoo", "prog"]);

    // A file two packages list (one installed over the other's) is said so.
    std::fs::write(
        env.join("conda-meta/libfoo-static-1.2-h0_0.json"),
        r#"{"name": "libfoo-static", "files": ["lib/libfoo.so", "lib/libfoo.a"]}"#,
    )
    .expect("write");
    let report = closure(&[s(&env)]);
    let shared = &report["shared"][0];
    assert!(
        shared["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("/lib/libfoo.so")),
        "{report}"
    );
    let mut sharing: Vec<&str> = shared["distributions"]
        .as_array()
        .expect("distributions")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    sharing.sort_unstable();
    assert_eq!(sharing, ["libfoo", "libfoo-static"], "{report}");

    // A record that is not one is refused, naming it.
    std::fs::write(env.join("conda-meta/broken-1-0.json"), "{\"files\": 3}").expect("write");
    let (code, _, stderr) = run(&["closure", s(&env)]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("broken-1-0.json") && stderr.contains("conda package record"),
        "{stderr}"
    );
}

#[test]
fn a_container_root_is_searched_through_its_own_folders_and_links() {
    let Some(gcc) = common::gcc() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("rootfs");
    for folder in ["etc", "usr/lib/x86_64-linux-gnu", "opt"] {
        std::fs::create_dir_all(root.join(folder)).expect("mkdir");
    }
    std::fs::write(root.join("etc/ld.so.conf"), "/usr/lib/x86_64-linux-gnu\n").expect("write");
    // The root's C library sits in its multiarch folder; /lib is an absolute link to
    // usr/lib, which on this machine would lead to this machine's own /usr/lib.
    let multiarch = root.join("usr/lib/x86_64-linux-gnu");
    std::fs::copy(
        "/lib/x86_64-linux-gnu/libc.so.6",
        multiarch.join("libc.so.6"),
    )
    .expect("copy");
    std::fs::copy(
        "/lib64/ld-linux-x86-64.so.2",
        multiarch.join("ld-linux-x86-64.so.2"),
    )
    .expect("copy");
    std::os::unix::fs::symlink("/usr/lib", root.join("lib")).expect("link");
    let app = root.join("opt/app");
    program_and_library(&gcc, &app);
    // The program's runpath names a folder of the root absolutely, through the link.
    let (code, _, stderr) = run(&[
        "patch",
        "--set-runpath",
        "/lib/x86_64-linux-gnu:$ORIGIN/../lib",
        s(&app.join("bin/prog")),
    ]);
    assert_eq!(code, 0, "{stderr}");

    let root_real = std::fs::canonicalize(&root).expect("canonical");
    let report = closure(&[s(&root)]);
    let paths: Vec<&str> = report["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|file| file["path"].as_str().expect("path"))
        .collect();
    assert!(paths.len() >= 3, "{report}");
    for path in &paths {
        assert!(
            Path::new(path).starts_with(&root_real),
            "{path} is not the root's: {report}"
        );
    }
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("usr/lib/x86_64-linux-gnu/libc.so.6")),
        "{report}"
    );
    // This machine's folders, asked for, give this machine's C library.
    let host = closure(&[s(&app), "--root-fs", "/"]);
    assert!(
        host["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter_map(|file| file["path"].as_str())
            .any(|path| path.ends_with("/libc.so.6") && !Path::new(path).starts_with(&root_real)),
        "{host}"
    );
}
