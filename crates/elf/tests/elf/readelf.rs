//! Differential tests of the dynamic view against `readelf -d -l` and `patchelf
//! --print-*` (Debian's binutils and patchelf, installed by scripts/test.sh) on real
//! files: this machine's libraries and programs (PIE and not), the nvcc-built CUDA
//! fixtures, and NVIDIA's libraries and tools from the wheels the test setup installs
//! (cuBLAS, cuDNN, nvrtc, cudart: already rewritten by patchelf, with and without
//! runpaths).

use std::path::{Path, PathBuf};
use std::process::Command;

use cudapkgs_elf::{DynamicInfo, read_dynamic};

use cudapkgs_testkit::require_tool as tool;

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// The corpus: regular ELF files (symbolic links skipped) under these folders.
fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let folders = [
        root.join("fixtures/cuda/out"),
        root.join(".tools/nvidia/nvidia/cu13/bin"),
        root.join(".tools/nvidia/nvidia/cu13/lib"),
        root.join(".tools/nvidia/nvidia/cu13/nvvm/bin"),
        root.join(".tools/nvidia/nvidia/cudnn/lib"),
        PathBuf::from("/usr/bin"),
        PathBuf::from("/usr/lib/x86_64-linux-gnu"),
    ];
    let mut files = Vec::new();
    for folder in folders {
        let Ok(read) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut found: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| is_elf(p))
            .collect();
        found.sort();
        // Bounded per folder to keep the test quick; the NVIDIA and fixture folders fit.
        files.extend(found.into_iter().take(150));
    }
    files
}

/// What `readelf -d -l -W` says about the fields we read.
fn readelf_view(readelf: &Path, path: &Path) -> DynamicInfo {
    let output = Command::new(readelf)
        .args(["-d", "-l", "-W"])
        .arg(path)
        .output()
        .expect("readelf runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut view = read_dynamic(&std::fs::read(path).expect("read")).expect("parsed for shape");
    view.needed.clear();
    view.soname = None;
    view.rpath = None;
    view.runpath = None;
    view.interpreter = None;
    let bracketed = |line: &str| {
        line.split_once(": [")
            .map(|(_, rest)| rest.trim_end_matches(']').to_owned())
    };
    for line in text.lines() {
        if line.contains("(NEEDED)") {
            view.needed.extend(bracketed(line));
        } else if line.contains("(SONAME)") {
            view.soname = bracketed(line);
        } else if line.contains("(RPATH)") {
            view.rpath = bracketed(line);
        } else if line.contains("(RUNPATH)") {
            view.runpath = bracketed(line);
        } else if let Some(rest) = line
            .trim()
            .strip_prefix("[Requesting program interpreter: ")
        {
            view.interpreter = Some(rest.trim_end_matches(']').to_owned());
        }
    }
    view
}

#[test]
fn dynamic_view_matches_readelf_on_real_files() {
    let Some(readelf) = tool("readelf") else {
        return;
    };
    let files = corpus();
    assert!(files.len() >= 40, "corpus too small: {}", files.len());
    let mut with_runpath = 0;
    for path in &files {
        let data = std::fs::read(path).expect("read");
        let ours = read_dynamic(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let theirs = readelf_view(&readelf, path);
        assert_eq!(ours.needed, theirs.needed, "{}", path.display());
        assert_eq!(ours.soname, theirs.soname, "{}", path.display());
        assert_eq!(ours.rpath, theirs.rpath, "{}", path.display());
        assert_eq!(ours.runpath, theirs.runpath, "{}", path.display());
        assert_eq!(ours.interpreter, theirs.interpreter, "{}", path.display());
        with_runpath += usize::from(ours.runpath.is_some());
    }
    assert!(
        with_runpath >= 1,
        "the corpus should hold files with a runpath"
    );
}

#[test]
fn dynamic_view_matches_patchelf_on_real_files() {
    let Some(patchelf) = tool("patchelf") else {
        return;
    };
    for path in corpus().iter().filter(|p| !p.starts_with("/usr/bin")) {
        let ours = read_dynamic(&std::fs::read(path).expect("read")).expect("parsed");
        if !ours.has_dynamic {
            continue;
        }
        let print = |flag: &str| {
            let output = Command::new(&patchelf)
                .arg(flag)
                .arg(path)
                .output()
                .expect("patchelf runs");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout)
                    .trim_end()
                    .to_owned(),
            )
        };
        let (_, needed) = print("--print-needed");
        let needed: Vec<String> = needed.lines().map(str::to_owned).collect();
        assert_eq!(ours.needed, needed, "{}", path.display());
        let (_, rpath) = print("--print-rpath");
        let expected = ours
            .runpath
            .clone()
            .or_else(|| ours.rpath.clone())
            .unwrap_or_default();
        assert_eq!(expected, rpath, "{}", path.display());
        let (ok, soname) = print("--print-soname");
        if ok {
            assert_eq!(
                ours.soname.clone().unwrap_or_default(),
                soname,
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn kinds_are_told_apart() {
    let exe = Path::new("/usr/bin/ls");
    if exe.exists() {
        let info = read_dynamic(&std::fs::read(exe).expect("read")).expect("ls");
        assert!(matches!(
            info.kind,
            cudapkgs_elf::ElfKind::PieExecutable | cudapkgs_elf::ElfKind::Executable
        ));
        assert!(info.interpreter.is_some());
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cuda/out");
    let lib =
        read_dynamic(&std::fs::read(fixture.join("multiarch.so")).expect("read")).expect("so");
    assert_eq!(lib.kind, cudapkgs_elf::ElfKind::SharedObject);
    assert!(
        lib.needed.iter().any(|n| n.starts_with("libcudart.so")),
        "{:?}",
        lib.needed
    );
    let object = read_dynamic(&std::fs::read(fixture.join("rdc_a.o")).expect("read")).expect("o");
    assert_eq!(object.kind, cudapkgs_elf::ElfKind::Relocatable);
    assert!(!object.has_dynamic);
}

#[test]
fn bad_input_is_refused_clearly() {
    assert_eq!(
        read_dynamic(b"not an elf").expect_err("text").to_string(),
        "not an ELF file"
    );
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cuda/out/multiarch.so"),
    )
    .expect("read");
    for cut in [4, 20, 63, 64, 200, data.len() / 3] {
        // Truncated copies must fail or, when the cut leaves the headers whole, read less;
        // never panic.
        let _ = read_dynamic(&data[..cut]);
    }
    let err = read_dynamic(&data[..40])
        .expect_err("truncated")
        .to_string();
    assert!(err.starts_with("malformed ELF file"), "{err}");
}
