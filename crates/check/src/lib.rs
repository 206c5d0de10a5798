//! Policy checks of runtime closures: what a closure should not hold at run time (denied
//! packages, a whole CUDA toolkit, static libraries, headers, stub libraries, runpaths
//! into stub folders), each violation with the reference chain that pulls it in.

mod error;
pub mod files;
pub mod policy;
pub mod treemap;

use std::path::{Path, PathBuf};

use cudapkgs_store::diff::package_and_version;
use cudapkgs_store::store::Store;
use cudapkgs_store::why::{Hop, why};

pub use error::Error;
pub use policy::{Policy, Rule};

/// One thing the closure holds against the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    /// The store path that holds it.
    pub path: String,
    /// The file, relative to `path` (empty for the whole path).
    pub file: PathBuf,
    /// Its bytes (the path's NAR size for a whole path).
    pub bytes: u64,
    /// What it is: the denied name, the runpath entry.
    pub detail: String,
    /// How the checked root reaches `path`: the root, then a hop per reference (empty
    /// when `path` is the root itself).
    pub root: String,
    pub chain: Vec<Hop>,
}

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Store paths looked at (the closures of the roots).
    pub paths: usize,
    pub violations: Vec<Violation>,
}

/// Checks the closures of `roots` against `policy`.
pub fn check_closure(store: &Store, roots: &[String], policy: &Policy) -> Result<Report, Error> {
    let mut report = Report::default();
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        for info in store.closure(std::slice::from_ref(root))? {
            if !seen.insert(info.path.clone()) {
                continue;
            }
            report.paths += 1;
            let found = check_path(store, &info.path, info.nar_size, policy)?;
            if found.is_empty() {
                continue;
            }
            let chain = why(store, root, &info.path)?.unwrap_or_default();
            for (rule, file, bytes, detail) in found {
                report.violations.push(Violation {
                    rule,
                    path: info.path.clone(),
                    file,
                    bytes,
                    detail,
                    root: root.clone(),
                    chain: chain.clone(),
                });
            }
        }
    }
    Ok(report)
}

/// One thing a file's run-time closure holds against the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileViolation {
    pub rule: Rule,
    /// The file (links resolved).
    pub file: PathBuf,
    pub bytes: u64,
    /// What it is: the denied name, the runpath entry, the library found nowhere.
    pub detail: String,
    /// The file checked that reaches it, and each hop: the file and the name it loads.
    pub start: PathBuf,
    pub chain: Vec<(PathBuf, String)>,
}

/// What a check of files found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// ELF files in the run-time closure.
    pub files: usize,
    pub violations: Vec<FileViolation>,
}

/// Checks the run-time closures of `roots` (folders: their programs and Python
/// modules, or every ELF file when they hold only libraries; files: themselves) against
/// `policy`; `system` are the folders the loader searches last.
pub fn check_files(
    roots: &[PathBuf],
    system: &[PathBuf],
    policy: &Policy,
    threads: usize,
) -> Result<FileReport, Error> {
    let graph = files::FileGraph::build(roots, system, threads)?;
    let owners = files::owners(roots)?;
    let starts = files::starts(&graph, roots);
    let mut report = FileReport::default();
    let mut reached_from = vec![None; graph.nodes.len()];
    for &start in &starts {
        for node in graph.closure(&[start]) {
            reached_from[node].get_or_insert(start);
        }
    }
    // A library that a file reached from another start provides by its soname is found
    // once that file is loaded (the loader reuses a loaded library of that name): a
    // Python module of torchvision needs libc10.so without a runpath to it, and `import
    // torch` loads it first. A file nothing reaches provides nothing.
    let provided: std::collections::HashSet<&str> = graph
        .nodes
        .iter()
        .zip(&reached_from)
        .filter(|(_, reached)| reached.is_some())
        .filter_map(|(node, _)| node.soname.as_deref())
        .collect();
    for (node, start) in reached_from.iter().enumerate() {
        let Some(start) = *start else { continue };
        report.files += 1;
        let file = &graph.nodes[node];
        let mut found: Vec<(Rule, String)> = Vec::new();
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let owner = owners.get(&file.path).map(String::as_str);
        let denied = owner
            .and_then(|owner| policy.denies_distribution(owner))
            .or_else(|| {
                name.as_deref()
                    .and_then(|name| name.strip_prefix("lib"))
                    .and_then(|name| name.split(".so").next())
                    .and_then(|library| policy.denies(library))
            });
        if let Some(denied) = denied {
            found.push((Rule::Denied, denied.to_owned()));
        }
        if file
            .path
            .parent()
            .is_some_and(cudapkgs_elf::resolve::is_stub_folder)
        {
            found.push((Rule::StubLibrary, String::new()));
        }
        for entry in &file.search_list {
            if cudapkgs_elf::resolve::is_stub_folder(Path::new(entry)) {
                found.push((Rule::StubRunpath, entry.clone()));
            }
        }
        for library in file
            .unresolved
            .iter()
            .filter(|l| !provided.contains(l.as_str()))
        {
            found.push((Rule::Unresolved, library.clone()));
        }
        for (rule, detail) in found.into_iter().filter(|(rule, _)| policy.applies(*rule)) {
            let chain = graph
                .why(start, node)
                .unwrap_or_default()
                .into_iter()
                .map(|(from, edge)| (graph.nodes[from].path.clone(), edge.name))
                .collect();
            report.violations.push(FileViolation {
                rule,
                file: file.path.clone(),
                bytes: file.bytes,
                detail,
                start: graph.nodes[start].path.clone(),
                chain,
            });
        }
    }
    Ok(report)
}

/// (rule, file, bytes, detail) of what one path holds against the policy.
type Found = Vec<(Rule, PathBuf, u64, String)>;

fn check_path(store: &Store, path: &str, nar_size: u64, policy: &Policy) -> Result<Found, Error> {
    let mut found = Found::new();
    let name = path.rsplit('/').next().unwrap_or(path);
    let (package, _) = package_and_version(name.get(33..).unwrap_or(name));
    if policy.applies(Rule::Denied)
        && let Some(denied) = policy.denies(package)
    {
        found.push((Rule::Denied, PathBuf::new(), nar_size, denied.to_owned()));
    }
    let physical = store.physical(path);
    let files = if physical.is_dir() {
        let tree = cudapkgs_tree::dir::Dir::open(&physical).map_err(|e| Error::io(&physical, e))?;
        tree.files().map_err(|e| Error::io(&physical, e))?
    } else {
        vec![PathBuf::new()]
    };
    let toolkit = files.iter().any(|file| file == Path::new("bin/nvcc"));
    if toolkit && policy.applies(Rule::Toolkit) {
        found.push((
            Rule::Toolkit,
            PathBuf::new(),
            nar_size,
            "bin/nvcc".to_owned(),
        ));
    }
    for file in files {
        let full = physical.join(&file);
        let Ok(metadata) = full.symlink_metadata() else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        for rule in file_rules(&file) {
            if policy.applies(rule) {
                found.push((rule, file.clone(), metadata.len(), String::new()));
            }
        }
        if policy.applies(Rule::StubRunpath) {
            for entry in stub_runpath_entries(&full)? {
                found.push((Rule::StubRunpath, file.clone(), metadata.len(), entry));
            }
        }
    }
    Ok(found)
}

/// The rules a file breaks by what it is, told by its place and name.
fn file_rules(file: &Path) -> Vec<Rule> {
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_folder = |folder: &str| file.components().any(|c| c.as_os_str() == folder);
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let mut rules = Vec::new();
    if extension == "a" {
        rules.push(Rule::StaticLibrary);
    }
    let header = [".h", ".hpp", ".hh", ".cuh", ".hxx"]
        .iter()
        .any(|extension| name.ends_with(extension));
    if header && in_folder("include") {
        rules.push(Rule::Header);
    }
    let library = name.starts_with("lib") && (extension == "so" || name.contains(".so."));
    if library && in_folder("stubs") {
        rules.push(Rule::StubLibrary);
    }
    rules
}

/// The runpath (or rpath) entries of an ELF file that name a `stubs` folder.
fn stub_runpath_entries(path: &Path) -> Result<Vec<String>, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mapped = cudapkgs_tree::Mapped::open(&file).map_err(|e| Error::io(path, e))?;
    let bytes = mapped.bytes();
    if !bytes.starts_with(b"\x7fELF") {
        return Ok(Vec::new());
    }
    // A file that is not a dynamic ELF object has no runpath to judge.
    let Ok(info) = cudapkgs_elf::read_dynamic(bytes) else {
        return Ok(Vec::new());
    };
    Ok(info
        .runpath
        .iter()
        .chain(info.rpath.iter())
        .flat_map(|list| list.split(':'))
        .filter(|entry| cudapkgs_elf::resolve::is_stub_folder(Path::new(entry)))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_judged_by_place_and_name() {
        let rules = |file: &str| file_rules(Path::new(file));
        assert_eq!(rules("lib/libcudart_static.a"), [Rule::StaticLibrary]);
        assert_eq!(rules("include/cuda_runtime.h"), [Rule::Header]);
        assert_eq!(rules("share/doc/x.h"), Vec::<Rule>::new());
        assert_eq!(rules("lib/stubs/libcuda.so"), [Rule::StubLibrary]);
        assert_eq!(rules("lib/libcudart.so.13"), Vec::<Rule>::new());
    }
}
