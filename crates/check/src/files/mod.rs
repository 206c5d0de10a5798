//! The run-time closure of plain folders and files (a venv, a conda environment, a
//! container's root): the ELF graph (`graph`), which package owns each file (`owners`),
//! and the closure as people read it (`report`).

mod canonical;
pub mod graph;
pub mod owners;
pub mod report;
pub mod walk;

use std::path::Path;

pub use graph::{FileEdge, FileGraph, FileNode};
pub use owners::{Owners, owners};
pub use report::{ClosureFile, Distribution, TreeClosure, tree_closure};
pub use walk::Input;

/// Where run-time closures of `inputs` start: a file given, itself; a folder, its
/// programs and Python modules (ELF files not named `lib…`), or all its ELF files when
/// it holds only libraries.
pub fn starts(graph: &FileGraph, inputs: &[Input]) -> Vec<usize> {
    let mut starts = Vec::new();
    for input in inputs {
        if input.files.is_none() {
            starts.extend(graph.node_at(&input.root));
            continue;
        }
        let inside: Vec<usize> = (0..graph.nodes.len())
            .filter(|&node| graph.nodes[node].path.starts_with(&input.root))
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

/// Whether `folder` looks like the root of a file system (an unpacked container image):
/// it holds `etc/` and `usr/lib/` as folders of its own. A venv, a conda environment or
/// a store path never holds both.
pub fn looks_like_root(folder: &Path) -> bool {
    let own_folder = |name: &str| {
        folder
            .join(name)
            .symlink_metadata()
            .is_ok_and(|metadata| metadata.is_dir())
    };
    own_folder("etc") && own_folder("usr") && own_folder("usr/lib")
}

/// Whether a command-line argument names a file or folder of this machine rather than a
/// store path or a root: it has a `/` (root names never do) and is not named like a
/// store path.
pub fn names_a_file(argument: &str) -> bool {
    let base = Path::new(argument)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    argument.contains('/') && !cudapkgs_nix::store_path::is_store_path_name(&base)
}
