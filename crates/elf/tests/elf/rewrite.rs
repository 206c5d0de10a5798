//! Rewriting real files, checked by the real tools: `readelf -a -W` must stay silent,
//! `readelf -d` and `patchelf --print-*` must read back what was written, programs must
//! still run, and repeated rewrites must not grow the file or its segment count.

use std::path::{Path, PathBuf};
use std::process::Command;

use cudapkgs_elf::patch::{Changes, RunpathChange, plan};
use cudapkgs_elf::read_dynamic;
use cudapkgs_elf::write::rewrite;

use cudapkgs_testkit::require_tool as tool;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Real files of every shape we meet: nvcc-built libraries and a PIE program, NVIDIA's
/// own (patchelf-processed) libraries and tools, and this system's libraries and
/// programs.
fn corpus() -> Vec<PathBuf> {
    let mut files = vec![
        root().join("fixtures/cuda/out/multiarch.so"),
        root().join("fixtures/cuda/out/many_kernels.so"),
        root().join("fixtures/cuda/out/app"),
        root().join("fixtures/cuda/out/run_lib"),
        PathBuf::from("/usr/bin/ls"),
        PathBuf::from("/usr/bin/readelf"),
    ];
    for name in ["libm.so.6", "libz.so.1", "libstdc++.so.6", "libcrypto.so.3"] {
        files.push(PathBuf::from("/usr/lib/x86_64-linux-gnu").join(name));
    }
    let nvidia = root().join(".tools/nvidia/nvidia/cu13");
    for name in [
        "lib/libcudart.so.13",
        "lib/libnvvm.so.4",
        "bin/cuobjdump",
        "bin/nvdisasm",
        "bin/ptxas",
    ] {
        files.push(nvidia.join(name));
    }
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| std::fs::canonicalize(p).expect("path"))
        .collect();
    assert!(
        files.len() >= 8 || !cudapkgs_testkit::ci(),
        "corpus too small: {files:?}"
    );
    files
}

fn readelf_is_silent(readelf: &Path, path: &Path) {
    let output = Command::new(readelf)
        .args(["-a", "-W"])
        .arg(path)
        .output()
        .expect("readelf runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stderr.trim().is_empty(),
        "{}: readelf -a -W warns:\n{stderr}",
        path.display()
    );
    assert!(
        !stdout.contains("Warning"),
        "{}: readelf -a -W warns",
        path.display()
    );
}

fn patchelf_rpath(patchelf: &Path, path: &Path) -> String {
    let output = Command::new(patchelf)
        .arg("--print-rpath")
        .arg(path)
        .output()
        .expect("patchelf runs");
    assert!(
        output.status.success(),
        "patchelf cannot read {}",
        path.display()
    );
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned()
}

fn apply(path: &Path, changes: &Changes) -> bool {
    let data = std::fs::read(path).expect("read");
    let plan = plan(&data, changes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    rewrite(path, &plan).expect("rewrite");
    plan.changed
}

fn set(value: &str) -> Changes {
    Changes {
        runpath: RunpathChange::Set(value.into()),
        ..Changes::default()
    }
}

fn phnum(path: &Path) -> u16 {
    let data = std::fs::read(path).expect("read");
    u16::from_le_bytes([data[56], data[57]])
}

/// Programs that answer `--version` show that the kernel and the loader still accept them.
fn still_runs(path: &Path) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let args: &[&str] = match name {
        "ls" | "readelf" | "cuobjdump" | "nvdisasm" | "ptxas" => &["--version"],
        _ => return,
    };
    let output = Command::new(path).args(args).output().expect("runs");
    assert!(
        output.status.success(),
        "{} no longer runs: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn rewrites_real_files_and_tools_agree() {
    let (Some(readelf), Some(patchelf)) = (tool("readelf"), tool("patchelf")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    for original in corpus() {
        let name = original.file_name().expect("name");
        let path = dir.path().join(name);
        std::fs::copy(&original, &path).expect("copy");
        let mode = std::fs::metadata(&path).expect("meta").permissions();
        let needed = read_dynamic(&std::fs::read(&path).expect("read"))
            .expect("read")
            .needed;

        // Longer than anything there: the file grows by one region.
        let long = "$ORIGIN:$ORIGIN/../lib:/run/opengl-driver/lib:/nix/store/0123456789abcdfghijklmnpqrsvwxyz-cuda_cudart-12.9.79-lib/lib";
        assert!(apply(&path, &set(long)), "{}", path.display());
        readelf_is_silent(&readelf, &path);
        assert_eq!(patchelf_rpath(&patchelf, &path), long, "{}", path.display());
        let info = read_dynamic(&std::fs::read(&path).expect("read")).expect("read");
        assert_eq!(
            (info.runpath.as_deref(), &info.needed),
            (Some(long), &needed),
            "{}",
            path.display()
        );
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions(), mode);
        still_runs(&path);
        let (segments, size) = (phnum(&path), std::fs::metadata(&path).expect("meta").len());

        // The same again changes nothing.
        let before = std::fs::read(&path).expect("read");
        assert!(!apply(&path, &set(long)));
        assert_eq!(std::fs::read(&path).expect("read"), before);

        // Other long values rebuild the region instead of stacking new ones.
        for round in 0..4 {
            let other = format!("{long}:/opt/round-{round}/with/a/longer/folder/name/lib");
            apply(&path, &set(&other));
            readelf_is_silent(&readelf, &path);
            assert_eq!(patchelf_rpath(&patchelf, &path), other);
            still_runs(&path);
        }
        assert_eq!(phnum(&path), segments, "{}: segments", path.display());
        let grown = std::fs::metadata(&path).expect("meta").len();
        assert!(
            grown <= size + 4 * 64,
            "{}: {size} -> {grown}",
            path.display()
        );

        // Shorter values and removal stay in place.
        apply(&path, &set("$ORIGIN"));
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), grown);
        assert_eq!(patchelf_rpath(&patchelf, &path), "$ORIGIN");
        apply(
            &path,
            &Changes {
                runpath: RunpathChange::Remove,
                ..Changes::default()
            },
        );
        readelf_is_silent(&readelf, &path);
        assert_eq!(patchelf_rpath(&patchelf, &path), "");
        still_runs(&path);
    }
}

#[test]
fn rpath_needed_and_soname_read_back() {
    let Some(readelf) = tool("readelf") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("libcudart.so.13");
    let source = root().join(".tools/nvidia/nvidia/cu13/lib/libcudart.so.13");
    let source = if source.exists() {
        source
    } else {
        PathBuf::from("/usr/lib/x86_64-linux-gnu/libm.so.6")
    };
    std::fs::copy(&source, &path).expect("copy");
    let info = read_dynamic(&std::fs::read(&path).expect("read")).expect("read");
    let first = info.needed[0].clone();
    let changes = Changes {
        runpath: RunpathChange::Set("/opt/driver/lib".into()),
        force_rpath: true,
        replace_needed: vec![(first.clone(), format!("{first}.renamed"))],
        soname: Some("libcustom.so.1".into()),
    };
    apply(&path, &changes);
    readelf_is_silent(&readelf, &path);
    let output = Command::new(&readelf)
        .args(["-d", "-V", "-W"])
        .arg(&path)
        .output()
        .expect("readelf");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("(RPATH)              Library rpath: [/opt/driver/lib]"),
        "{text}"
    );
    assert!(!text.contains("(RUNPATH)"), "{text}");
    assert!(text.contains("Library soname: [libcustom.so.1]"), "{text}");
    assert!(
        text.contains(&format!("Shared library: [{first}.renamed]")),
        "{text}"
    );
    // Version dependencies follow the renamed library.
    if text.contains("Version needs section") {
        assert!(text.contains(&format!("File: {first}.renamed")), "{text}");
        assert!(!text.contains(&format!("File: {first}  ")), "{text}");
    }
}

#[test]
fn non_pie_executables_still_run_after_growing() {
    let Some(gcc) = tool("gcc") else { return };
    let dir = tempfile::tempdir().expect("temp");
    let source = dir.path().join("hello.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
    )
    .expect("write");
    for (name, flag) in [("hello-nopie", "-no-pie"), ("hello-pie", "-pie")] {
        let exe = dir.path().join(name);
        let status = Command::new(&gcc)
            .arg(flag)
            .arg("-o")
            .arg(&exe)
            .arg(&source)
            .status()
            .expect("gcc");
        assert!(status.success());
        apply(
            &exe,
            &set("/a/long/runpath/entry/that/does/not/fit/anywhere/in/the/original/file:$ORIGIN"),
        );
        let output = Command::new(&exe).output().expect("runs");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\n", "{name}");
        assert!(output.status.success(), "{name}");
    }
}

#[test]
fn bad_input_leaves_the_file_untouched() {
    let dir = tempfile::tempdir().expect("temp");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not elf").expect("write");
    assert!(plan(&std::fs::read(&text).expect("read"), &set("/x")).is_err());
    let object = root().join("fixtures/cuda/out/rdc_a.o");
    let err = plan(&std::fs::read(&object).expect("read"), &set("/x")).expect_err("no dynamic");
    assert!(err.to_string().contains("no dynamic section"), "{err}");
    let lib = std::fs::read(root().join("fixtures/cuda/out/multiarch.so")).expect("read");
    for cut in [10, 64, 1000, lib.len() / 2] {
        let _ = plan(&lib[..cut], &set("/x"));
    }
}

/// Found by the `elf_patch` fuzz target: a load segment claiming more file bytes than
/// memory made the new region's address fall inside it. Such files are refused.
#[test]
fn load_segments_larger_on_disk_than_in_memory_are_refused() {
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/load-filesz-beyond-memsz.so"),
    )
    .expect("read");
    let err = plan(&data, &set("/x")).expect_err("malformed");
    assert!(
        err.to_string()
            .contains("file size exceeds its memory size"),
        "{err}"
    );
}

/// Found by the `elf_patch` fuzz target: a dynamic segment claiming exabytes sized the
/// rewritten table. Such files are refused.
#[test]
fn dynamic_segments_past_the_end_are_refused() {
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dynamic-beyond-file.so"),
    )
    .expect("read");
    let err = plan(&data, &set("/x")).expect_err("malformed");
    let text = err.to_string();
    assert!(
        text.starts_with("malformed ELF file") && text.contains("dynamic segment"),
        "{err}"
    );
}

/// Found by the `elf_patch` fuzz target: a file the dynamic view refuses (here its
/// interpreter runs past the end) must not be rewritten either.
#[test]
fn files_the_dynamic_view_refuses_are_not_rewritten() {
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/interpreter-beyond-file.so"),
    )
    .expect("read");
    let err = plan(&data, &set("/x")).expect_err("malformed");
    assert!(
        err.to_string().contains("PT_INTERP runs past the end"),
        "{err}"
    );
}

/// Found by the `elf_patch` fuzz target: segments reaching the top of the address space
/// leave no room for a new one; the arithmetic used to wrap around (in programs, and
/// again in libraries once their region followed the end of the file).
#[test]
fn no_room_above_the_segments_is_refused() {
    for name in [
        "segments-at-the-top-of-memory.so",
        "library-segment-near-the-top-of-memory.so",
    ] {
        no_room_above_the_segments_is_refused_in(name);
    }
}

fn no_room_above_the_segments_is_refused_in(name: &str) {
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .expect("read");
    let changes = Changes {
        runpath: RunpathChange::Set(
            "$ORIGIN:/run/opengl-driver/lib:/a/longer/folder/to/force/a/new/region".into(),
        ),
        ..Changes::default()
    };
    match plan(&data, &changes) {
        Err(error) => assert!(
            matches!(
                error,
                cudapkgs_elf::Error::Unsupported(_) | cudapkgs_elf::Error::Malformed { .. }
            ),
            "{error}"
        ),
        Ok(plan) => {
            let rewrite = &plan.rewrite;
            assert!(
                rewrite.new_len < 1 << 32
                    && rewrite
                        .writes
                        .iter()
                        .all(|(offset, bytes)| offset + bytes.len() as u64 <= rewrite.new_len)
            );
            // An accepted plan must give a file that reads back with the new runpath.
            let patched = rewrite.apply_in_memory(&data);
            let info = cudapkgs_elf::read_dynamic(&patched).expect("readable");
            assert_eq!(
                info.runpath.as_deref(),
                Some("$ORIGIN:/run/opengl-driver/lib:/a/longer/folder/to/force/a/new/region"),
                "{name}"
            );
        }
    }
}

/// Found by the `elf_patch` fuzz target: a program header table overlapping the ELF
/// header made the rewriter and the loader's view read different dynamic tables.
#[test]
fn ambiguous_dynamic_tables_are_refused() {
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ambiguous-dynamic-table.so"),
    )
    .expect("read");
    let err = plan(&data, &set("/x")).expect_err("ambiguous");
    assert!(err.to_string().starts_with("malformed ELF file"), "{err}");
}
