//! Paths with their links resolved, as the graph names files, remembered per folder: the
//! files of a tree load the same few folders' libraries over and over, and resolving
//! each path anew (a `readlink` per component) cost more than reading the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cudapkgs_elf::resolve::real_path_in;

#[derive(Debug, Default)]
pub(crate) struct Canonical {
    /// The file system root links are resolved in (`real_path_in`); `None` for this
    /// machine's.
    root: Option<PathBuf>,
    folders: HashMap<PathBuf, Option<PathBuf>>,
    files: HashMap<PathBuf, Option<PathBuf>>,
}

impl Canonical {
    /// Resolves links inside `root` (a container's), or this machine's.
    pub(crate) fn in_root(root: Option<&Path>) -> Canonical {
        Canonical {
            root: root.map(Path::to_owned),
            ..Canonical::default()
        }
    }

    fn real(&self, path: &Path) -> Option<PathBuf> {
        real_path_in(self.root.as_deref(), path)
    }

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
            return self.real(path);
        };
        let folder = if let Some(known) = self.folders.get(parent) {
            known.clone()
        } else {
            let real = self.real(parent);
            self.folders.insert(parent.to_owned(), real.clone());
            real
        }?;
        let joined = folder.join(name);
        match joined.symlink_metadata() {
            Ok(metadata) if metadata.file_type().is_symlink() => self.real(&joined),
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
