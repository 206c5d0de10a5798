//! Differential tests against NVIDIA's cuobjdump on the committed fixtures.
//!
//! `fixtures/cuda/build.sh` builds the fixtures with nvcc and records, for each,
//! `cuobjdump -all -lelf -lptx` (`<file>.cuobjdump.txt`) and the header dump
//! `cuobjdump FILE` (`<file>.cuobjdump-headers.txt`). Our readers must reproduce both
//! exactly. When cuobjdump is installed (`scripts/install-nvidia-tools.sh`), the
//! listings are also recomputed live so that the recorded files cannot drift.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use cudapkgs_fatbin::{EntryInfo, EntryKind, FileScan, ScanOptions, SectionKind, scan};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cuda/out")
}

/// Every fixture that has a recorded listing.
fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures/cuda/out exists")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("txt" | "tsv")
            ) && path
                .with_file_name(format!("{name}.cuobjdump.txt"))
                .exists()
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the fixture set, found {}",
        files.len()
    );
    files
}

fn read_scan(path: &Path) -> Option<FileScan> {
    let data = std::fs::read(path).expect("read fixture");
    scan(&data, ScanOptions::default()).ok()
}

/// cuobjdump's lines without its `info`/`warning` chatter.
fn significant_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with("cuobjdump "))
        .map(|line| line.trim_end().to_owned())
        .collect()
}

fn file_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.split('.').next().unwrap_or(name).to_owned()
}

/// The name cuobjdump gives an extracted entry: the identifier's base name when the
/// entry has one, else `<file stem>.<index>`.
fn listing_name(entry: &EntryInfo, stem: &str, index: usize, bare: bool) -> String {
    let arch = match entry.kind {
        // -lelf drops the family suffix but keeps the arch-specific one.
        EntryKind::Sass => entry.arch.trim_end_matches('f').to_owned(),
        _ => entry.arch.replacen("compute_", "sm_", 1),
    };
    match &entry.identifier {
        Some(identifier) => {
            let file = identifier.rsplit('/').next().unwrap_or(identifier);
            let identifier_stem = file.split('.').next().unwrap_or(file);
            format!("{identifier_stem}.{arch}")
        }
        None if bare => format!("{stem}.{arch}"),
        None => format!("{stem}.{index}.{arch}"),
    }
}

/// What `cuobjdump -all -lelf -lptx` prints, rebuilt from our scan.
fn our_listing(path: &Path, scan: &FileScan) -> Vec<String> {
    let stem = file_stem(path);
    let archive = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let bare = scan.format == cudapkgs_fatbin::Format::Cubin;
    let (mut elf, mut ptx) = (0, 0);
    let mut lines = Vec::new();
    for unit in &scan.units {
        let entries: Vec<&EntryInfo> = unit
            .containers
            .iter()
            .flat_map(|c| c.entries.iter())
            .collect();
        if let Some(member) = &unit.member {
            if entries.is_empty() {
                continue;
            }
            lines.push(String::new());
            lines.push(format!("member {archive}:{member}:"));
        }
        for entry in entries {
            match entry.kind {
                EntryKind::Sass => {
                    elf += 1;
                    lines.push(format!(
                        "ELF file {elf:>4}: {}.cubin",
                        listing_name(entry, &stem, elf, bare)
                    ));
                }
                EntryKind::Ptx | EntryKind::RelocatablePtx => {
                    ptx += 1;
                    lines.push(format!(
                        "PTX file {ptx:>4}: {}.ptx",
                        listing_name(entry, &stem, ptx, bare)
                    ));
                }
                _ => {}
            }
        }
    }
    lines
}

/// What `cuobjdump FILE` prints: a block per entry of `.nv_fatbin` (or of every
/// section when there is no `.nv_fatbin`).
fn our_header_dump(path: &Path, scan: &FileScan) -> Vec<String> {
    let archive = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut out = String::new();
    for unit in &scan.units {
        let has_nv_fatbin = unit
            .containers
            .iter()
            .any(|c| c.section == SectionKind::NvFatbin);
        let entries: Vec<&EntryInfo> = unit
            .containers
            .iter()
            .filter(|c| !has_nv_fatbin || c.section == SectionKind::NvFatbin)
            .flat_map(|c| c.entries.iter())
            .collect();
        if let Some(member) = &unit.member {
            if entries.is_empty() {
                continue;
            }
            let _ = write!(out, "\nmember {archive}:{member}:\n");
        }
        for entry in entries {
            let title = match entry.kind {
                EntryKind::Sass => "Fatbin elf code:",
                EntryKind::Ptx => "Fatbin ptx code:",
                EntryKind::RelocatablePtx => "Fatbin relocatable ptx code:",
                EntryKind::LtoIr => "Fatbin nvvm code:",
                _ => "Fatbin unknown code:",
            };
            let (major, minor) = entry.version.split_once('.').expect("version");
            let _ = write!(
                out,
                "\n{title}\n{}\narch = {}\ncode version = [{major},{minor}]\nhost = {}\ncompile_size = 64bit\n",
                "=".repeat(title.len()),
                entry.arch.replacen("compute_", "sm_", 1),
                entry.host
            );
            if entry.debug {
                out.push_str("has debug info\n");
            }
            if entry.compressed_size.is_some() {
                out.push_str("compressed\n");
            }
            if let Some(identifier) = &entry.identifier {
                let _ = writeln!(out, "identifier = {identifier}");
            }
            if let Some(options) = &entry.options {
                let label = if entry.kind == EntryKind::LtoIr {
                    "nvvmOptions"
                } else {
                    "ptxasOptions"
                };
                let _ = writeln!(out, "{label} = {options}");
            }
        }
    }
    significant_lines(&out)
}

#[test]
fn entry_listings_match_cuobjdump_on_every_fixture() {
    let mut compared = 0;
    for path in fixture_files() {
        let listing = path.with_file_name(format!(
            "{}.cuobjdump.txt",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
        ));
        let expected = significant_lines(&std::fs::read_to_string(&listing).expect("listing"));
        match read_scan(&path) {
            Some(scan) => assert_eq!(our_listing(&path, &scan), expected, "{}", path.display()),
            None => assert!(
                expected.is_empty(),
                "{} has device code per cuobjdump but did not scan",
                path.display()
            ),
        }
        compared += 1;
    }
    assert!(compared >= 30);
}

#[test]
fn header_dumps_match_cuobjdump_on_every_fixture() {
    let mut compared = 0;
    for path in fixture_files() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let headers = path.with_file_name(format!("{name}.cuobjdump-headers.txt"));
        let Ok(text) = std::fs::read_to_string(&headers) else {
            continue;
        };
        let scan = read_scan(&path).unwrap_or_else(|| panic!("{name} scans"));
        if scan.format == cudapkgs_fatbin::Format::Cubin {
            continue;
        }
        assert_eq!(
            our_header_dump(&path, &scan),
            significant_lines(&text),
            "{name}"
        );
        compared += 1;
    }
    assert!(compared >= 25, "compared {compared}");
}

/// Runs the real cuobjdump when it is installed; under CI it must be.
fn cuobjdump() -> Option<PathBuf> {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/nvidia");
    let candidates = [
        std::env::var_os("CUDAPKGS_CUOBJDUMP").map(PathBuf::from),
        Some(tools.join("nvidia/cu13/bin/cuobjdump")),
    ];
    let found = candidates.into_iter().flatten().find(|path| path.is_file());
    cudapkgs_testkit::require(
        found.is_some(),
        "cuobjdump (run scripts/install-nvidia-tools.sh)",
    );
    found
}

#[test]
fn live_cuobjdump_agrees_with_the_recorded_listings() {
    let Some(tool) = cuobjdump() else { return };
    for path in fixture_files() {
        let output = Command::new(&tool)
            .args(["-all", "-lelf", "-lptx"])
            .arg(path.file_name().expect("name"))
            .current_dir(path.parent().expect("dir"))
            .output()
            .expect("cuobjdump runs");
        // cuobjdump names archive members by the archive's absolute path.
        let live: Vec<String> = significant_lines(&String::from_utf8_lossy(&output.stdout))
            .into_iter()
            .map(|line| match line.strip_prefix("member ") {
                Some(rest) => format!("member {}", rest.rsplit('/').next().unwrap_or(rest)),
                None => line,
            })
            .collect();
        let ours = read_scan(&path)
            .map(|scan| our_listing(&path, &scan))
            .unwrap_or_default();
        assert_eq!(ours, live, "{}", path.display());
    }
}
