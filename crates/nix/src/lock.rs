//! Lock files in the way Nix's store locks its paths: an `flock` on a file that exists
//! only while someone holds or waits for it. The holder removes the file before letting
//! go (unlinking while still locked), and a taker checks, once locked, that the file it
//! locked is still the one at the path, else it tries again with the file there now. A
//! removed file locks nothing, so two takers never both hold one lock, and no lock file
//! is left behind by a finished holder.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// An `flock` on `path` (created if needed) until the file is dropped: exclusive or
/// shared; without `wait`, `None` when another holder excludes this one.
pub fn lock(path: &Path, exclusive: bool, wait: bool) -> io::Result<Option<File>> {
    use rustix::fs::FlockOperation;
    let operation = match (exclusive, wait) {
        (true, true) => FlockOperation::LockExclusive,
        (true, false) => FlockOperation::NonBlockingLockExclusive,
        (false, true) => FlockOperation::LockShared,
        (false, false) => FlockOperation::NonBlockingLockShared,
    };
    loop {
        // A link at the lock's path is refused, not followed: it would create a file
        // where it points, and never be the file locked (so the check below would loop).
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
            .open(path)?;
        match rustix::fs::flock(&file, operation) {
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e.into()),
            Ok(()) => {}
        }
        let held = file.metadata()?;
        if path
            .symlink_metadata()
            .is_ok_and(|now| now.ino() == held.ino() && now.dev() == held.dev())
        {
            return Ok(Some(file));
        }
    }
}

/// An exclusive lock on a file of its own; dropping it removes the file, then unlocks.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    /// Declared after `path` and closed after `drop` removed the file: the file is
    /// removed while it is still locked.
    _file: File,
    /// The file was removed already (`release`): removing again could remove a file
    /// another taker created and holds since.
    removed: bool,
}

impl LockFile {
    /// Takes the lock of `path`; without `wait`, `None` when another holds it.
    pub fn take(path: &Path, wait: bool) -> io::Result<Option<LockFile>> {
        Ok(lock(path, true, wait)?.map(|file| LockFile {
            path: path.to_owned(),
            _file: file,
            removed: false,
        }))
    }

    /// The file locked.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the lock file and unlocks, saying why the file could not be removed.
    pub fn release(mut self) -> io::Result<()> {
        self.removed = true;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Only a holder removes the file, once, and the file at the path is the one it
        // holds (see `lock`): no other holder's file is ever removed.
        if !self.removed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn contending_takers_hold_a_lock_one_at_a_time_and_leave_no_file() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("contended.lock");
        let inside = AtomicUsize::new(0);
        let entered = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..200 {
                        let lock = LockFile::take(&path, true).expect("lock").expect("taken");
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
            path.symlink_metadata().is_err(),
            "the last holder removed it"
        );
    }

    #[test]
    fn a_link_at_the_locks_path_is_refused_and_creates_nothing_where_it_points() {
        let dir = tempfile::tempdir().expect("temp");
        let target = dir.path().join("elsewhere");
        let path = dir.path().join("planted.lock");
        std::os::unix::fs::symlink(&target, &path).expect("link");
        assert!(LockFile::take(&path, true).is_err());
        assert!(
            target.symlink_metadata().is_err(),
            "nothing made where it points"
        );
        assert!(path.symlink_metadata().expect("still there").is_symlink());
    }

    #[test]
    fn a_held_lock_is_refused_without_waiting_and_removed_on_release() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("held.lock");
        let held = LockFile::take(&path, true).expect("lock").expect("taken");
        assert!(path.is_file());
        assert!(LockFile::take(&path, false).expect("try").is_none(), "held");
        drop(held);
        assert!(path.symlink_metadata().is_err());
        let again = LockFile::take(&path, false).expect("try").expect("free");
        again.release().expect("release");
        assert!(path.symlink_metadata().is_err());
    }
}
