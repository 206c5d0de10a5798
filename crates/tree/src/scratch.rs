//! Private work folders beside a result that appears whole by rename, and the removal of
//! those a killed process left behind.
//!
//! A work folder is named `<prefix><pid>-<unique>` and locked (`flock`) by its process
//! while it lives: the next run in the same place removes the ones whose lock is free and
//! whose process is gone, so an interrupted command leaves nothing for long. The lock is
//! what counts across PID namespaces (containers sharing a folder), where another
//! process's ID cannot be looked up; the ID keeps older versions' unlocked folders.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dir::{Dir, Kind};

/// A work folder, removed (with whatever it holds) when dropped.
#[derive(Debug)]
pub struct Scratch {
    parent: Dir,
    name: String,
    /// The folder opened and locked: it is in use.
    _lock: std::fs::File,
}

impl Scratch {
    /// A new private folder (mode 0700) named `<prefix><pid>-<unique>` in `parent`.
    pub fn create(parent: &Path, prefix: &str) -> io::Result<Scratch> {
        Scratch::create_with_mode(parent, prefix, 0o700)
    }

    /// The same with `mode` (less the process's umask), for a folder that becomes a
    /// result by rename and should look like one a user made.
    pub fn create_with_mode(parent: &Path, prefix: &str, mode: u32) -> io::Result<Scratch> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let parent = Dir::open(parent)?;
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "{prefix}{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            match parent.create_dir(Path::new(&name), mode) {
                Ok(()) => {
                    let Some(lock) = lock_folder(&parent.path().join(&name))? else {
                        return Err(io::Error::other("a new work folder is locked already"));
                    };
                    return Ok(Scratch {
                        parent,
                        name,
                        _lock: lock,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The folder's path.
    pub fn path(&self) -> PathBuf {
        self.parent.path().join(&self.name)
    }

    /// The folder, opened.
    pub fn dir(&self) -> io::Result<Dir> {
        self.parent.open_dir(Path::new(&self.name))
    }

    /// The folder it was made in, opened.
    pub fn parent(&self) -> &Dir {
        &self.parent
    }

    /// The folder's name in its parent.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.parent.remove_all(Path::new(&self.name));
    }
}

/// The folders `create_all` made on the way to a folder; unless kept, those still empty
/// are removed again when dropped (a refused command leaves no folders behind).
#[derive(Debug)]
pub struct MadeFolders {
    made: Vec<PathBuf>,
}

impl MadeFolders {
    /// Creates `path` and the folders above it that are missing, remembering which.
    pub fn create_all(path: &Path) -> io::Result<MadeFolders> {
        let mut missing = Vec::new();
        let mut at = Some(path);
        while let Some(folder) = at.filter(|f| !f.as_os_str().is_empty()) {
            if folder.symlink_metadata().is_ok() {
                break;
            }
            missing.push(folder.to_owned());
            at = folder.parent();
        }
        let mut made = MadeFolders { made: Vec::new() };
        for folder in missing.into_iter().rev() {
            match std::fs::create_dir(&folder) {
                Ok(()) => made.made.push(folder),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(made)
    }

    /// Keeps the folders: the command succeeded.
    pub fn keep(mut self) {
        self.made.clear();
    }
}

impl Drop for MadeFolders {
    fn drop(&mut self) {
        for folder in self.made.iter().rev() {
            // Only when empty: anything put there since is not ours to remove.
            if std::fs::remove_dir(folder).is_err() {
                break;
            }
        }
    }
}

/// Removes the work folders named `<prefix><pid>-…` in `parent` whose process is no longer
/// running; returns their names. Folders of running processes (this one included) stay.
pub fn remove_abandoned(parent: &Path, prefix: &str) -> io::Result<Vec<String>> {
    let dir = match Dir::open(parent) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for (name, kind) in dir.entries(Path::new(""))? {
        let Some(name) = name.to_str() else { continue };
        let Some(owner) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if kind != Kind::Folder || is_running(owner) {
            continue;
        }
        // Held: its process lives in another PID namespace.
        let Some(_held) = lock_folder(&parent.join(name))? else {
            continue;
        };
        dir.remove_all(Path::new(name))?;
        removed.push(name.to_owned());
    }
    Ok(removed)
}

/// Locks the folder `path` (not following a link), or `None` when another holds it.
fn lock_folder(path: &Path) -> io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(folder_only_flags())
        .open(path)?;
    match rustix::fs::flock(
        &folder,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    ) {
        Ok(()) => Ok(Some(folder)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `O_DIRECTORY | O_NOFOLLOW`, as the open flags `std` passes through.
fn folder_only_flags() -> i32 {
    (rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW)
        .bits()
        .cast_signed()
}

/// Whether a process with this id exists (a reused id keeps a dead one's folder until
/// that process ends too: the safe side).
fn is_running(pid: u32) -> bool {
    pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_folders_go_when_dropped_and_abandoned_ones_on_the_next_run() {
        let temp = tempfile::tempdir().expect("temp");
        let scratch = Scratch::create(temp.path(), ".work-").expect("create");
        std::fs::write(scratch.path().join("f"), b"x").expect("write");
        // A folder of a process that no longer exists (pid beyond the kernel's maximum),
        // and one of this process: only the first is abandoned.
        std::fs::create_dir_all(temp.path().join(".work-4294967295-1-1/sub")).expect("mkdir");
        std::fs::create_dir(temp.path().join(".other-4294967295-1-1")).expect("mkdir");
        let removed = remove_abandoned(temp.path(), ".work-").expect("clean");
        assert_eq!(removed, [".work-4294967295-1-1"]);
        assert!(scratch.path().join("f").is_file(), "a live folder stays");
        assert!(temp.path().join(".other-4294967295-1-1").is_dir());
        let path = scratch.path();
        drop(scratch);
        assert!(!path.exists());
    }

    #[test]
    fn folders_made_on_the_way_go_unless_kept() {
        let temp = tempfile::tempdir().expect("temp");
        let deep = temp.path().join("a/b/c");
        drop(MadeFolders::create_all(&deep).expect("create"));
        assert!(!temp.path().join("a").exists());
        // One that holds something since stays, with the folders above it.
        let made = MadeFolders::create_all(&deep).expect("create");
        std::fs::write(temp.path().join("a/b/other"), "x").expect("write");
        drop(made);
        assert!(!deep.exists() && temp.path().join("a/b/other").is_file());
        MadeFolders::create_all(&deep).expect("create").keep();
        assert!(deep.is_dir());
    }

    #[test]
    fn a_locked_folder_of_a_process_out_of_sight_stays() {
        let temp = tempfile::tempdir().expect("temp");
        // A process of another PID namespace: its ID is not visible here, its lock is.
        let theirs = temp.path().join(".work-4294967295-2-2");
        std::fs::create_dir(&theirs).expect("mkdir");
        let held = lock_folder(&theirs).expect("lock").expect("taken");
        assert_eq!(
            remove_abandoned(temp.path(), ".work-").expect("clean"),
            Vec::<String>::new()
        );
        assert!(theirs.is_dir());
        drop(held);
        assert_eq!(
            remove_abandoned(temp.path(), ".work-").expect("clean"),
            [".work-4294967295-2-2"]
        );
    }
}
