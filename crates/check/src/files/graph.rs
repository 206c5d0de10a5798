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
    Lookups, SearchPaths, extra_loads, find_in_folders, resolve_loads_with, resolve_needed_with,
    rpath_folders,
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

/// What reading one file gives: its node, its edges and what a search on its behalf
/// needs of it, or nothing for a file that is no dynamic ELF object.
type ReadFile = Option<(FileNode, Vec<FoundEdge>, Inherited)>;

/// What the loader's search for a file's libraries takes from the files that load it.
#[derive(Debug, Clone)]
struct Inherited {
    /// The file's own `DT_RPATH` folders, which also serve what it loads (none when it
    /// has a `DT_RUNPATH`).
    rpath: Vec<PathBuf>,
    /// For a file with needed libraries found nowhere and no `DT_RUNPATH` (whose search
    /// then goes through its loaders' `DT_RPATH`s): its view, to match candidates.
    info: Option<cudapkgs_elf::DynamicInfo>,
}

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
        // Once nothing is left to read, libraries found nowhere are looked for through
        // the `DT_RPATH`s of the files that load theirs, which may bring more to read.
        let mut edges_by_node: Vec<Vec<(String, PathBuf, bool)>> = Vec::new();
        let mut inherited: Vec<Inherited> = Vec::new();
        while !wave.is_empty() {
            while !wave.is_empty() {
                let read = crate::parallel::map(&wave, threads, |(path, found_at)| {
                    read_node(path, found_at, search, &lookups)
                });
                let mut next = Vec::new();
                for ((path, _), result) in wave.into_iter().zip(read) {
                    let Some((node, found, passed_on)) = result? else {
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
                    inherited.push(passed_on);
                }
                wave = next;
            }
            for (node, found) in graph.through_loaders(&edges_by_node, &inherited, search, &lookups)
            {
                let Some(to) = canonical.of(&found.1) else {
                    continue;
                };
                let name = found.0;
                graph.nodes[node]
                    .unresolved
                    .retain(|unresolved| *unresolved != name);
                if queued.insert(to.clone()) {
                    wave.push((to.clone(), found.1));
                }
                edges_by_node[node].push((name, to, false));
            }
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

    /// The needed libraries found nowhere by their files' own search that the loader
    /// finds through the `DT_RPATH`s of the files loading them (up the chain of loaders,
    /// as long as the file itself has no `DT_RUNPATH`): for each, the node and the name
    /// with where it is found. A file loaded along several chains is searched through
    /// all of them.
    fn through_loaders(
        &self,
        edges_by_node: &[Vec<(String, PathBuf, bool)>],
        inherited: &[Inherited],
        search: &SearchPaths,
        lookups: &Lookups,
    ) -> Vec<(usize, (String, PathBuf))> {
        let waiting: Vec<usize> = (0..self.nodes.len())
            .filter(|&node| {
                inherited[node].info.is_some() && !self.nodes[node].unresolved.is_empty()
            })
            .collect();
        if waiting.is_empty() {
            return Vec::new();
        }
        let mut loaders: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (from, edges) in edges_by_node.iter().enumerate() {
            for (_, to, _) in edges {
                if let Some(&to) = self.index.get(to) {
                    loaders[to].push(from);
                }
            }
        }
        let mut found = Vec::new();
        for node in waiting {
            let mut seen = vec![false; self.nodes.len()];
            seen[node] = true;
            let mut queue: VecDeque<usize> = loaders[node].iter().copied().collect();
            let mut folders: Vec<PathBuf> = Vec::new();
            while let Some(loader) = queue.pop_front() {
                if std::mem::replace(&mut seen[loader], true) {
                    continue;
                }
                folders.extend(inherited[loader].rpath.iter().cloned());
                queue.extend(loaders[loader].iter().copied());
            }
            let Some(info) = &inherited[node].info else {
                continue;
            };
            for name in &self.nodes[node].unresolved {
                if let Some(at) = find_in_folders(&folders, name, info, search, lookups) {
                    found.push((node, (name.clone(), at)));
                }
            }
        }
        found
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
    let passed_on = Inherited {
        rpath: rpath_folders(found_at, &info, search),
        info: (info.runpath.is_none() && !unresolved.is_empty()).then(|| info.clone()),
    };
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
    Ok(Some((node, edges, passed_on)))
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
