//! Paths with their links resolved, as the graph names files, remembered per folder: the
//! files of a tree load the same few folders' libraries over and over, and resolving
//! each path anew (a `readlink` per component) cost more than reading the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub(crate) struct Canonical {
    folders: HashMap<PathBuf, Option<PathBuf>>,
    files: HashMap<PathBuf, Option<PathBuf>>,
}

impl Canonical {
    /// `path` with every link resolved; `None` when nothing is there.
    pub(crate) fn of(&mut self, path: &Path) -> Option<PathBuf> {
        if let Some(known) = self.files.get(path) {
            return known.clone();
        }
        let found = self.resolve(path);
        self.files.insert(path.to_owned(), found.clone());
        found
    }

    fn resolve(&mut self, path: &Path) -> Option<PathBuf> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return std::fs::canonicalize(path).ok();
        };
        let folder = self
            .folders
            .entry(parent.to_owned())
            .or_insert_with(|| std::fs::canonicalize(parent).ok())
            .clone()?;
        let joined = folder.join(name);
        match joined.symlink_metadata() {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                std::fs::canonicalize(&joined).ok()
            }
            Ok(_) => Some(joined),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_of_folders_and_files_are_resolved() {
        let dir = tempfile::tempdir().expect("temp");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir(root.join("real")).expect("mkdir");
        std::fs::write(root.join("real/libx.so.1"), b"x").expect("write");
        std::os::unix::fs::symlink("real", root.join("link")).expect("link");
        std::os::unix::fs::symlink("libx.so.1", root.join("real/libx.so")).expect("link");
        let mut canonical = Canonical::default();
        let real = root.join("real/libx.so.1");
        assert_eq!(canonical.of(&root.join("link/libx.so")), Some(real.clone()));
        assert_eq!(
            canonical.of(&root.join("link/libx.so.1")),
            Some(real.clone())
        );
        assert_eq!(canonical.of(&real), Some(real));
        assert_eq!(canonical.of(&root.join("link/libnone.so")), None);
    }
}
