//! Private work folders beside a result that appears whole by rename, and the removal of
//! those a killed process left behind.
//!
//! A work folder is named `<prefix><pid>-<unique>`: the next run in the same place removes
//! the ones whose process is gone, so an interrupted command leaves nothing for long.

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
}

impl Scratch {
    /// A new private folder (mode 0700) named `<prefix><pid>-<unique>` in `parent`.
    pub fn create(parent: &Path, prefix: &str) -> io::Result<Scratch> {
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
            match parent.create_dir(Path::new(&name), 0o700) {
                Ok(()) => return Ok(Scratch { parent, name }),
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
        dir.remove_all(Path::new(name))?;
        removed.push(name.to_owned());
    }
    Ok(removed)
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
}
