//! Fix-ups and the split on a package folder shaped like NVIDIA's archives.

use std::path::Path;

use cudapkgs_redist::package::split_package;
use cudapkgs_redist::unpack::Limits;
use cudapkgs_testkit::tree_snapshot;

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn package(root: &Path, cmake: &str) {
    write(root, "lib/12/libcudnn.so.9", "elf");
    write(root, "lib/12/libcudnn_static.a", "ar");
    write(root, "lib/stubs/libcuda.so", "stub");
    write(root, "include/cudnn.h", "int x;");
    write(root, "lib/cmake/cudnn/cudnn-config.cmake", cmake);
    write(
        root,
        "pkg-config/cudnn.pc",
        "cudaroot=/usr/local/cuda\nlibdir=${cudaroot}/targets/x86_64-linux/lib\nincludedir=${cudaroot}/targets/x86_64-linux/include\nName: cudnn\n",
    );
    write(root, "LICENSE", "license");
}

#[test]
fn fix_ups_and_outputs() {
    let dir = tempfile::tempdir().expect("temp");
    let source = dir.path().join("source");
    package(&source, "set(CUDNN_LIB ${PACKAGE_PREFIX_DIR}/lib)\n");
    let out = dir.path().join("out");
    let split = split_package(&source, &out, false, Limits::default()).expect("splits");
    let names: Vec<&str> = split.outputs.iter().map(|o| o.name).collect();
    assert_eq!(
        names,
        ["out", "dev", "include", "lib", "static", "stubs"],
        "no empty bin, doc, …"
    );
    assert!(
        out.join("lib/lib/libcudnn.so.9").is_file(),
        "lib/12 flattened"
    );
    assert!(out.join("static/lib/libcudnn_static.a").is_file());
    assert!(out.join("stubs/lib/stubs/libcuda.so").is_file());
    assert!(!out.join("lib/lib/stubs").exists(), "stubs stay out of lib");
    let pc = std::fs::read_to_string(out.join("dev/share/pkgconfig/cudnn.pc")).expect("pc");
    assert!(
        pc.starts_with(&format!("cudaroot={}\n", out.join("dev").display())),
        "{pc}"
    );
    assert!(
        pc.contains(&format!("libdir={}/lib\n", out.join("lib").display())),
        "{pc}"
    );
    assert!(
        split
            .fixups
            .iter()
            .any(|f| f == "flattened lib/12 into lib/"),
        "{:?}",
        split.fixups
    );
    assert_eq!(
        std::fs::read_to_string(out.join("out/lib/stubs/libcuda.so")).expect("link"),
        "stub"
    );
    assert!(
        source.join("lib/12/libcudnn.so.9").is_file(),
        "the source folder is untouched"
    );
}

#[test]
fn usr_references_are_refused_with_file_and_line_unless_allowed() {
    let dir = tempfile::tempdir().expect("temp");
    let source = dir.path().join("source");
    package(
        &source,
        "# config\nset(CUDNN_LIB /usr/lib/x86_64-linux-gnu)\n",
    );
    let out = dir.path().join("out");
    let error = split_package(&source, &out, false, Limits::default()).expect_err("refused");
    let message = error.to_string();
    assert!(
        message.contains(
            "cudnn-config.cmake: line 2: `set(CUDNN_LIB /usr/lib/x86_64-linux-gnu)` refers to /usr/"
        ),
        "{message}"
    );
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(left, ["source"], "nothing left behind");
    split_package(&source, &out, true, Limits::default()).expect("allowed");
}

#[test]
fn a_folder_given_as_input_is_never_changed_or_followed_out_of() {
    let dir = tempfile::tempdir().expect("temp");
    let elsewhere = dir.path().join("elsewhere");
    write(&elsewhere, "other.pc", "libdir=/opt/lib\n");
    write(&elsewhere, "notes.txt", "mine");
    let source = dir.path().join("source");
    package(&source, "set(X 1)\n");
    std::fs::remove_dir_all(source.join("pkg-config")).expect("rm");
    std::os::unix::fs::symlink("../elsewhere", source.join("pkg-config")).expect("link");
    let before = (tree_snapshot(&source), tree_snapshot(&elsewhere));
    let out = dir.path().join("out");
    let error = split_package(&source, &out, false, Limits::default()).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("link pkg-config -> ../elsewhere points outside the package"),
        "{error}"
    );
    assert_eq!((tree_snapshot(&source), tree_snapshot(&elsewhere)), before);
    assert!(!out.exists());
}

#[test]
fn a_link_that_fix_ups_move_out_of_the_package_is_refused() {
    // Inside the wheel `nvidia/cu13/lib/up -> ../../..` names the wheel's top; once
    // `nvidia/cu13/` is moved to the top, the same words name the folder above it.
    let dir = tempfile::tempdir().expect("temp");
    let outside = dir.path().join("outside");
    write(&outside, "keep", "keep");
    let source = dir.path().join("wheel");
    write(&source, "nvidia/cu13/lib/libx.so.13", "elf");
    write(&source, "nvidia_x-13.0.dist-info/METADATA", "Name: x");
    std::os::unix::fs::symlink("../../..", source.join("nvidia/cu13/lib/up")).expect("link");
    let out = dir.path().join("out");
    let error = split_package(&source, &out, false, Limits::default()).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("link lib/up -> ../../.. points outside the package after the fix-ups"),
        "{error}"
    );
    assert!(!out.exists());
    assert_eq!(tree_snapshot(&outside).len(), 1);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name())
        .filter(|name| name.to_string_lossy().starts_with(".cudapkgs-"))
        .collect();
    assert!(left.is_empty(), "no work folder left: {left:?}");
}

#[test]
fn links_in_place_of_fix_up_folders_are_not_followed() {
    // `lib`, `nvidia` and `pkg-config` as links to folders inside the package: the
    // fix-ups leave them as links and move nothing through them.
    let dir = tempfile::tempdir().expect("temp");
    let source = dir.path().join("source");
    write(&source, "real/12/libz.so.1", "elf");
    write(&source, "real/x.pc", "libdir=/opt/lib\n");
    std::os::unix::fs::symlink("real", source.join("lib")).expect("link");
    std::os::unix::fs::symlink("real", source.join("pkg-config")).expect("link");
    let before = tree_snapshot(&source);
    let out = dir.path().join("out");
    split_package(&source, &out, false, Limits::default()).expect("splits");
    assert_eq!(tree_snapshot(&source), before, "the input is untouched");
    assert_eq!(
        std::fs::read_link(out.join("lib/lib")).expect("lib is still a link"),
        Path::new("real")
    );
    assert!(
        out.join("out/real/12/libz.so.1").is_file(),
        "lib/12 inside the link's folder was not flattened through it"
    );
}

#[test]
fn work_folders_of_killed_splits_are_removed_by_the_next_one() {
    let dir = tempfile::tempdir().expect("temp");
    let source = dir.path().join("source");
    package(&source, "set(X 1)\n");
    for prefix in [".cudapkgs-package-", ".cudapkgs-split-"] {
        // An id no process can have: its owner is gone.
        std::fs::create_dir_all(dir.path().join(format!("{prefix}4294967295-1-1/tree/lib")))
            .expect("mkdir");
    }
    split_package(&source, &dir.path().join("out"), false, Limits::default()).expect("splits");
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["out", "source"]);
}

#[test]
fn two_wheel_folders_with_one_library_name_are_refused_naming_the_archive_and_the_place() {
    let dir = tempfile::tempdir().expect("temp");
    let source = dir.path().join("conflict");
    write(&source, "x.dist-info/METADATA", "Name: x\n");
    write(&source, "nvidia/a/lib/libx.so.1", "a");
    write(&source, "nvidia/b/lib/libx.so.1", "b");
    let out = dir.path().join("out");
    let message = split_package(&source, &out, false, Limits::default())
        .expect_err("refused")
        .to_string();
    assert!(
        message.contains("/conflict/nvidia/b/lib/libx.so.1: would go to lib/libx.so.1"),
        "{message}"
    );
    assert!(
        !message.contains(".cudapkgs-"),
        "no work folder is named: {message}"
    );
    assert!(!out.exists());
}

#[test]
fn a_refused_split_leaves_no_folders_and_a_split_looks_like_a_folder_the_user_made() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp");
    let bad = dir.path().join("bad");
    write(&bad, "x.dist-info/METADATA", "Name: x\n");
    write(&bad, "nvidia/a/lib/libx.so.1", "a");
    write(&bad, "nvidia/b/lib/libx.so.1", "b");
    let deep = dir.path().join("new/deep/out");
    split_package(&bad, &deep, false, Limits::default()).expect_err("refused");
    assert!(
        !dir.path().join("new").exists(),
        "the folders made for it are gone"
    );

    let good = dir.path().join("good");
    package(&good, "set(X 1)\n");
    split_package(&good, &deep, false, Limits::default()).expect("split");
    let mode = |path: &Path| path.metadata().expect("stat").permissions().mode() & 0o777;
    let made_by_hand = dir.path().join("by-hand");
    std::fs::create_dir(&made_by_hand).expect("mkdir");
    assert_eq!(mode(&deep), mode(&made_by_hand) & 0o755);
}
