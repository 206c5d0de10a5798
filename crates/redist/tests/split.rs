//! Fix-ups and the split on a package folder shaped like NVIDIA's archives.

use std::path::Path;

use cudapkgs_redist::package::split_package;
use cudapkgs_redist::unpack::Limits;

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
