//! Locks: the collector's lock (`gc.lock` in the state folder), each writing open's
//! owner lock, and a lock per store path (`<path>.lock` beside it), all `flock`s taken
//! as `cudapkgs_nix::lock` takes them: a path's lock file exists only while someone
//! holds or waits for it.

use std::fs::File;
use std::path::{Path, PathBuf};

use cudapkgs_nix::lock::{LockFile, lock};

use super::Store;
use super::names::unique;
use crate::error::Error;

/// A held owner lock; the last of the store and its work folders to go removes it.
#[derive(Debug)]
pub(super) struct OwnerLock {
    path: PathBuf,
    _file: File,
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Store {
    /// Names this writing open and holds its owner lock, before any temporary exists.
    pub(super) fn take_owner_lock(&mut self) -> Result<(), Error> {
        let name = format!("{}.{}", std::process::id(), unique().replace('-', "."));
        let path = self.owner_lock(&name);
        let file = lock_file(&path, true, true)?.expect("a waiting lock is always taken");
        self.owner = Some((name, std::sync::Arc::new(OwnerLock { path, _file: file })));
        Ok(())
    }

    /// Holds the garbage collector's lock until dropped: shared by adds (which may create
    /// paths no root holds yet), exclusive for a collection and a repair.
    pub(crate) fn gc_lock(&self, exclusive: bool) -> Result<File, Error> {
        let lock = lock_file(&self.state_dir.join("gc.lock"), exclusive, true)?;
        Ok(lock.expect("a waiting lock is always taken"))
    }
}

/// A held lock of one store path; dropping it removes `<path>.lock`, then unlocks.
#[derive(Debug)]
pub(crate) struct PathLock(LockFile);

impl PathLock {
    /// Removes the lock file and unlocks, saying why the file could not be removed.
    pub(crate) fn release(self) -> Result<(), Error> {
        let path = self.0.path().to_owned();
        self.0.release().map_err(|e| Error::io(&path, e))
    }
}

/// The lock file of the store path `path`: `<path>.lock`.
pub(super) fn lock_file_of(path: &Path) -> PathBuf {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    PathBuf::from(lock_path)
}

/// Holds an exclusive lock on `<path>.lock` until dropped, so that adds and removals of
/// one path by several processes take turns; without `wait`, `None` when it is held.
pub(crate) fn lock_path(path: &Path, wait: bool) -> Result<Option<PathLock>, Error> {
    let lock_path = lock_file_of(path);
    Ok(LockFile::take(&lock_path, wait)
        .map_err(|e| Error::io(&lock_path, e))?
        .map(PathLock))
}

/// Whether a store folder entry is a path's lock file: an empty file `<path>.lock`.
pub(crate) fn is_lock_file(entry: &std::fs::DirEntry) -> bool {
    Path::new(&entry.file_name())
        .extension()
        .is_some_and(|extension| extension == "lock")
        && entry.metadata().is_ok_and(|m| m.is_file() && m.len() == 0)
}

/// Holds a `flock` on `path` (created if needed) until the file is dropped; without
/// `wait`, `None` when another process holds it.
pub(super) fn lock_file(path: &Path, exclusive: bool, wait: bool) -> Result<Option<File>, Error> {
    lock(path, exclusive, wait).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paths_lock_is_the_file_beside_it_while_held() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("00000000000000000000000000000000-held");
        let held = lock_path(&path, true).expect("lock").expect("taken");
        assert!(
            dir.path()
                .join("00000000000000000000000000000000-held.lock")
                .is_file()
        );
        assert!(lock_path(&path, false).expect("try").is_none(), "held");
        held.release().expect("release");
        assert!(lock_file_of(&path).symlink_metadata().is_err());
    }
}
