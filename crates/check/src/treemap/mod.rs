//! Where the bytes of a closure go: store paths, their files, and the device code of each
//! file per GPU architecture, as a tree of sizes (`gather`), laid out as a squarified
//! treemap (`layout`) and drawn as one self-contained HTML page (`html`).

mod html;
pub mod layout;

use std::path::{Path, PathBuf};

use cudapkgs_fatbin::{ArchTotal, ArchTotals, EntryKind, FileReader, ScanOptions, scan_with};
use cudapkgs_store::store::{PathInfo, Store};
use cudapkgs_tree::dir::{Dir, Kind};
use cudapkgs_tree::{MAGIC_LEN, Mapped};

use crate::Error;

pub use html::render_html;

/// Files of a store path drawn one by one; the smaller rest are drawn as one shape, so a
/// path of headers does not make a page of tens of thousands of slivers.
pub const MAX_FILES_PER_PATH: usize = 400;

/// A closure's sizes, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Treemap {
    /// The store paths whose closure this is.
    pub roots: Vec<String>,
    /// One node per store path, in the order given.
    pub paths: Vec<Node>,
    /// Regular files in the closure.
    pub files: usize,
    /// Device code across the closure, per architecture and kind, biggest first.
    pub device_code: Vec<ArchTotal>,
}

impl Treemap {
    /// The closure's bytes: every store path's NAR size (or its files' bytes, for a path
    /// whose NAR size the database left empty).
    pub fn total_bytes(&self) -> u64 {
        self.paths.iter().map(|path| path.bytes).sum()
    }

    pub fn device_code_bytes(&self) -> u64 {
        self.device_code
            .iter()
            .map(|total| total.stored_bytes)
            .sum()
    }
}

/// One shape of the map. A node with children has exactly their bytes: what its own
/// size holds beyond them is a child of kind `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The store path, the file relative to its store path, or the architecture.
    pub name: String,
    pub kind: NodeKind,
    pub bytes: u64,
    /// What people should know beyond name and size (entries, an unreadable fatbin).
    pub detail: String,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    StorePath,
    File,
    /// One architecture's device code in a file (`sm_86`, `compute_90`).
    DeviceCode,
    /// The part of a path or file that none of its other children is.
    Other,
}

impl Node {
    /// A node of `bytes` over `children`; what `bytes` holds beyond them becomes an
    /// `Other` child described by `rest`, and children that hold more raise `bytes`.
    fn over(
        name: String,
        kind: NodeKind,
        bytes: u64,
        detail: String,
        mut children: Vec<Node>,
        rest: &str,
    ) -> Node {
        let covered: u64 = children.iter().map(|child| child.bytes).sum();
        if !children.is_empty() && bytes > covered {
            children.push(Node::leaf(
                rest.to_owned(),
                NodeKind::Other,
                bytes - covered,
            ));
        }
        Node {
            name,
            kind,
            bytes: bytes.max(covered),
            detail,
            children,
        }
    }

    fn leaf(name: String, kind: NodeKind, bytes: u64) -> Node {
        Node {
            name,
            kind,
            bytes,
            detail: String::new(),
            children: Vec::new(),
        }
    }
}

/// Reads the files of every path of `closure` (as `Store::closure` gives it) and the
/// device code of those that hold some. Only headers of device code are read.
pub fn gather(store: &Store, roots: &[String], closure: &[PathInfo]) -> Result<Treemap, Error> {
    let mut treemap = Treemap {
        roots: roots.to_vec(),
        paths: Vec::with_capacity(closure.len()),
        files: 0,
        device_code: Vec::new(),
    };
    let mut closure_device_code = ArchTotals::default();
    for info in closure {
        let physical = store.physical(&info.path);
        let found = PathFiles::read(&physical)?;
        let mut files = Vec::with_capacity(found.files.len());
        for (file, bytes) in &found.files {
            let full = physical.join(file);
            let opened = found.open(file).map_err(|e| Error::io(&full, e))?;
            let device_code =
                device_code(&opened, &mut closure_device_code).map_err(|e| Error::io(&full, e))?;
            files.push(file_node(file, &info.path, *bytes, device_code));
        }
        treemap.files += files.len();
        files.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
        if files.len() > MAX_FILES_PER_PATH {
            let smaller = files.split_off(MAX_FILES_PER_PATH - 1);
            let bytes = smaller.iter().map(|file| file.bytes).sum();
            files.push(Node::leaf(
                format!("{} smaller files", smaller.len()),
                NodeKind::Other,
                bytes,
            ));
        }
        treemap.paths.push(Node::over(
            info.path.clone(),
            NodeKind::StorePath,
            info.nar_size,
            String::new(),
            files,
            "NAR framing, folders and links",
        ));
    }
    treemap.device_code = closure_device_code.biggest_first();
    Ok(treemap)
}

/// The regular files of a store path.
struct PathFiles {
    /// The path's tree; `None` for a path that is one file (or a link).
    tree: Option<Dir>,
    physical: PathBuf,
    /// Relative to the path (the empty path for a path that is one file), with sizes.
    files: Vec<(PathBuf, u64)>,
}

impl PathFiles {
    /// Lists the files below `physical`, following no link.
    fn read(physical: &Path) -> Result<PathFiles, Error> {
        let mut found = PathFiles {
            tree: None,
            physical: physical.to_owned(),
            files: Vec::new(),
        };
        let metadata = physical
            .symlink_metadata()
            .map_err(|e| Error::io(physical, e))?;
        if metadata.is_file() {
            found.files.push((PathBuf::new(), metadata.len()));
        }
        if !metadata.is_dir() {
            return Ok(found);
        }
        let tree = Dir::open(physical).map_err(|e| Error::io(physical, e))?;
        for file in tree.files().map_err(|e| Error::io(physical, e))? {
            let status = tree
                .status(&file)
                .map_err(|e| Error::io(&physical.join(&file), e))?;
            if let Some(status) = status.filter(|status| status.kind == Kind::File) {
                found.files.push((file, status.size));
            }
        }
        found.tree = Some(tree);
        Ok(found)
    }

    fn open(&self, file: &Path) -> std::io::Result<std::fs::File> {
        match &self.tree {
            Some(tree) => tree.open_file(file),
            None => cudapkgs_tree::dir::open_named_file(&self.physical),
        }
    }
}

/// What a file holds of device code.
#[derive(Debug, Default)]
struct DeviceCode {
    by_arch: Vec<ArchTotal>,
    /// Why the device code could not be read, when it could not.
    problem: Option<String>,
}

/// The device code of an open file, also added to `closure_totals`. Only files of a
/// format that holds device code are mapped, and only their headers are read.
fn device_code(
    file: &std::fs::File,
    closure_totals: &mut ArchTotals,
) -> std::io::Result<DeviceCode> {
    let mut magic = [0; MAGIC_LEN];
    let read = read_prefix(file, &mut magic)?;
    if !cudapkgs_fatbin::holds_device_code(&magic[..read]) {
        return Ok(DeviceCode::default());
    }
    let mapped = Mapped::open(file)?;
    let reader = FileReader::new(file)?;
    Ok(
        match scan_with(mapped.bytes(), &reader, ScanOptions::default()) {
            Ok(scan) => {
                for entry in scan.entries() {
                    closure_totals.add(entry);
                }
                DeviceCode {
                    by_arch: scan.entries().collect::<ArchTotals>().biggest_first(),
                    problem: None,
                }
            }
            // A file whose device code cannot be read is still part of the closure.
            Err(error) => DeviceCode {
                by_arch: Vec::new(),
                problem: Some(format!("its device code could not be read: {error}")),
            },
        },
    )
}

/// Reads up to `buffer.len()` bytes from the start of `file`.
fn read_prefix(file: &std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], filled as u64)? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}

fn file_node(file: &Path, store_path: &str, bytes: u64, device_code: DeviceCode) -> Node {
    let name = if file.as_os_str().is_empty() {
        store_name(store_path).to_owned()
    } else {
        file.to_string_lossy().into_owned()
    };
    let architectures = device_code
        .by_arch
        .into_iter()
        .map(|total| Node {
            name: architecture_label(&total),
            kind: NodeKind::DeviceCode,
            bytes: total.stored_bytes,
            detail: format!(
                "{}, {} {}, {} once decompressed",
                total.kind.name(),
                total.entries,
                if total.entries == 1 {
                    "entry"
                } else {
                    "entries"
                },
                cudapkgs_tree::units::bytes(total.content_bytes)
            ),
            children: Vec::new(),
        })
        .collect();
    Node::over(
        name,
        NodeKind::File,
        bytes,
        device_code.problem.unwrap_or_default(),
        architectures,
        "host code and data",
    )
}

/// `sm_86`; kinds other than SASS and PTX (whose architectures already tell them apart)
/// are named: `sm_90 (lto-ir)`.
fn architecture_label(total: &ArchTotal) -> String {
    match total.kind {
        EntryKind::Sass | EntryKind::Ptx => total.arch.clone(),
        kind => format!("{} ({})", total.arch, kind.name()),
    }
}

/// A store path's name without its folder and hash: `cuda_cudart-13.0.96-lib`.
pub fn store_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name,
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_node_holds_beyond_its_children_is_a_child_of_its_own() {
        let files = vec![
            Node::leaf("lib/a.so".into(), NodeKind::File, 700),
            Node::leaf("lib/b.so".into(), NodeKind::File, 200),
        ];
        let path = Node::over(
            "/s/p".into(),
            NodeKind::StorePath,
            1000,
            String::new(),
            files,
            "rest",
        );
        assert_eq!(path.bytes, 1000);
        assert_eq!(path.children.len(), 3);
        assert_eq!(path.children[2].kind, NodeKind::Other);
        assert_eq!(path.children[2].bytes, 100);
        // A NAR size the database left empty: the files' bytes count.
        let files = vec![Node::leaf("x".into(), NodeKind::File, 5)];
        let path = Node::over(
            "/s/q".into(),
            NodeKind::StorePath,
            0,
            String::new(),
            files,
            "rest",
        );
        assert_eq!((path.bytes, path.children.len()), (5, 1));
    }

    #[test]
    fn store_names_lose_folder_and_hash() {
        assert_eq!(
            store_name("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-cuda_cudart-13.0-lib"),
            "cuda_cudart-13.0-lib"
        );
        assert_eq!(store_name("/s/short-name"), "short-name");
    }
}
