//! The folders and files a run-time closure starts from, each folder walked once: its
//! files feed the graph (ELF candidates) and the owners (package records) alike.

use std::path::{Component, Path, PathBuf};

use cudapkgs_tree::dir::{Dir, Kind, Status};

use crate::Error;

/// A folder or file given.
#[derive(Debug, Clone)]
pub struct Input {
    /// Links resolved.
    pub root: PathBuf,
    /// As given, made absolute with its links kept: where the loader finds a file named,
    /// so its `$ORIGIN`.
    pub given: PathBuf,
    /// A folder's regular files and links, relative to it, with their status (no link
    /// followed); `None` for a file.
    pub files: Option<Vec<(PathBuf, Status)>>,
}

impl Input {
    /// Walks each of `roots` (folders or files).
    pub fn read_all(roots: &[PathBuf]) -> Result<Vec<Input>, Error> {
        roots.iter().map(|root| Input::read(root)).collect()
    }

    pub fn read(root: &Path) -> Result<Input, Error> {
        let given = std::path::absolute(root).map_err(|e| Error::io(root, e))?;
        let canonical = std::fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        let files = if canonical.is_dir() {
            let tree = Dir::open(&canonical).map_err(|e| Error::io(&canonical, e))?;
            Some(
                tree.files_with_status()
                    .map_err(|e| Error::io(&canonical, e))?,
            )
        } else {
            None
        };
        Ok(Input {
            root: canonical,
            given,
            files,
        })
    }

    /// The regular files of a folder (relative), none for a file.
    pub fn regular_files(&self) -> impl Iterator<Item = (&Path, &Status)> {
        self.files
            .iter()
            .flatten()
            .filter(|(_, status)| status.kind == Kind::File)
            .map(|(path, status)| (path.as_path(), status))
    }
}

/// `path` with `.` and `..` taken away by its text alone: how a package record's names
/// (relative to a folder the walk reached without passing a link) name the files.
pub fn lexical(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other.as_os_str()),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_paths_lose_dots() {
        assert_eq!(
            lexical(Path::new("/v/lib/python3/site-packages/../../../bin/./x")),
            Path::new("/v/bin/x")
        );
    }
}
