//! The policy over the run-time closures of plain folders and files: the ELF graph from
//! their programs and modules, each violation with the chain of loads that reaches it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use cudapkgs_elf::resolve::SearchPaths;

use crate::files::{FileGraph, Input, owners, starts};
use crate::{Error, Policy, Rule};

/// One thing a file's run-time closure holds against the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileViolation {
    pub rule: Rule,
    /// The file (links resolved).
    pub file: PathBuf,
    pub bytes: u64,
    /// What it is: the denied name, the runpath entry, the library found nowhere, the
    /// driver folder, the capability or architecture.
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
/// `policy`, searched as `search` says (its system folders last).
pub fn check_files(
    roots: &[PathBuf],
    search: &SearchPaths,
    policy: &Policy,
    threads: usize,
) -> Result<FileReport, Error> {
    let inputs = Input::read_all(roots)?;
    let graph = FileGraph::build(&inputs, search, threads)?;
    let owners = owners(&inputs)?;
    let starts = starts(&graph, &inputs);
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
    let provided: HashSet<&str> = graph
        .nodes
        .iter()
        .zip(&reached_from)
        .filter(|(_, reached)| reached.is_some())
        .filter_map(|(node, _)| node.soname.as_deref())
        .collect();
    let targets = judge_targets(&graph, &reached_from, policy, threads);
    for (node, start) in reached_from.iter().enumerate() {
        let Some(start) = *start else { continue };
        report.files += 1;
        let file = &graph.nodes[node];
        let mut found: Vec<(Rule, String, u64)> = Vec::new();
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
            found.push((Rule::Denied, denied.to_owned(), file.bytes));
        }
        if file
            .path
            .parent()
            .is_some_and(cudapkgs_elf::resolve::is_stub_folder)
        {
            found.push((Rule::StubLibrary, String::new(), file.bytes));
        }
        for entry in &file.search_list {
            if cudapkgs_elf::resolve::is_stub_folder(Path::new(entry)) {
                found.push((Rule::StubRunpath, entry.clone(), file.bytes));
            }
        }
        for library in file
            .unresolved
            .iter()
            .filter(|l| !provided.contains(l.as_str()))
        {
            found.push((Rule::Unresolved, library.clone(), file.bytes));
        }
        if let Some(own) = &file.driver_search {
            let folders = own.iter().chain(&search.system).map(PathBuf::as_path);
            if !crate::driver::reaches_driver(folders, &policy.driver_dir, search) {
                let detail = policy.driver_dir.display().to_string();
                found.push((Rule::Driver, detail, file.bytes));
            }
        }
        if let Some(findings) = targets.get(&node) {
            found.extend(findings.iter().cloned());
        }
        for (rule, detail, bytes) in found
            .into_iter()
            .filter(|(rule, _, _)| policy.applies(*rule))
        {
            let chain = graph
                .why(start, node)
                .unwrap_or_default()
                .into_iter()
                .map(|(from, edge)| (graph.nodes[from].path.clone(), edge.name))
                .collect();
            report.violations.push(FileViolation {
                rule,
                file: file.path.clone(),
                bytes,
                detail,
                start: graph.nodes[start].path.clone(),
                chain,
            });
        }
    }
    Ok(report)
}

/// The device code of every reached file that holds some, against the requested GPUs:
/// each file's contents read (`threads` at a time) to know its kernels.
fn judge_targets(
    graph: &FileGraph,
    reached_from: &[Option<usize>],
    policy: &Policy,
    threads: usize,
) -> HashMap<usize, Vec<(Rule, String, u64)>> {
    if policy.capabilities.is_empty()
        || !(policy.applies(Rule::MissingTarget) || policy.applies(Rule::UnrequestedTarget))
    {
        return HashMap::new();
    }
    let with_code: Vec<usize> = (0..graph.nodes.len())
        .filter(|&node| reached_from[node].is_some())
        .filter(|&node| {
            let code = &graph.nodes[node].device_code;
            !code.by_arch.is_empty() || code.problem.is_some()
        })
        .collect();
    let judged = crate::parallel::map(&with_code, threads, |&node| {
        let file = &graph.nodes[node];
        let findings = read_and_judge(&file.path, &policy.capabilities);
        crate::store_check::target_violations(findings, file.bytes)
    });
    with_code.into_iter().zip(judged).collect()
}

fn read_and_judge(
    path: &Path,
    requested: &[cudapkgs_caps::Capability],
) -> Result<crate::targets::TargetFindings, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mapped = cudapkgs_tree::Mapped::open(&file).map_err(|e| e.to_string())?;
    crate::targets::judge_file(mapped.bytes(), &file, requested)
}
