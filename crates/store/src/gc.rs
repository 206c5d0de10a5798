//! Garbage collection: named roots in the database, and removing every path no root
//! needs (with whatever else of the store folder is not registered).
//!
//! A collection holds the collector's lock exclusively, so no add runs meanwhile (adds
//! hold it shared: a path just added and not yet rooted must not go). The dead paths are
//! unregistered and marked pending in one transaction first (the set is closed under
//! referrers, so no valid path is ever left referring to an invalid one) and only then
//! removed from disk, each under its path's lock; a collection killed in between leaves
//! pending trees, which the next writing open of the store removes.
//!
//! A database that registers nothing beside a folder of store paths (lost, or another
//! store's) is refused: collecting would delete every one of them.

use std::collections::HashSet;

use cudapkgs_nix::StorePath;
use rusqlite::params;

use crate::error::Error;
use crate::store::{Store, sql};

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

/// The root that names `path` itself: its base name, made a valid root name when it is
/// not one (`?` becomes `_`, and a long name keeps its hash and as much of the rest as
/// fits), so that no other path takes it.
pub fn own_root_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-._@=:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(MAX_ROOT_NAME);
    name
}

/// The longest root name.
const MAX_ROOT_NAME: usize = 200;

/// Root names are single path components people type: letters, digits and `+-._@=:`.
pub(crate) fn check_root_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= MAX_ROOT_NAME
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
    pub fn add_root(&mut self, name: &str, path: &StorePath) -> Result<(), Error> {
        self.require_writable("adding a root")?;
        check_root_name(name)?;
        // Not while a collection runs: it may have judged `path` dead already, and would
        // then fail to unregister a path a root holds.
        let _no_collection = self.gc_lock(false)?;
        let changed = self
            .db
            .execute(
                "INSERT OR REPLACE INTO Roots (name, path) SELECT ?1, id FROM ValidPaths WHERE path = ?2",
                params![name, path.as_str()],
            )
            .map_err(sql(&self.db_path))?;
        if changed == 0 {
            return Err(Error::NotValid(path.to_string()));
        }
        Ok(())
    }

    /// Removes the root `name`; false when there was none.
    pub fn remove_root(&mut self, name: &str) -> Result<bool, Error> {
        self.require_writable("removing a root")?;
        let changed = self
            .db
            .execute("DELETE FROM Roots WHERE name = ?1", params![name])
            .map_err(sql(&self.db_path))?;
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
            .map_err(sql(&self.db_path))?;
        statement
            .query_map([], |row| {
                Ok(Root {
                    name: row.get(0)?,
                    path: row.get(1)?,
                })
            })
            .map_err(sql(&self.db_path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql(&self.db_path))
    }

    /// Removes every valid path outside the closure of the roots, and every unregistered
    /// entry of the store folder (temporaries of running adds aside). `dry_run` only
    /// reports (and works on a store opened read-only).
    pub fn collect_garbage(&mut self, dry_run: bool) -> Result<Collection, Error> {
        if self.nix {
            // Nix's roots live outside its database: every path would look dead.
            return Err(Error::NixDatabase(self.db_path.clone()));
        }
        if !dry_run {
            self.require_writable("collecting garbage")?;
        }
        let _no_adds = if dry_run {
            None
        } else {
            Some(self.gc_lock(true)?)
        };
        self.refuse_unknown_store_paths()?;
        let roots: Vec<String> = self.roots()?.into_iter().map(|root| root.path).collect();
        let alive: HashSet<String> = self
            .closure(&self.parse_paths(&roots)?)?
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
        // Under the lock no add is at work: pending trees are left over, and go too.
        let unregistered = self.unregistered(!dry_run)?;
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

    /// Unregisters `dead` in one transaction, marking them pending until their trees are
    /// removed.
    pub(crate) fn unregister(&mut self, dead: &[(String, u64)]) -> Result<(), Error> {
        let failed = sql(&self.db_path);
        let transaction = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&failed)?;
        for (path, _) in dead {
            transaction
                .execute(
                    "DELETE FROM Refs WHERE referrer = (SELECT id FROM ValidPaths WHERE path = ?1)",
                    params![path],
                )
                .map_err(&failed)?;
            transaction
                .execute(
                    "INSERT OR IGNORE INTO Pending (path) VALUES (?1)",
                    params![path],
                )
                .map_err(&failed)?;
        }
        for (path, _) in dead {
            transaction
                .execute("DELETE FROM ValidPaths WHERE path = ?1", params![path])
                .map_err(&failed)?;
        }
        transaction.commit().map_err(&failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_path_has_a_valid_root_of_its_own() {
        let hash = "0".repeat(32);
        let plain = format!("/nix/store/{hash}-libcublas-13.0-lib");
        assert_eq!(own_root_name(&plain), format!("{hash}-libcublas-13.0-lib"));
        // Store names may hold `?` and reach 211 bytes after the hash.
        let long = format!("/nix/store/{hash}-{}?{}", "a".repeat(150), "b".repeat(60));
        let root = own_root_name(&long);
        assert!(check_root_name(&root).is_ok(), "{root}");
        assert!(root.starts_with(&format!("{hash}-aaa")) && root.len() == MAX_ROOT_NAME);
        assert_eq!(root.as_bytes()[33 + 150], b'_');
    }
}
