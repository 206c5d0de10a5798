//! One package made ready for the store: unpacked, fixed up, split into output folders,
//! and read: which libraries its `lib` output provides, which its files need, and what
//! GPU code it carries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cudapkgs_elf::DynamicInfo;
use cudapkgs_elf::loads::{LoadName, load_names};
use cudapkgs_fatbin::{PruneError, PruneRequest};
use cudapkgs_redist::split::{
    CrossLink, FixupOptions, OutputLocations, files, fix_up, refuse_links_out_of_outputs, split,
};
use cudapkgs_redist::unpack::{Limits, unpack};

use cudapkgs_report::{Phase, Reporter, Task};

use crate::error::Error;
use crate::targets::TargetReport;

/// Placeholders written into pkg-config files until the outputs' store paths are known.
pub const LIB_PLACEHOLDER: &str = "@cudapkgs-lib@";
pub const INCLUDE_PLACEHOLDER: &str = "@cudapkgs-include@";
pub const DEV_PLACEHOLDER: &str = "@cudapkgs-dev@";

/// A package to build: what it is and where its files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The redist name (`cuda_cudart`).
    pub package: String,
    pub version: String,
    /// The downloaded archive or wheel.
    pub archive: PathBuf,
    /// Its SHA-256 (hex) when already known: a download's, verified against the index or
    /// the manifest. `None` for a file given as it is (it is hashed).
    pub sha256: Option<String>,
    /// Its licence when the source names it (NVIDIA's manifests); a wheel's comes from its
    /// metadata.
    pub licence: Option<String>,
}

/// An ELF file of an output, as the loader will see it.
#[derive(Debug, Clone)]
pub struct ElfFile {
    pub output: &'static str,
    /// Relative to the output's root.
    pub relative: PathBuf,
    pub info: DynamicInfo,
    /// The libraries it may load at run time, by name.
    pub loads: Vec<LoadName>,
}

impl ElfFile {
    /// Loads a driver library itself (`dlopen("libcuda.so.1")`).
    pub fn opens_driver(&self) -> bool {
        cudapkgs_elf::auto::opens_driver(&self.loads)
    }
}

/// A package split into output folders under `root`, and read.
#[derive(Debug)]
pub struct Prepared {
    pub input: Input,
    /// `root/<output>/…`.
    pub root: PathBuf,
    /// The outputs that hold files, in Nixpkgs' order.
    pub outputs: Vec<&'static str>,
    /// Library file name (links included) → folder relative to the `lib` output's root.
    pub provides: BTreeMap<String, PathBuf>,
    pub elf_files: Vec<ElfFile>,
    pub targets: TargetReport,
    /// What pruning removed, per output it changed.
    pub pruned: BTreeMap<&'static str, Pruned>,
    /// The package's licence, as its source or its wheel metadata names it.
    pub licence: Option<String>,
}

/// What pruning did to one output.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Pruned {
    pub files: usize,
    pub removed_bytes: u64,
    /// Files left whole because pruning them would cost a kernel an image it has for
    /// a requested capability, or leave a capability nothing to run: (file, why).
    pub refused: Vec<(String, String)>,
}

/// Outputs whose device code is pruned: the libraries and programs that run, and the
/// static libraries linked into them. Stubs carry none.
const PRUNED_OUTPUTS: &[&str] = &["lib", "bin", "static"];

/// Unpacks `input` into `work` (which must not exist) and reads it; with `prune`, the
/// device code no requested capability can use is removed first.
pub fn prepare(
    input: &Input,
    work: &Path,
    gpus: &[cudapkgs_fatbin::Gpu],
    prune: Option<&PruneRequest>,
    reporter: &dyn Reporter,
) -> Result<Prepared, Error> {
    let label = input.package.as_str();
    std::fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
    let tree = work.join("tree");
    let options = FixupOptions {
        locations: OutputLocations {
            dev: PathBuf::from(DEV_PLACEHOLDER),
            include: PathBuf::from(INCLUDE_PLACEHOLDER),
            lib: PathBuf::from(LIB_PLACEHOLDER),
        },
        allow_usr: false,
    };
    let unpacking = Task::start(reporter, Phase::Unpack, label, None);
    let metadata_licence = unpack_fixed_up(&input.archive, &tree, &options)?;
    drop(unpacking);
    // Split, then each file read once (and pruned when asked): counted per file.
    let splitting = Task::start(reporter, Phase::Split, label, None);
    let licence = input.licence.clone().or(metadata_licence);
    let named = |at: &Path| {
        let at = at.to_owned();
        move |e: cudapkgs_redist::Error| e.naming_archive(&at, &input.archive)
    };
    let root = work.join("outputs");
    let outputs: Vec<&'static str> = split(&tree, &root, false)
        .map_err(named(&tree))?
        .iter()
        .map(|o| o.name)
        .collect();
    let mut provides = BTreeMap::new();
    let mut elf_files = Vec::new();
    let mut targets = TargetReport::default();
    let mut pruned: BTreeMap<&'static str, Pruned> = BTreeMap::new();
    // One pass, each file mapped once (twice when pruned): its dynamic view and its
    // device code.
    for output in &outputs {
        let base = root.join(output);
        for relative in files(&base)? {
            let path = base.join(&relative);
            if *output == "lib" && is_library_name(&relative) {
                let folder = relative.parent().unwrap_or(Path::new("")).to_owned();
                provides.insert(file_name(&relative), folder);
            }
            if path.is_symlink() {
                continue;
            }
            if let Some(request) = prune.filter(|_| PRUNED_OUTPUTS.contains(output)) {
                prune_file(&path, &relative, request, pruned.entry(output).or_default())?;
            }
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            let mapped = cudapkgs_tree::Mapped::open(&file).map_err(|e| Error::io(&path, e))?;
            let bytes = mapped.bytes();
            targets.add_file(output, &relative, bytes, gpus);
            splitting.advance(1);
            if matches!(*output, "stubs" | "static") || !bytes.starts_with(b"\x7fELF") {
                continue;
            }
            let info = cudapkgs_elf::read_dynamic(bytes).map_err(|source| Error::Elf {
                path: path.clone(),
                source,
            })?;
            if info.has_dynamic {
                elf_files.push(ElfFile {
                    output,
                    loads: load_names(bytes),
                    relative,
                    info,
                });
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tree);
    // The links `dev` and `out` will get are checked with the outputs' own before anything
    // is patched or added.
    let for_linking: Vec<CrossLink> = crate::realise::unversioned_links(&provides)
        .into_iter()
        .map(|(link, target)| CrossLink {
            output: "dev",
            link,
            into: "lib",
            target,
        })
        .collect();
    refuse_links_out_of_outputs(&root, &for_linking).map_err(named(&root))?;
    pruned.retain(|_, done| done.files > 0 || !done.refused.is_empty());
    Ok(Prepared {
        input: input.clone(),
        root,
        outputs,
        provides,
        elf_files,
        targets,
        pruned,
        licence,
    })
}

/// Unpacks `archive` into `tree` (which must not exist) and applies the fix-ups; gives
/// the licence a wheel's metadata declares, read before the fix-ups drop the metadata.
/// Errors name the archive: the work folders they would name are gone.
pub(crate) fn unpack_fixed_up(
    archive: &Path,
    tree: &Path,
    options: &FixupOptions,
) -> Result<Option<String>, Error> {
    unpack(archive, tree, Limits::default())?;
    let licence = wheel_licence(tree);
    fix_up(tree, options).map_err(|e| e.naming_archive(tree, archive))?;
    Ok(licence)
}

/// The licence a wheel's metadata declares (`License-Expression`, else `License`, else a
/// `License ::` classifier), read before the fix-ups drop the metadata.
fn wheel_licence(tree: &Path) -> Option<String> {
    let dir = cudapkgs_tree::dir::Dir::open(tree).ok()?;
    let info = dir
        .entries(Path::new(""))
        .ok()?
        .into_iter()
        .find(|(name, kind)| {
            *kind == cudapkgs_tree::dir::Kind::Folder
                && name.to_string_lossy().ends_with(".dist-info")
        })?;
    let metadata = dir
        .read(&Path::new(&info.0).join("METADATA"), 1 << 20)
        .ok()?;
    let text = String::from_utf8_lossy(&metadata);
    // The headers end at the first blank line; the description follows.
    let headers: Vec<&str> = text.lines().take_while(|line| !line.is_empty()).collect();
    let header = |name: &str| {
        headers
            .iter()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    header("License-Expression:")
        .or_else(|| header("License:"))
        .or_else(|| header("Classifier: License ::"))
}

/// Prunes one file in place (it is the build's own copy); a refused plan leaves it whole
/// and is noted.
fn prune_file(
    path: &Path,
    relative: &Path,
    request: &PruneRequest,
    done: &mut Pruned,
) -> Result<(), Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mapped = cudapkgs_tree::Mapped::open(&file).map_err(|e| Error::io(path, e))?;
    let plan = match cudapkgs_fatbin::plan_prune(mapped.bytes(), request) {
        Ok(plan) => plan,
        Err(PruneError::Read(_)) => return Ok(()),
        Err(refusal) => {
            done.refused
                .push((relative.display().to_string(), refusal.to_string()));
            return Ok(());
        }
    };
    if !plan.changed() {
        return Ok(());
    }
    drop(mapped);
    cudapkgs_tree::rewrite_file(path, &plan.rewrite).map_err(|e| Error::io(path, e))?;
    done.files += 1;
    done.removed_bytes += plan.removed_bytes;
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_library_name(path: &Path) -> bool {
    let name = file_name(path);
    path.extension().is_some_and(|e| e == "so") || name.contains(".so.")
}

/// The run-time loads of a package's files that none of its own libraries answers (and
/// that are not the driver): load → the first file naming it.
pub fn foreign_loads(prepared: &Prepared) -> BTreeMap<LoadName, String> {
    let mut loads = BTreeMap::new();
    for file in &prepared.elf_files {
        for load in &file.loads {
            let own = prepared.provides.keys().any(|name| load.matches(name));
            if own || cudapkgs_elf::resolve::is_driver_library(load.as_str()) {
                continue;
            }
            loads
                .entry(load.clone())
                .or_insert_with(|| format!("{}/{}", file.output, file.relative.display()));
        }
    }
    loads
}

/// The libraries a package's files need from elsewhere: name → the first file needing it.
pub fn foreign_needs(prepared: &Prepared) -> BTreeMap<String, String> {
    let own: BTreeSet<&String> = prepared.provides.keys().collect();
    let mut needs = BTreeMap::new();
    for file in &prepared.elf_files {
        for name in &file.info.needed {
            if own.contains(name) || cudapkgs_elf::resolve::is_driver_library(name) {
                continue;
            }
            needs
                .entry(name.clone())
                .or_insert_with(|| format!("{}/{}", file.output, file.relative.display()));
        }
    }
    needs
}
