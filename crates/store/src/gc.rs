//! Garbage collection: named roots in the database, and removing every path no root
//! needs (with whatever else of the store folder is not registered).
//!
//! A collection holds the collector's lock exclusively, so no add runs meanwhile (adds
//! hold it shared: a path just added and not yet rooted must not go). The dead paths are
//! unregistered in one transaction first (the set is closed under referrers, so no valid
//! path is ever left referring to an invalid one) and only then removed from disk; a
//! collection killed in between leaves unregistered trees, which the next one removes.

use std::collections::HashSet;

use rusqlite::params;

use crate::copy;
use crate::error::Error;
use crate::store::{Store, TEMP_PREFIX, db_error, is_lock_file};

/// A garbage-collector root: `name` keeps `path` and its closure alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub name: String,
    pub path: String,
}

/// What a collection removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    /// Valid paths no root needs, with their NAR sizes, sorted by path.
    pub dead: Vec<(String, u64)>,
    /// Entries of the store folder that were not registered.
    pub unregistered: Vec<String>,
    /// Valid paths kept.
    pub alive: usize,
}

impl Collection {
    /// NAR bytes of the dead paths.
    pub fn dead_bytes(&self) -> u64 {
        self.dead.iter().map(|(_, size)| size).sum()
    }
}

/// Root names are single path components people type: letters, digits and `+-._@=:`.
pub(crate) fn check_root_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._@=:".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(Error::BadRootName(name.to_owned()))
    }
}

impl Store {
    /// Makes `name` a root for the valid `path` (replacing what `name` held before).
    pub fn add_root(&mut self, name: &str, path: &str) -> Result<(), Error> {
        check_root_name(name)?;
        let changed = self
            .db
            .execute(
                "INSERT OR REPLACE INTO Roots (name, path) SELECT ?1, id FROM ValidPaths WHERE path = ?2",
                params![name, path],
            )
            .map_err(|e| db_error(&e))?;
        if changed == 0 {
            return Err(Error::NotValid(path.to_owned()));
        }
        Ok(())
    }

    /// Removes the root `name`; false when there was none.
    pub fn remove_root(&mut self, name: &str) -> Result<bool, Error> {
        let changed = self
            .db
            .execute("DELETE FROM Roots WHERE name = ?1", params![name])
            .map_err(|e| db_error(&e))?;
        Ok(changed > 0)
    }

    /// A store path as given, or the path the root of that name holds (so people can
    /// say `libcublas-lib` for what `cudapkgs build` rooted).
    pub fn resolve(&self, path_or_root: &str) -> Result<String, Error> {
        if path_or_root.starts_with('/') {
            return Ok(path_or_root.to_owned());
        }
        self.roots()?
            .into_iter()
            .find(|root| root.name == path_or_root)
            .map(|root| root.path)
            .ok_or_else(|| Error::NoRoot(path_or_root.to_owned()))
    }

    /// Every root, by name.
    pub fn roots(&self) -> Result<Vec<Root>, Error> {
        let mut statement = self
            .db
            .prepare("SELECT r.name, v.path FROM Roots r JOIN ValidPaths v ON v.id = r.path ORDER BY r.name")
            .map_err(|e| db_error(&e))?;
        statement
            .query_map([], |row| {
                Ok(Root {
                    name: row.get(0)?,
                    path: row.get(1)?,
                })
            })
            .map_err(|e| db_error(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| db_error(&e))
    }

    /// Removes every valid path outside the closure of the roots, and every unregistered
    /// entry of the store folder (temporaries of running adds aside). `dry_run` only
    /// reports.
    pub fn collect_garbage(&mut self, dry_run: bool) -> Result<Collection, Error> {
        let _no_adds = self.gc_lock(!dry_run)?;
        let roots: Vec<String> = self.roots()?.into_iter().map(|root| root.path).collect();
        let alive: HashSet<String> = self
            .closure(&roots)?
            .into_iter()
            .map(|info| info.path)
            .collect();
        let mut dead = Vec::new();
        for path in self.valid_paths()? {
            if !alive.contains(&path) {
                let size = self.info(&path)?.map_or(0, |info| info.nar_size);
                dead.push((path, size));
            }
        }
        let unregistered = self.unregistered_entries(&alive, &dead)?;
        let collection = Collection {
            dead,
            unregistered,
            alive: alive.len(),
        };
        if dry_run {
            return Ok(collection);
        }
        self.unregister(&collection.dead)?;
        for path in collection
            .dead
            .iter()
            .map(|(path, _)| path)
            .chain(&collection.unregistered)
        {
            self.remove_unregistered(path)?;
        }
        Ok(collection)
    }

    /// Logical paths of the store folder's entries that are neither valid nor about to
    /// be collected, skipping temporaries (a running add's, or removed on open) and locks.
    fn unregistered_entries(
        &self,
        alive: &HashSet<String>,
        dead: &[(String, u64)],
    ) -> Result<Vec<String>, Error> {
        let dead: HashSet<&str> = dead.iter().map(|(path, _)| path.as_str()).collect();
        let folder = self.physical_folder();
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let entry = entry.map_err(|e| Error::io(&folder, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let logical = format!("{}/{name}", self.folder);
            if name.starts_with(TEMP_PREFIX)
                || is_lock_file(&entry)
                || alive.contains(&logical)
                || dead.contains(logical.as_str())
            {
                continue;
            }
            found.push(logical);
        }
        found.sort();
        Ok(found)
    }

    /// Unregisters `dead` in one transaction.
    fn unregister(&mut self, dead: &[(String, u64)]) -> Result<(), Error> {
        let transaction = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| db_error(&e))?;
        for (path, _) in dead {
            transaction
                .execute(
                    "DELETE FROM Refs WHERE referrer = (SELECT id FROM ValidPaths WHERE path = ?1)",
                    params![path],
                )
                .map_err(|e| db_error(&e))?;
        }
        for (path, _) in dead {
            transaction
                .execute("DELETE FROM ValidPaths WHERE path = ?1", params![path])
                .map_err(|e| db_error(&e))?;
        }
        transaction.commit().map_err(|e| db_error(&e))
    }

    /// Removes the tree of a path that is not (or no longer) valid, and its lock file.
    /// (Adds wait for the collection, so nothing registers it meanwhile.)
    fn remove_unregistered(&self, path: &str) -> Result<(), Error> {
        let physical = self.physical(path);
        copy::remove_tree(&physical)?;
        let mut lock_file = physical.into_os_string();
        lock_file.push(".lock");
        match std::fs::remove_file(&lock_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(std::path::Path::new(&lock_file), e))
            }
            _ => Ok(()),
        }
    }
}
