//! What a writing open finishes for opens that were killed: their temporaries, and the
//! trees of paths their adds or collections left pending.

use std::path::{Path, PathBuf};

use super::names::OWNER_LOCK;
use super::{Store, TEMP_PREFIX, lock_path};
use crate::copy;
use crate::error::Error;

impl Store {
    /// Removes the temporaries of opens that ended without removing them (killed). An
    /// owner is alive while its lock is held: that holds across PID namespaces (two
    /// containers sharing a store), where another process's PID cannot be looked up.
    /// Temporaries from before owner locks are judged by their process ID.
    pub(super) fn remove_temporaries(&self) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let folder = self.physical(self.folder.as_str());
        let mut by_owner = std::collections::BTreeMap::<String, Vec<PathBuf>>::new();
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let entry = entry.map_err(|e| Error::io(&folder, e))?;
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
                continue;
            };
            let owner = rest
                .strip_suffix(OWNER_LOCK)
                .unwrap_or_else(|| rest.split('-').next().unwrap_or_default());
            let temporaries = by_owner.entry(owner.to_owned()).or_default();
            if !rest.ends_with(OWNER_LOCK) {
                temporaries.push(entry.path());
            }
        }
        let mine = self.owner.as_ref().map(|(owner, _)| owner.as_str());
        for (owner, temporaries) in by_owner {
            if Some(owner.as_str()) == mine {
                continue;
            }
            let lock_path = self.owner_lock(&owner);
            // An owner's lock is a plain file: anything else there (a folder, a link)
            // locks nothing and goes, with the temporaries it would have guarded.
            if lock_path
                .symlink_metadata()
                .is_ok_and(|metadata| !metadata.is_file())
            {
                copy::remove_tree(&lock_path)?;
                for temporary in &temporaries {
                    copy::remove_tree(temporary)?;
                }
                continue;
            }
            let lock = match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
                .open(&lock_path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // No lock: an older version's temporary (named by its process ID
                    // alone), or one whose owner's lock another open just removed.
                    let pid = owner.split('.').next().unwrap_or_default();
                    let running = !pid.is_empty() && Path::new("/proc").join(pid).exists();
                    if owner.contains('.') || !running {
                        for temporary in &temporaries {
                            copy::remove_tree(temporary)?;
                        }
                    }
                    continue;
                }
                Err(e) => return Err(Error::io(&lock_path, e)),
            };
            match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Err(rustix::io::Errno::WOULDBLOCK) => continue,
                Err(e) => return Err(Error::io(&lock_path, e.into())),
                Ok(()) => {}
            }
            for temporary in &temporaries {
                copy::remove_tree(temporary)?;
            }
            match std::fs::remove_file(&lock_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&lock_path, e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the trees of pending paths whose add or collection died, and their marks.
    pub(super) fn finish_interrupted(&self) -> Result<(), Error> {
        for path in self.pending()? {
            let Some(physical) = self.entry(&path) else {
                self.unmark_pending(&path)?;
                continue;
            };
            // Held: its add or collection is still at work.
            let Some(_lock) = lock_path(&physical, false)? else {
                continue;
            };
            if self.info(&path)?.is_none() {
                copy::remove_tree(&physical)?;
            }
            self.unmark_pending(&path)?;
        }
        Ok(())
    }
}
