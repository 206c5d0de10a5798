//! Checking a store against its database (and repairing what is unregistered), and
//! removing trees that are not, or no longer, valid.

use cudapkgs_nix::store_path::is_store_path_name;
use cudapkgs_nix::{base32, nar};
use cudapkgs_report::{Phase, Reporter, Task};

use super::{Store, is_lock_file, lock_path};
use crate::copy;
use crate::error::Error;

/// What `verify` checked and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Valid paths re-hashed.
    pub checked: usize,
    pub problems: Vec<Problem>,
}

/// What `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Valid, but its tree is gone.
    Missing(String),
    /// Valid, but its tree no longer has the registered NAR hash or size.
    Changed {
        path: String,
        registered: String,
        actual: String,
    },
    /// In the store folder without being valid (an interrupted add, or put there by hand).
    Unregistered { path: String, removed: bool },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(path) => write!(f, "{path}: registered but missing from disk"),
            Problem::Changed {
                path,
                registered,
                actual,
            } => write!(
                f,
                "{path}: changed on disk (registered {registered}, now {actual})"
            ),
            Problem::Unregistered { path, removed } => write!(
                f,
                "{path}: not registered{}",
                if *removed { "; removed" } else { "" }
            ),
        }
    }
}

impl Store {
    /// Entries of the store folder named like store paths that are not valid paths
    /// (logical paths, sorted), lock files aside; without `with_pending`, also the trees that an
    /// add is placing or a collection removing (theirs, not left over).
    pub(crate) fn unregistered(&self, with_pending: bool) -> Result<Vec<String>, Error> {
        let folder = self.physical_folder();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let entry = entry.map_err(|e| Error::io(&folder, e))?;
            // Only what is named like a store path is the store's to judge; anything
            // else (a user's file in a folder mistaken for a store, Nix's `.links`) is
            // never reported or removed.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if is_store_path_name(&name) && !is_lock_file(&entry) {
                names.push(name);
            }
        }
        // Read after the listing: a tree placed since is pending or valid by now (its
        // mark is committed before its rename).
        let (valid, pending) = self.known()?;
        let mut found = Vec::new();
        for name in names {
            let path = format!("{}/{name}", self.folder);
            let known = valid.contains(&path) || (!with_pending && pending.contains(&path));
            // Gone since the listing: a collection removed it (and then its mark).
            if !known && folder.join(&name).symlink_metadata().is_ok() {
                found.push(path);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Removes the tree of a path that is not (or no longer) valid, its pending mark and
    /// its lock file, holding its lock.
    pub(crate) fn remove_unregistered(&self, path: &str) -> Result<(), Error> {
        let physical = self
            .entry(path)
            .ok_or_else(|| Error::Database(format!("{path} is not in the store folder")))?;
        let lock = lock_path(&physical, true)?;
        copy::remove_tree(&physical)?;
        self.unmark_pending(path)?;
        match lock {
            Some(lock) => lock.release(),
            None => Ok(()),
        }
    }

    /// Checks the store against its database: every valid path's tree must be on disk
    /// with its registered NAR hash and size, and everything in the store folder must be
    /// registered (temporaries, pending trees and lock files aside). Paths added or
    /// collected while it runs are not problems. With `repair`, unregistered entries
    /// are removed (under the collector's lock, so that no add is placing one);
    /// damaged valid paths are only reported.
    pub fn verify(&self, repair: bool, reporter: &dyn Reporter) -> Result<Verification, Error> {
        if repair {
            self.require_writable("repairing")?;
        }
        let valid = self.valid_paths()?;
        let mut problems = Vec::new();
        let task = Task::start(
            reporter,
            Phase::Verify,
            self.folder.as_str(),
            Some(valid.len() as u64),
        );
        for path in &valid {
            problems.extend(self.check_valid_path(path)?);
            task.advance(1);
        }
        drop(task);
        if repair {
            let _no_adds = self.gc_lock(true)?;
            self.refuse_unknown_store_paths()?;
            for path in self.unregistered(true)? {
                self.remove_unregistered(&path)?;
                problems.push(Problem::Unregistered {
                    path,
                    removed: true,
                });
            }
        } else {
            problems.extend(self.unregistered(false)?.into_iter().map(|path| {
                Problem::Unregistered {
                    path,
                    removed: false,
                }
            }));
        }
        Ok(Verification {
            checked: valid.len(),
            problems,
        })
    }

    /// What is wrong with the tree of the valid `path`, if anything; nothing for a path
    /// collected meanwhile.
    pub(super) fn check_valid_path(&self, path: &str) -> Result<Option<Problem>, Error> {
        let Some(info) = self.info(path)? else {
            return Ok(None);
        };
        let still_valid = || -> Result<bool, Error> { Ok(self.info(path)?.is_some()) };
        let physical = self.physical(path);
        if physical.symlink_metadata().is_err() {
            return Ok(still_valid()?.then(|| Problem::Missing(path.to_owned())));
        }
        let (hash, size) = match nar::hash(&physical) {
            Ok(hashed) => hashed,
            Err(_) if !still_valid()? => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let actual = format!("sha256:{}", base32::encode(&hash));
        let changed = actual != info.nar_hash || size != info.nar_size;
        Ok((changed && still_valid()?).then(|| Problem::Changed {
            path: path.to_owned(),
            registered: info.nar_hash,
            actual,
        }))
    }
}
