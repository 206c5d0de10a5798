//! The graph of ELF files under some folders: each joined to what the loader would load
//! for it, its `DT_NEEDED` entries and the libraries its bytes name for `dlopen`, each
//! resolved in the loader's order (runpaths with `$ORIGIN`, then the system folders; no
//! `LD_LIBRARY_PATH`: the closure as installed). Each file is read once, and what the
//! checks and reports need of it is kept: its device code per architecture and whether
//! it uses the driver.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use cudapkgs_elf::loads::load_names;
use cudapkgs_elf::resolve::{
    Lookups, SearchPaths, extra_loads, resolve_loads_with, resolve_needed_with,
};

use super::canonical::Canonical;
use super::walk::Input;
use crate::Error;
use crate::device::DeviceCode;

/// One ELF file of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNode {
    /// The file, links resolved.
    pub path: PathBuf,
    pub soname: Option<String>,
    pub bytes: u64,
    pub edges: Vec<FileEdge>,
    /// Needed libraries found nowhere (driver libraries aside: they come with the host).
    pub unresolved: Vec<String>,
    /// Runpath (or rpath) entries as written.
    pub search_list: Vec<String>,
    /// For a file that uses the driver: the folders its own search list names, expanded
    /// from where the loader found it, in the loader's order.
    pub driver_search: Option<Vec<PathBuf>>,
    pub device_code: DeviceCode,
}

/// One library a file loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdge {
    /// The name the file asks for (`libcublasLt.so.13`, `libnvrtc.so.*`).
    pub name: String,
    /// The node of the file found.
    pub to: usize,
    /// Loaded at run time by name (`dlopen`), not needed at start.
    pub loaded: bool,
}

/// An edge as a file's reading finds it: the name loaded, the path the loader finds it
/// at (links kept: its `$ORIGIN` is that path's folder, not the link target's), whether
/// it is a run-time load.
type FoundEdge = (String, PathBuf, bool);

/// What reading one file gives: its node and its edges, or nothing for a file that is
/// no dynamic ELF object.
type ReadFile = Option<(FileNode, Vec<FoundEdge>)>;

/// The ELF files under some roots and the libraries they load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileGraph {
    pub nodes: Vec<FileNode>,
    index: HashMap<PathBuf, usize>,
}

impl FileGraph {
    /// The graph of every ELF file of `inputs` (folders or files), and of every file
    /// outside them that those load, searched as `search` says; files are read `threads`
    /// at a time.
    pub fn build(
        inputs: &[Input],
        search: &SearchPaths,
        threads: usize,
    ) -> Result<FileGraph, Error> {
        let lookups = Lookups::default();
        let mut canonical = Canonical::in_root(search.root.as_deref());
        let mut graph = FileGraph::default();
        // (the file, links resolved; the path it is found at, for its `$ORIGIN`)
        let mut wave: Vec<(PathBuf, PathBuf)> = Vec::new();
        for input in inputs {
            if input.files.is_none() {
                wave.push((input.root.clone(), input.given.clone()));
            }
            for (relative, status) in input.regular_files() {
                let name = relative.file_name().unwrap_or_default().to_string_lossy();
                let library = name.ends_with(".so") || name.contains(".so.");
                if library || status.mode & 0o111 != 0 {
                    let path = input.root.join(relative);
                    wave.push((path.clone(), path));
                }
            }
        }
        let mut queued: HashSet<PathBuf> = wave.iter().map(|(path, _)| path.clone()).collect();
        // Read in waves (the files named, then what they load, …), each wave's files at
        // once; edges are found by path, and nodes numbered in the order of the waves.
        let mut edges_by_node: Vec<Vec<(String, PathBuf, bool)>> = Vec::new();
        while !wave.is_empty() {
            let read = crate::parallel::map(&wave, threads, |(path, found_at)| {
                read_node(path, found_at, search, &lookups)
            });
            let mut next = Vec::new();
            for ((path, _), result) in wave.into_iter().zip(read) {
                let Some((node, found)) = result? else {
                    continue;
                };
                let mut edges = Vec::with_capacity(found.len());
                for (name, at, loaded) in found {
                    let Some(to) = canonical.of(&at) else {
                        continue;
                    };
                    // A library that names itself does not load itself again.
                    if loaded && to == path {
                        continue;
                    }
                    if queued.insert(to.clone()) {
                        next.push((to.clone(), at));
                    }
                    edges.push((name, to, loaded));
                }
                graph.index.insert(path, graph.nodes.len());
                graph.nodes.push(node);
                edges_by_node.push(edges);
            }
            wave = next;
        }
        for (node, edges) in graph.nodes.iter_mut().zip(edges_by_node) {
            node.edges = edges
                .into_iter()
                .filter_map(|(name, path, loaded)| {
                    let to = *graph.index.get(&path)?;
                    Some(FileEdge { name, to, loaded })
                })
                .collect();
        }
        Ok(graph)
    }

    /// The node of `path` (links resolved), if it is an ELF file of the graph.
    pub fn node(&self, path: &Path) -> Option<usize> {
        let path = std::fs::canonicalize(path).ok()?;
        self.index.get(&path).copied()
    }

    /// The node of a file whose path has its links resolved already.
    pub(crate) fn node_at(&self, path: &Path) -> Option<usize> {
        self.index.get(path).copied()
    }

    /// Every node `starts` reach, the starts first, each once.
    pub fn closure(&self, starts: &[usize]) -> Vec<usize> {
        let mut seen = vec![false; self.nodes.len()];
        let mut order = Vec::new();
        let mut queue: VecDeque<usize> = starts.iter().copied().collect();
        while let Some(node) = queue.pop_front() {
            if std::mem::replace(&mut seen[node], true) {
                continue;
            }
            order.push(node);
            queue.extend(self.nodes[node].edges.iter().map(|edge| edge.to));
        }
        order
    }

    /// The shortest chain of loads from `from` to `to`: each hop's file and the edge
    /// it takes.
    pub fn why(&self, from: usize, to: usize) -> Option<Vec<(usize, FileEdge)>> {
        let mut came: HashMap<usize, (usize, FileEdge)> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = vec![false; self.nodes.len()];
        seen[from] = true;
        while let Some(node) = queue.pop_front() {
            if node == to {
                break;
            }
            for edge in &self.nodes[node].edges {
                if !std::mem::replace(&mut seen[edge.to], true) {
                    came.insert(edge.to, (node, edge.clone()));
                    queue.push_back(edge.to);
                }
            }
        }
        if from != to && !came.contains_key(&to) {
            return None;
        }
        let mut chain = Vec::new();
        let mut at = to;
        while at != from {
            let (previous, edge) = came[&at].clone();
            chain.push((previous, edge));
            at = previous;
        }
        chain.reverse();
        Some(chain)
    }
}

/// Reads the ELF file at `path` (links resolved) and where the libraries it loads are;
/// `None` for a file that is no dynamic ELF object.
fn read_node(
    path: &Path,
    found_at: &Path,
    search: &SearchPaths,
    lookups: &Lookups,
) -> Result<ReadFile, Error> {
    // Only regular files are ELF objects; opening a FIFO would wait.
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(None);
    };
    let mapped = cudapkgs_tree::Mapped::open(&file).map_err(|e| Error::io(path, e))?;
    let bytes = mapped.bytes();
    if !bytes.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let Ok(info) = cudapkgs_elf::read_dynamic(bytes) else {
        return Ok(None);
    };
    let mut edges = Vec::new();
    let mut unresolved = Vec::new();
    // Searched from where the loader found the file: `$ORIGIN` is that folder.
    for resolved in resolve_needed_with(found_at, &info, search, lookups) {
        match resolved.path {
            Some(at) => edges.push((resolved.name, at, false)),
            None if !resolved.driver => unresolved.push(resolved.name),
            None => {}
        }
    }
    let names = load_names(bytes);
    let loads = extra_loads(found_at, &info, &names);
    for resolved in resolve_loads_with(found_at, &info, &loads, search, lookups) {
        if let Some(at) = resolved.path {
            edges.push((shown(&resolved.name), at, true));
        }
    }
    let driver_search = crate::driver::uses_driver(path, &info, &names)
        .then(|| crate::driver::own_search(found_at, &info, search));
    let device_code = DeviceCode::read(bytes, &file).map_err(|e| Error::io(path, e))?;
    let search_list = info
        .runpath
        .iter()
        .chain(info.rpath.iter())
        .flat_map(|list| list.split(':'))
        .map(str::to_owned)
        .collect();
    let node = FileNode {
        soname: info.soname.clone(),
        path: path.to_owned(),
        bytes: bytes.len() as u64,
        edges: Vec::new(),
        unresolved,
        search_list,
        driver_search,
        device_code,
    };
    Ok(Some((node, edges)))
}

/// A load name as people read it: a stem the code completes with a version is shown
/// as `libnvrtc.so.*`.
fn shown(name: &str) -> String {
    if name.ends_with(".so.") {
        format!("{name}*")
    } else {
        name.to_owned()
    }
}
