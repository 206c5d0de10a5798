//! What a package provides, read from its files: which outputs it has (in the shape
//! cuda-redist-find-features writes), the GPU architectures of its device code, the
//! shared libraries it provides and the ones it needs from elsewhere.

use std::collections::BTreeSet;
use std::path::Path;

use cudapkgs_fatbin::{EntryKind, ScanOptions};
use cudapkgs_tree::{Outcome, Walk};

use cudapkgs_redist::split::{FixupOptions, OutputLocations, files, output_of};

use crate::error::Error;
use crate::prepare::unpack_fixed_up;

/// The features of one package tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// Every output holding at least one file (`lib`, `dev`, …).
    pub outputs: BTreeSet<&'static str>,
    /// `sm_90`, `sm_100a`, … of the SASS entries in any file.
    pub cuda_architectures: BTreeSet<String>,
    /// SONAMEs (else file names) of the shared libraries.
    pub provided_libs: BTreeSet<String>,
    /// Needed libraries no file of the package provides.
    pub needed_libs: BTreeSet<String>,
}

/// The JSON object of [`Features`], with the keys cuda-redist-find-features writes, in
/// the order of their names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeaturesJson<'a> {
    /// `sm_90` before `sm_90a` before `sm_100`.
    pub cuda_architectures: Vec<&'a str>,
    pub needed_libs: &'a BTreeSet<String>,
    pub outputs: OutputsJson,
    pub provided_libs: &'a BTreeSet<String>,
}

/// Which outputs the package has, as cuda-redist-find-features names them.
#[allow(
    clippy::struct_excessive_bools,
    reason = "the shape cuda-redist-find-features writes: a flag per output"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct OutputsJson {
    pub bin: bool,
    pub dev: bool,
    pub doc: bool,
    pub lib: bool,
    pub sample: bool,
    #[serde(rename = "static")]
    pub static_libraries: bool,
}

impl Features {
    /// The JSON object: `outputs` as cuda-redist-find-features writes it, then ours.
    pub fn to_json(&self) -> FeaturesJson<'_> {
        let has = |name: &str| self.outputs.contains(name);
        let mut architectures: Vec<&str> =
            self.cuda_architectures.iter().map(String::as_str).collect();
        architectures.sort_by_key(|arch| architecture_order(arch));
        FeaturesJson {
            cuda_architectures: architectures,
            needed_libs: &self.needed_libs,
            outputs: OutputsJson {
                bin: has("bin"),
                dev: has("dev"),
                doc: has("doc"),
                lib: has("lib"),
                sample: has("samples"),
                static_libraries: has("static"),
            },
            provided_libs: &self.provided_libs,
        }
    }
}

/// `sm_90` before `sm_90a` before `sm_100`: by number, then suffix.
fn architecture_order(arch: &str) -> (u32, String) {
    let rest = arch
        .trim_start_matches("sm_")
        .trim_start_matches("compute_");
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (
        rest[..digits].parse().unwrap_or(u32::MAX),
        rest[digits..].to_owned(),
    )
}

fn is_binary(magic: &[u8]) -> bool {
    magic.starts_with(b"\x7fELF") || magic.starts_with(b"!<arch>\n")
}

/// What one binary contributes.
#[derive(Debug, Default)]
struct FileFeatures {
    architectures: Vec<String>,
    soname: Option<String>,
    needed: Vec<String>,
    shared_library: bool,
}

/// Reads the features of the (unpacked, fixed-up) package at `root`.
pub fn of_tree(root: &Path, threads: usize) -> Result<Features, Error> {
    let mut features = Features::default();
    for file in &files(root)? {
        features.outputs.insert(output_of(file));
    }
    let walk = Walk {
        wants: is_binary,
        zips: false,
    };
    let visited = cudapkgs_tree::visit(&[root.to_owned()], walk, threads, |source, input| {
        let mut found = FileFeatures::default();
        let reader = cudapkgs_fatbin::FileReader::new(input.file).map_err(|e| e.to_string())?;
        if let Ok(scan) = cudapkgs_fatbin::scan_with(input.bytes, &reader, ScanOptions::default()) {
            found.architectures = scan
                .entries()
                .filter(|e| e.kind == EntryKind::Sass)
                .map(|e| e.arch.clone())
                .collect();
        }
        if input.bytes.starts_with(b"\x7fELF") {
            if let Ok(info) = cudapkgs_elf::read_dynamic(input.bytes) {
                found.shared_library = info.has_dynamic
                    && matches!(info.kind, cudapkgs_elf::ElfKind::SharedObject)
                    && !in_stubs(root, &source.display);
                found.soname = info.soname;
                found.needed = info.needed;
            }
        }
        Ok(found)
    });
    let mut needed = BTreeSet::new();
    for file in visited {
        let Outcome::Done(found) = file.outcome else {
            continue;
        };
        features.cuda_architectures.extend(found.architectures);
        if found.shared_library {
            let name = found.soname.unwrap_or_else(|| {
                Path::new(&file.source.display)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            features.provided_libs.insert(name);
        }
        needed.extend(found.needed);
    }
    features.needed_libs = needed
        .into_iter()
        .filter(|lib| !features.provided_libs.contains(lib))
        .collect();
    Ok(features)
}

/// Unpacks and fixes up `archive` in a temporary folder, then reads its features.
pub fn of_archive(archive: &Path) -> Result<Features, Error> {
    let work = tempfile::tempdir().map_err(|e| Error::io(&std::env::temp_dir(), e))?;
    let tree = work.path().join("tree");
    let options = FixupOptions {
        locations: OutputLocations {
            dev: work.path().join("dev"),
            include: work.path().join("include"),
            lib: work.path().join("lib"),
        },
        // Features report what is there; refusing is the split's job.
        allow_usr: true,
    };
    unpack_fixed_up(archive, &tree, &options)?;
    of_tree(&tree, 1)
}

/// Stub libraries stand in for the driver at link time; they provide nothing at run time.
fn in_stubs(root: &Path, display: &str) -> bool {
    let path = Path::new(display);
    output_of(path.strip_prefix(root).unwrap_or(path)) == "stubs"
}
