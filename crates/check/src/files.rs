//! The run-time closure of plain folders and files (a venv, a conda environment, a
//! container's root): ELF files joined by what the loader would load for them, their
//! `DT_NEEDED` entries and the libraries their bytes name for `dlopen`, each resolved in
//! the loader's order (runpaths with `$ORIGIN`, then the system folders; no
//! `LD_LIBRARY_PATH`: the closure as installed). Python trees also say which
//! distribution owns each file (`*.dist-info/RECORD`).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use cudapkgs_elf::loads::load_names;
use cudapkgs_elf::resolve::{SearchPaths, extra_loads, resolve_loads, resolve_needed};

use crate::Error;

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
}

/// An edge while the graph is built: the name loaded, the file found (links resolved),
/// whether it is a run-time load, and the path the loader found it at (links kept: its
/// `$ORIGIN` is that path's folder, not the link target's).
type FoundEdge = (String, PathBuf, bool, PathBuf);

/// What reading one file gives: its node and its edges, or nothing for a file that is
/// no dynamic ELF object.
type ReadFile = Option<(FileNode, Vec<FoundEdge>)>;

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

/// The ELF files under some roots and the libraries they load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileGraph {
    pub nodes: Vec<FileNode>,
    index: HashMap<PathBuf, usize>,
}

impl FileGraph {
    /// The graph of every ELF file under `roots` (folders or files), and of every file
    /// outside them that those load, with the system folders `system` searched last;
    /// files are read `threads` at a time.
    pub fn build(
        roots: &[PathBuf],
        system: &[PathBuf],
        threads: usize,
    ) -> Result<FileGraph, Error> {
        let search = SearchPaths {
            system: system.to_vec(),
            ..SearchPaths::default()
        };
        let mut graph = FileGraph::default();
        // (the file, links resolved; the path it is found at, for its `$ORIGIN`)
        let mut wave: Vec<(PathBuf, PathBuf)> = Vec::new();
        for root in roots {
            let given = std::path::absolute(root).map_err(|e| Error::io(root, e))?;
            let root = std::fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
            if root.is_dir() {
                wave.extend(elf_candidates(&root)?.into_iter().map(|p| (p.clone(), p)));
            } else {
                wave.push((root, given));
            }
        }
        let mut queued: std::collections::HashSet<PathBuf> =
            wave.iter().map(|(path, _)| path.clone()).collect();
        // Read in waves (the files named, then what they load, …), each wave's files at
        // once; edges are found by path, and nodes numbered in the order of the waves.
        let mut found_edges: Vec<Vec<FoundEdge>> = Vec::new();
        while !wave.is_empty() {
            let read = read_nodes(&wave, &search, threads)?;
            let mut next = Vec::new();
            for ((path, _), result) in wave.into_iter().zip(read) {
                let Some((node, edges)) = result else {
                    continue;
                };
                for (_, to, _, found_at) in &edges {
                    if queued.insert(to.clone()) {
                        next.push((to.clone(), found_at.clone()));
                    }
                }
                graph.index.insert(path, graph.nodes.len());
                graph.nodes.push(node);
                found_edges.push(edges);
            }
            wave = next;
        }
        for (node, edges) in graph.nodes.iter_mut().zip(found_edges) {
            node.edges = edges
                .into_iter()
                .filter_map(|(name, path, loaded, _)| {
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

/// Files under `root` that may be ELF objects: libraries by name (`.so`, `.so.N`) and
/// executables (any execute bit), links left out (their targets are there too).
fn elf_candidates(root: &Path) -> Result<Vec<PathBuf>, Error> {
    use std::os::unix::fs::PermissionsExt;
    let tree = cudapkgs_tree::dir::Dir::open(root).map_err(|e| Error::io(root, e))?;
    let mut found = Vec::new();
    for relative in tree.files().map_err(|e| Error::io(root, e))? {
        let path = root.join(&relative);
        let Ok(metadata) = path.symlink_metadata() else {
            continue;
        };
        let name = relative.file_name().unwrap_or_default().to_string_lossy();
        let library = name.ends_with(".so") || name.contains(".so.");
        if metadata.is_file() && (library || metadata.permissions().mode() & 0o111 != 0) {
            found.push(path);
        }
    }
    Ok(found)
}

/// `read_node` for each of `paths`, `threads` at a time, in their order.
fn read_nodes(
    paths: &[(PathBuf, PathBuf)],
    search: &SearchPaths,
    threads: usize,
) -> Result<Vec<ReadFile>, Error> {
    let threads = threads.clamp(1, paths.len().max(1));
    let results: Vec<Vec<(usize, Result<ReadFile, Error>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                scope.spawn(move || {
                    (worker..paths.len())
                        .step_by(threads)
                        .map(|i| (i, read_node(&paths[i].0, &paths[i].1, search)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a reader never panics"))
            .collect()
    });
    let mut ordered: Vec<ReadFile> = (0..paths.len()).map(|_| None).collect();
    for (i, result) in results.into_iter().flatten() {
        ordered[i] = result?;
    }
    Ok(ordered)
}

/// Reads the ELF file at `path` (links resolved) and where the libraries it loads are;
/// `None` for a file that is no dynamic ELF object.
fn read_node(path: &Path, found_at: &Path, search: &SearchPaths) -> Result<ReadFile, Error> {
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
    for resolved in resolve_needed(found_at, &info, search) {
        let found = resolved
            .path
            .and_then(|at| Some((std::fs::canonicalize(&at).ok()?, at)));
        match found {
            Some((found, at)) => edges.push((resolved.name, found, false, at)),
            None if !resolved.driver => unresolved.push(resolved.name),
            None => {}
        }
    }
    let names = load_names(bytes);
    let loads = extra_loads(found_at, &info, &names);
    for resolved in resolve_loads(found_at, &info, &loads, search) {
        if let Some(at) = resolved.path
            && let Ok(found) = std::fs::canonicalize(&at)
            && found != path
        {
            edges.push((shown(&resolved.name), found, true, at));
        }
    }
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

/// Which distribution owns each file of the Python trees under `roots`: every
/// `*.dist-info/RECORD` names its files relative to the folder that holds it.
pub fn owners(roots: &[PathBuf]) -> Result<HashMap<PathBuf, String>, Error> {
    let mut owners = HashMap::new();
    for root in roots.iter().filter(|root| root.is_dir()) {
        let tree = cudapkgs_tree::dir::Dir::open(root).map_err(|e| Error::io(root, e))?;
        for relative in tree.files().map_err(|e| Error::io(root, e))? {
            let Some(dist_info) = relative.parent().filter(|parent| {
                relative.file_name().is_some_and(|n| n == "RECORD")
                    && parent.extension().is_some_and(|e| e == "dist-info")
            }) else {
                continue;
            };
            let folder = root.join(dist_info.parent().unwrap_or(Path::new("")));
            let name = dist_info
                .file_stem()
                .map(|stem| stem.to_string_lossy())
                .unwrap_or_default();
            let distribution = name.split('-').next().unwrap_or_default().to_owned();
            let record = root.join(&relative);
            let text = std::fs::read_to_string(&record).map_err(|e| Error::io(&record, e))?;
            for line in text.lines() {
                // `path,hash,size`; a path with a comma is quoted.
                let file = match line.strip_prefix('"') {
                    Some(quoted) => quoted.split('"').next().unwrap_or_default(),
                    None => line.split(',').next().unwrap_or_default(),
                };
                if file.is_empty() {
                    continue;
                }
                if let Ok(path) = std::fs::canonicalize(folder.join(file)) {
                    owners.insert(path, distribution.clone());
                }
            }
        }
    }
    Ok(owners)
}

/// Where run-time closures of `roots` start: a file given, itself; a folder, its
/// programs and Python modules (ELF files not named `lib…`), or all its ELF files when
/// it holds only libraries.
pub fn starts(graph: &FileGraph, roots: &[PathBuf]) -> Vec<usize> {
    let mut starts = Vec::new();
    for root in roots {
        let Ok(root) = std::fs::canonicalize(root) else {
            continue;
        };
        if !root.is_dir() {
            starts.extend(graph.index.get(&root).copied());
            continue;
        }
        let inside: Vec<usize> = (0..graph.nodes.len())
            .filter(|&node| graph.nodes[node].path.starts_with(&root))
            .collect();
        let programs: Vec<usize> = inside
            .iter()
            .copied()
            .filter(|&node| {
                graph.nodes[node]
                    .path
                    .file_name()
                    .is_some_and(|name| !name.to_string_lossy().starts_with("lib"))
            })
            .collect();
        starts.extend(if programs.is_empty() {
            inside
        } else {
            programs
        });
    }
    starts
}

/// Whether a command-line argument names a file or folder of this machine rather than a
/// store path or a root: it has a `/` (root names never do) and is not named like a
/// store path.
pub fn names_a_file(argument: &str) -> bool {
    let base = Path::new(argument)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    argument.contains('/') && !cudapkgs_store::path::is_store_path_name(&base)
}

/// The run-time closure of some folders and files, as people read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeClosure {
    /// Every file of the closure (biggest first): its path, bytes, and the Python
    /// distribution that owns it.
    pub files: Vec<(PathBuf, u64, Option<String>)>,
    /// Bytes and files of the closure per distribution (biggest first); files of no
    /// distribution count under `None`.
    pub by_distribution: Vec<(Option<String>, u64, usize)>,
    /// Libraries found at more than one place (by the name before `.so`), with each
    /// place: the same library twice, often in two versions.
    pub duplicates: Vec<(String, Vec<PathBuf>)>,
    /// ELF files under the folders given that no run-time path from their programs and
    /// Python modules reaches.
    pub unreached: Vec<PathBuf>,
}

/// The run-time closure of `roots` (see `starts`), read `threads` files at a time.
pub fn tree_closure(
    roots: &[PathBuf],
    system: &[PathBuf],
    threads: usize,
) -> Result<TreeClosure, Error> {
    let graph = FileGraph::build(roots, system, threads)?;
    let owners = owners(roots)?;
    let starts = starts(&graph, roots);
    let reached = graph.closure(&starts);
    let mut report = TreeClosure::default();
    for &node in &reached {
        let file = &graph.nodes[node];
        let owner = owners.get(&file.path).cloned();
        report.files.push((file.path.clone(), file.bytes, owner));
    }
    report
        .files
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut by_distribution: HashMap<Option<String>, (u64, usize)> = HashMap::new();
    let mut by_library: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for (path, bytes, owner) in &report.files {
        let entry = by_distribution.entry(owner.clone()).or_default();
        entry.0 += bytes;
        entry.1 += 1;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(library) = name.split(".so").next().filter(|_| name.contains(".so")) {
            by_library
                .entry(library.to_owned())
                .or_default()
                .push(path.clone());
        }
    }
    report.by_distribution = by_distribution
        .into_iter()
        .map(|(owner, (bytes, count))| (owner, bytes, count))
        .collect();
    report
        .by_distribution
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
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
    for root in roots
        .iter()
        .filter_map(|root| std::fs::canonicalize(root).ok())
    {
        if !root.is_dir() {
            continue;
        }
        report.unreached.extend(
            (0..graph.nodes.len())
                .filter(|&node| !in_closure[node] && graph.nodes[node].path.starts_with(&root))
                .map(|node| graph.nodes[node].path.clone()),
        );
    }
    report.unreached.sort();
    Ok(report)
}
