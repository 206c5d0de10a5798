//! Why one store path needs another: the shortest chain of references between them, and
//! for every hop the file that holds the reference and where.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::store::Store;
use cudapkgs_nix::store_path::hash_part;

/// One link of a chain: `path` refers to `next` from `file` (relative to `path`; empty
/// when `path` is a single file) at byte `offset` of its contents, name or link target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub path: String,
    pub next: String,
    pub file: PathBuf,
    pub offset: u64,
}

/// The shortest chain from `from` to `to`, or `None` when `to` is not in `from`'s closure.
pub fn why(store: &Store, from: &str, to: &str) -> Result<Option<Vec<Hop>>, Error> {
    let mut came_from: HashMap<String, String> = HashMap::new();
    let mut queue = VecDeque::from([from.to_owned()]);
    came_from.insert(from.to_owned(), String::new());
    while let Some(path) = queue.pop_front() {
        if path == to {
            break;
        }
        let info = store
            .info(&path)?
            .ok_or_else(|| Error::NotValid(path.clone()))?;
        for reference in info.references {
            if !came_from.contains_key(&reference) {
                came_from.insert(reference.clone(), path.clone());
                queue.push_back(reference);
            }
        }
    }
    if !came_from.contains_key(to) {
        return Ok(None);
    }
    let mut pairs = Vec::new();
    let mut current = to.to_owned();
    while current != from {
        let previous = came_from[&current].clone();
        pairs.push((previous.clone(), current));
        current = previous;
    }
    pairs.reverse();
    pairs
        .into_iter()
        .map(|(path, next)| {
            let root = store.physical(&path);
            let hash_part = hash_part(&next).ok_or_else(|| Error::NotValid(next.clone()))?;
            let (file, offset) = locate(&root, &hash_part)?.ok_or_else(|| {
                Error::Database(format!(
                    "{path} is registered as referring to {next}, but no file of it names it; run `cudapkgs store verify`"
                ))
            })?;
            let file = file.strip_prefix(&root).map(Path::to_owned).unwrap_or(file);
            Ok(Hop {
                path,
                next,
                file,
                offset,
            })
        })
        .collect::<Result<Vec<_>, Error>>()
        .map(Some)
}

/// The first file under `root`, in NAR order, whose name, link target or contents hold
/// `needle`, with the byte offset.
fn locate(root: &Path, needle: &[u8]) -> Result<Option<(PathBuf, u64)>, Error> {
    let io = |e| Error::io(root, e);
    let metadata = root.symlink_metadata().map_err(io)?;
    let name = root
        .file_name()
        .map(std::ffi::OsStr::as_encoded_bytes)
        .unwrap_or_default();
    if let Some(offset) = memchr::memmem::find(name, needle) {
        return Ok(Some((root.to_owned(), offset as u64)));
    }
    if metadata.file_type().is_symlink() {
        let target = std::fs::read_link(root).map_err(io)?;
        let found = memchr::memmem::find(target.as_os_str().as_encoded_bytes(), needle);
        return Ok(found.map(|offset| (root.to_owned(), offset as u64)));
    }
    if metadata.is_dir() {
        let mut children: Vec<_> = std::fs::read_dir(root)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(io)?;
        children.sort_by_key(std::fs::DirEntry::file_name);
        for child in children {
            if let Some(found) = locate(&child.path(), needle)? {
                return Ok(Some(found));
            }
        }
        return Ok(None);
    }
    let found = find_in_file(root, needle).map_err(io)?;
    Ok(found.map(|offset| (root.to_owned(), offset)))
}

/// The offset of the first `needle` in the file at `path`, read in 1 MiB pieces (store
/// libraries reach hundreds of MB); each piece is searched with the end of the last.
fn find_in_file(path: &Path, needle: &[u8]) -> std::io::Result<Option<u64>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let keep = needle.len().saturating_sub(1);
    let mut window: Vec<u8> = Vec::with_capacity((1 << 20) + keep);
    // File offset of `window[0]`.
    let mut start = 0u64;
    let mut piece = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut piece)?;
        if n == 0 {
            return Ok(None);
        }
        window.extend_from_slice(&piece[..n]);
        if let Some(offset) = memchr::memmem::find(&window, needle) {
            return Ok(Some(start + offset as u64));
        }
        let drop = window.len().saturating_sub(keep);
        window.drain(..drop);
        start += drop as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::find_in_file;

    #[test]
    fn finds_a_needle_across_pieces() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("big");
        let mut data = vec![b'x'; (1 << 20) + 100];
        let needle = b"6x6xx6w1j6jd5dmp3kb1ihvjxlri9vai";
        // Straddling the first 1 MiB piece.
        let at = (1 << 20) - 10;
        data[at..at + needle.len()].copy_from_slice(needle);
        std::fs::write(&path, &data).expect("write");
        assert_eq!(find_in_file(&path, needle).expect("read"), Some(at as u64));
        std::fs::write(&path, b"short").expect("write");
        assert_eq!(find_in_file(&path, needle).expect("read"), None);
    }
}
