//! Where the bytes of a closure go: store paths (or, for folders, the distributions that
//! own their files), their files, and the device code of each file per GPU architecture,
//! as a tree of sizes (`gather` for store paths, `gather_tree` for folders), laid out as
//! a squarified treemap (`layout`) and drawn as one self-contained HTML page (`html`).

mod html;
pub mod layout;

use std::path::{Path, PathBuf};

use cudapkgs_fatbin::{ArchTotal, ArchTotals};
use cudapkgs_store::store::{PathInfo, Store};
use cudapkgs_tree::dir::{Dir, Kind};
use cudapkgs_tree::{MAGIC_LEN, Mapped};

use crate::Error;
use crate::device::{DeviceCode, label};
use crate::files::TreeClosure;

pub use html::render_html;

/// Files of a store path (or distribution) drawn one by one; the smaller rest are drawn as
/// one shape, so a path of headers does not make a page of tens of thousands of slivers.
pub const MAX_FILES_PER_PATH: usize = 400;

/// A closure's sizes, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Treemap {
    /// The store paths (or folders and files) whose closure this is.
    pub roots: Vec<String>,
    /// One node per store path, in the order given, or per distribution.
    pub groups: Vec<Node>,
    /// Regular files in the closure.
    pub files: usize,
    /// Device code across the closure, per architecture and kind, biggest first.
    pub device_code: Vec<ArchTotal>,
}

impl Treemap {
    /// The closure's bytes: every store path's NAR size (or its files' bytes, for a path
    /// whose NAR size the database left empty), or every file's.
    pub fn total_bytes(&self) -> u64 {
        self.groups.iter().map(|group| group.bytes).sum()
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
    /// The store path, the distribution, the file (relative to its store path or the
    /// folder given), or the architecture.
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
    /// The files of a folder's closure that one package owns (or no package).
    Distribution,
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
        groups: Vec::with_capacity(closure.len()),
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
            let device_code = device_code(&opened).map_err(|e| Error::io(&full, e))?;
            for total in &device_code.by_arch {
                closure_device_code.merge(total);
            }
            let name = if file.as_os_str().is_empty() {
                store_name(&info.path).to_owned()
            } else {
                file.to_string_lossy().into_owned()
            };
            files.push(file_node(name, *bytes, device_code));
        }
        treemap.files += files.len();
        treemap.groups.push(Node::over(
            info.path.clone(),
            NodeKind::StorePath,
            info.nar_size,
            String::new(),
            biggest_files(files),
            "NAR framing, folders and links",
        ));
    }
    treemap.device_code = closure_device_code.biggest_first();
    Ok(treemap)
}

/// The treemap of a folder's closure: each distribution (and the files no package owns),
/// its files named as in the folder given, each file's device code. Nothing is read:
/// the closure holds it all.
pub fn gather_tree(closure: &TreeClosure) -> Treemap {
    let mut treemap = Treemap {
        roots: closure
            .roots
            .iter()
            .map(|root| root.display().to_string())
            .collect(),
        groups: Vec::with_capacity(closure.by_distribution.len()),
        files: closure.files.len(),
        device_code: closure.device_code.clone(),
    };
    for distribution in &closure.by_distribution {
        let files: Vec<Node> = closure
            .files
            .iter()
            .filter(|file| file.distribution == distribution.name)
            .map(|file| {
                let name = closure.shown(&file.path).display().to_string();
                file_node(name, file.bytes, file.device_code.clone())
            })
            .collect();
        let count = files.len();
        treemap.groups.push(Node::over(
            distribution
                .name
                .clone()
                .unwrap_or_else(|| "(no distribution)".to_owned()),
            NodeKind::Distribution,
            distribution.bytes,
            format!("{count} {}", if count == 1 { "file" } else { "files" }),
            biggest_files(files),
            "other files",
        ));
    }
    treemap
}

/// Files biggest first, the smallest beyond `MAX_FILES_PER_PATH` as one shape.
fn biggest_files(mut files: Vec<Node>) -> Vec<Node> {
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
    files
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

/// The device code of an open file. Only files of a format that holds device code are
/// mapped, and only their headers are read.
fn device_code(file: &std::fs::File) -> std::io::Result<DeviceCode> {
    let mut magic = [0; MAGIC_LEN];
    let read = read_prefix(file, &mut magic)?;
    if !cudapkgs_fatbin::holds_device_code(&magic[..read]) {
        return Ok(DeviceCode::default());
    }
    let mapped = Mapped::open(file)?;
    DeviceCode::read(mapped.bytes(), file)
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

fn file_node(name: String, bytes: u64, device_code: DeviceCode) -> Node {
    let architectures = device_code
        .by_arch
        .into_iter()
        .map(|total| Node {
            name: label(&total),
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
