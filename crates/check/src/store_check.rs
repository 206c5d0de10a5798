//! The policy over the closures of store paths: every path of a root's closure, every
//! file of each path, the chain of references from the root to the path.

use std::path::{Path, PathBuf};

use cudapkgs_store::diff::package_and_version;
use cudapkgs_store::store::Store;
use cudapkgs_store::why::{Hop, why};

use crate::targets::TargetFindings;
use crate::{Error, Policy, Rule};

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
    /// What it is: the denied name, the runpath entry, the driver folder, the
    /// capability or architecture.
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
        for info in store.closure(&[store.parse_path(root)?])? {
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
        let bytes = metadata.len();
        for rule in file_rules(&file) {
            if policy.applies(rule) {
                found.push((rule, file.clone(), bytes, String::new()));
            }
        }
        for (rule, detail, rule_bytes) in read_file(&full, bytes, policy)? {
            if policy.applies(rule) {
                found.push((rule, file.clone(), rule_bytes, detail));
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

/// The rules a file breaks by its contents, each with its detail and bytes: runpath
/// entries naming a `stubs` folder, a driver user whose runpath lacks the driver folder,
/// and its device code against the requested GPUs.
fn read_file(path: &Path, size: u64, policy: &Policy) -> Result<Vec<(Rule, String, u64)>, Error> {
    let mut found = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mapped = cudapkgs_tree::Mapped::open(&file).map_err(|e| Error::io(path, e))?;
    let bytes = mapped.bytes();
    // A file that is not a dynamic ELF object has no runpath to judge.
    if let Some(info) = bytes
        .starts_with(b"\x7fELF")
        .then(|| cudapkgs_elf::read_dynamic(bytes).ok())
        .flatten()
    {
        let entries: Vec<&str> = info
            .runpath
            .iter()
            .chain(info.rpath.iter())
            .flat_map(|list| list.split(':'))
            .collect();
        for entry in &entries {
            if cudapkgs_elf::resolve::is_stub_folder(Path::new(entry)) {
                found.push((Rule::StubRunpath, (*entry).to_owned(), size));
            }
        }
        if policy.applies(Rule::Driver) {
            let loads = cudapkgs_elf::loads::load_names(bytes);
            if crate::driver::uses_driver(path, &info, &loads)
                && !crate::driver::names_driver_dir(entries.iter().copied(), &policy.driver_dir)
            {
                found.push((Rule::Driver, policy.driver_dir.display().to_string(), size));
            }
        }
    }
    if !policy.capabilities.is_empty() {
        let findings = crate::targets::judge_file(bytes, &file, &policy.capabilities);
        found.extend(target_violations(findings, size));
    }
    Ok(found)
}

/// The violations of a file's device code: one per requested capability it has no image
/// for (the file's bytes), one per architecture no requested GPU loads (its bytes).
pub(crate) fn target_violations(
    findings: Result<TargetFindings, String>,
    size: u64,
) -> Vec<(Rule, String, u64)> {
    match findings {
        Ok(findings) => findings
            .missing
            .iter()
            .map(|capability| (Rule::MissingTarget, capability.to_string(), size))
            .chain(findings.unrequested.iter().map(|total| {
                (
                    Rule::UnrequestedTarget,
                    total.arch.clone(),
                    total.stored_bytes,
                )
            }))
            .collect(),
        // Device code that cannot be read cannot be shown to be for the GPUs requested.
        Err(problem) => vec![(Rule::MissingTarget, problem, size)],
    }
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
