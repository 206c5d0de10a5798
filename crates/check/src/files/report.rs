//! The run-time closure of folders and files as people read it: every file with its
//! bytes, owner and device code per architecture; the same summed per package; libraries
//! found at more than one place; ELF files nothing loads.

use std::collections::HashMap;
use std::path::PathBuf;

use cudapkgs_elf::resolve::SearchPaths;
use cudapkgs_fatbin::{ArchTotal, ArchTotals};

use super::{FileGraph, Input, owners, starts};
use crate::Error;
use crate::device::DeviceCode;

/// One file of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureFile {
    /// Links resolved.
    pub path: PathBuf,
    pub bytes: u64,
    /// The package that owns it (a Python distribution, a conda package).
    pub distribution: Option<String>,
    pub device_code: DeviceCode,
}

/// A package's share of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// `None` for the files no package owns.
    pub name: Option<String>,
    pub bytes: u64,
    pub files: usize,
    /// Its files' device code per architecture and kind, biggest first.
    pub device_code: Vec<ArchTotal>,
}

/// The run-time closure of some folders and files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeClosure {
    /// The folders and files given, links resolved.
    pub roots: Vec<PathBuf>,
    /// Every file of the closure, biggest first.
    pub files: Vec<ClosureFile>,
    /// Bytes, files and device code per package, biggest first; files of no package
    /// count under `None`.
    pub by_distribution: Vec<Distribution>,
    /// The closure's device code per architecture and kind, biggest first.
    pub device_code: Vec<ArchTotal>,
    /// Libraries found at more than one place (by `library_name`), with each place: the
    /// same library twice, often in two versions.
    pub duplicates: Vec<(String, Vec<PathBuf>)>,
    /// ELF files under the folders given that no run-time path from their programs and
    /// Python modules reaches.
    pub unreached: Vec<PathBuf>,
    /// Files of the closure that more than one package lists: one was installed over
    /// the other's (two builds of NCCL writing the same `libnccl.so.2`), with each.
    pub shared: Vec<(PathBuf, Vec<String>)>,
}

impl TreeClosure {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.bytes).sum()
    }

    /// A file of the closure as people read it: relative to the folder given that holds
    /// it, else as it is (a system library).
    pub fn shown<'a>(&self, path: &'a std::path::Path) -> &'a std::path::Path {
        self.roots
            .iter()
            .filter(|root| root.is_dir())
            .find_map(|root| path.strip_prefix(root).ok())
            .unwrap_or(path)
    }
}

/// The run-time closure of `roots` (see `starts`), searched as `search` says, read
/// `threads` files at a time.
pub fn tree_closure(
    roots: &[PathBuf],
    search: &SearchPaths,
    threads: usize,
) -> Result<TreeClosure, Error> {
    let inputs = Input::read_all(roots)?;
    let graph = FileGraph::build(&inputs, search, threads)?;
    let owners = owners(&inputs)?;
    let starts = starts(&graph, &inputs);
    let reached = graph.closure(&starts);
    let mut report = TreeClosure {
        roots: inputs.iter().map(|input| input.root.clone()).collect(),
        ..TreeClosure::default()
    };
    for &node in &reached {
        let file = &graph.nodes[node];
        if let Some(sharing) = owners.sharing(&file.path) {
            report.shared.push((file.path.clone(), sharing.to_vec()));
        }
        report.files.push(ClosureFile {
            path: file.path.clone(),
            bytes: file.bytes,
            distribution: owners.get(&file.path).cloned(),
            device_code: file.device_code.clone(),
        });
    }
    report
        .files
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    let mut by_distribution: HashMap<Option<String>, (u64, usize, ArchTotals)> = HashMap::new();
    let mut closure_code = ArchTotals::default();
    let mut by_library: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for file in &report.files {
        let entry = by_distribution
            .entry(file.distribution.clone())
            .or_default();
        entry.0 += file.bytes;
        entry.1 += 1;
        for total in &file.device_code.by_arch {
            entry.2.merge(total);
            closure_code.merge(total);
        }
        let name = file.path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(library) = library_name(&name) {
            by_library
                .entry(library.to_owned())
                .or_default()
                .push(file.path.clone());
        }
    }
    report.device_code = closure_code.biggest_first();
    report.by_distribution = by_distribution
        .into_iter()
        .map(|(name, (bytes, files, code))| Distribution {
            name,
            bytes,
            files,
            device_code: code.biggest_first(),
        })
        .collect();
    report
        .by_distribution
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    report.duplicates = by_library
        .into_iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(library, mut places)| {
            places.sort();
            (library, places)
        })
        .collect();
    report.duplicates.sort();
    let mut in_closure = vec![false; graph.nodes.len()];
    for &node in &reached {
        in_closure[node] = true;
    }
    for input in inputs.iter().filter(|input| input.files.is_some()) {
        report.unreached.extend(
            (0..graph.nodes.len())
                .filter(|&node| {
                    !in_closure[node] && graph.nodes[node].path.starts_with(&input.root)
                })
                .map(|node| graph.nodes[node].path.clone()),
        );
    }
    report.unreached.sort();
    report.shared.sort();
    Ok(report)
}

/// The library a file is, for finding the same one twice: its name before `.so`, without
/// the hashes auditwheel adds when it vendors a library into a wheel
/// (`libgfortran-040039e1-0352e75f.so.5.0.0` is `libgfortran`). Python modules are no
/// libraries: two `_ops.so` of different packages are different modules.
fn library_name(file: &str) -> Option<&str> {
    let (mut stem, _) = file.split_once(".so")?;
    if !stem.starts_with("lib") {
        return None;
    }
    while let Some((rest, hash)) = stem.rsplit_once('-') {
        if hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            stem = rest;
        } else {
            break;
        }
    }
    Some(stem)
}

#[cfg(test)]
mod tests {
    use super::library_name;

    #[test]
    fn libraries_are_named_without_vendoring_hashes() {
        assert_eq!(
            library_name("libgfortran-040039e1-0352e75f.so.5.0.0"),
            Some("libgfortran")
        );
        assert_eq!(
            library_name("libgfortran-8f1e9814.so.5"),
            Some("libgfortran")
        );
        assert_eq!(library_name("libcublasLt.so.13"), Some("libcublasLt"));
        assert_eq!(
            library_name("libnvrtc-builtins.so.13.0"),
            Some("libnvrtc-builtins")
        );
        assert_eq!(library_name("_C.cpython-311-x86_64-linux-gnu.so"), None);
        assert_eq!(library_name("libfoo"), None);
    }
}
