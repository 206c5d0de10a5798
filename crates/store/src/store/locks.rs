//! Locks: the collector's lock (`gc.lock` in the state folder), each writing open's
//! owner lock, and a lock per store path (`<path>.lock` beside it), all `flock`s.
//!
//! A path's lock file exists only while someone holds or waits for it: whoever holds
//! it removes it before letting go (unlinking while still locked), and whoever takes it
//! checks, once locked, that the file it locked is still the one at `<path>.lock`, and
//! otherwise tries again with the file that is there now. A file that was removed
//! locks nothing, so two processes never both hold a path's lock: the one holding
//! the removed file sees that it is no longer at the path and starts over.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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
pub(crate) struct PathLock {
    path: PathBuf,
    /// Declared after `path` and closed after `drop` removed the file: the file is
    /// removed while it is still locked.
    _file: File,
    /// The file was removed already (`release`): removing again could remove a file
    /// another taker created and holds since.
    removed: bool,
}

impl PathLock {
    /// Removes the lock file and unlocks, saying why the file could not be removed.
    pub(crate) fn release(mut self) -> Result<(), Error> {
        self.removed = true;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.path, e)),
            _ => Ok(()),
        }
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        // Only a holder removes the file, once, and the file at the path is the one it
        // holds (see `lock_file`): no other holder's file is ever removed.
        if !self.removed {
            let _ = std::fs::remove_file(&self.path);
        }
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
    Ok(lock_file(&lock_path, true, wait)?.map(|file| PathLock {
        path: lock_path,
        _file: file,
        removed: false,
    }))
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
    use rustix::fs::FlockOperation;
    let operation = match (exclusive, wait) {
        (true, true) => FlockOperation::LockExclusive,
        (true, false) => FlockOperation::NonBlockingLockExclusive,
        (false, true) => FlockOperation::LockShared,
        (false, false) => FlockOperation::NonBlockingLockShared,
    };
    loop {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        match rustix::fs::flock(&file, operation) {
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(Error::io(path, e.into())),
            Ok(()) => {}
        }
        // A lock file removed while this process waited for it (its holder removes it
        // on release, a collection removes a dead path's) locks nothing: lock the file
        // that is there now.
        let held = file.metadata().map_err(|e| Error::io(path, e))?;
        if path
            .symlink_metadata()
            .is_ok_and(|now| now.ino() == held.ino() && now.dev() == held.dev())
        {
            return Ok(Some(file));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn contending_takers_hold_a_path_one_at_a_time_and_leave_no_lock_file() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir
            .path()
            .join("00000000000000000000000000000000-contended");
        let inside = AtomicUsize::new(0);
        let entered = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..200 {
                        let lock = lock_path(&path, true).expect("lock").expect("taken");
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        entered.fetch_add(1, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(lock);
                    }
                });
            }
        });
        assert_eq!(entered.load(Ordering::SeqCst), 800);
        assert!(
            lock_file_of(&path).symlink_metadata().is_err(),
            "the last holder removed the lock file"
        );
    }

    #[test]
    fn a_held_path_lock_is_refused_without_waiting_and_removed_on_release() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("00000000000000000000000000000000-held");
        let held = lock_path(&path, true).expect("lock").expect("taken");
        assert!(lock_file_of(&path).is_file());
        assert!(lock_path(&path, false).expect("try").is_none(), "held");
        drop(held);
        assert!(lock_file_of(&path).symlink_metadata().is_err());
        let again = lock_path(&path, false).expect("try").expect("free");
        again.release().expect("release");
        assert!(lock_file_of(&path).symlink_metadata().is_err());
    }
}
