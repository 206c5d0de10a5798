//! The store: content-addressed paths under a store folder (optionally inside a
//! physical root, like Nix's chroot stores), registered in a SQLite database.
//!
//! Adding a tree: its NAR is hashed while scanning for the hash parts of every valid
//! path (its references) and restored, from the same stream, into a temporary folder
//! inside the store; the tree is then checked to be as it was before the read (else the
//! add is refused), the store path is computed as Nix would, and the copy is made
//! read-only, renamed into place and registered with its references in one
//! transaction. A path is valid only once that transaction commits; temporaries of an
//! interrupted add are removed on the next open.
//!
//! Between its rename and its registration a tree is *pending*: recorded in the
//! database (before the rename) as possibly present without being valid, while its add
//! holds the path's lock. A collection marks the paths it unregisters the same way until
//! their trees are gone. Whoever later holds the lock of a pending path that is not
//! valid removes its tree: a killed add or collection leaves nothing the next writing
//! command does not clean, and `verify` counts pending trees as work in progress.
//!
//! Read-only opens (for queries) create and change nothing: the database is opened
//! read-only, in SQLite's rollback-journal mode, which needs no write access to read.
//!
//! One job per module: opening the database and its schema (`database`), what a writing
//! open refuses (`checks`) and finishes for killed ones (`recovery`), adding (`add`),
//! verifying and removing unregistered trees (`verify`), queries and closures
//! (`closure`), locks (`locks`), and names in the store folder (`names`).

mod add;
mod checks;
mod closure;
mod database;
mod locks;
mod names;
mod recovery;
#[cfg(test)]
mod tests;
mod verify;

use std::path::{Path, PathBuf};

use cudapkgs_nix::{StoreDir, StorePath};
use rusqlite::Connection;

use crate::copy;
use crate::error::Error;
use crate::identity::MARK;
use checks::{database_is_new, refuse_foreign_entries, refuse_unknown_paths};
use database::{DATABASE, is_nix_database, open_read_only, open_writable};
use locks::OwnerLock;
use names::physical_of;

pub use closure::PathInfo;
pub(crate) use database::sql;
pub(crate) use locks::{is_lock_file, lock_path};
pub(crate) use names::{TEMP_PREFIX, unique};
pub use verify::{Problem, Verification};

/// An open store.
#[derive(Debug)]
pub struct Store {
    pub(crate) folder: StoreDir,
    root: Option<PathBuf>,
    state_dir: PathBuf,
    pub(crate) db_path: PathBuf,
    pub(crate) writable: bool,
    pub(crate) db: Connection,
    /// The database is Nix's own: read, never written, and without our tables.
    pub(crate) nix: bool,
    /// A writing open's name for its temporaries and the lock it holds on
    /// `<prefix><owner>.owner.lock` while it or a work folder of it lives (see
    /// `remove_temporaries`).
    owner: Option<(String, std::sync::Arc<OwnerLock>)>,
}

/// How a command uses the store it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Queries: nothing is created or changed (the database is opened read-only), and a
    /// store that does not exist is an error.
    ReadOnly,
    /// Changes to a store that must exist already (collecting, repairing, roots).
    Existing,
    /// Adds: the store is created on first use.
    Create,
}

/// Which valid paths an add looks for in the new tree; those found become its references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// None: the path `nix-store --add` gives.
    Nothing,
    /// Every valid path of the store.
    EveryValidPath,
    /// The closure of these declared inputs (each must be valid).
    ClosureOf(Vec<String>),
}

/// A private folder inside the store folder for work that ends in adds (a build):
/// on the same file system as the store, removed when dropped, and removed by the next
/// open of the store if its process died.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    /// Held so that no other open takes the folder for a dead process's.
    _owner: Option<std::sync::Arc<OwnerLock>>,
}

impl WorkDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = copy::remove_tree(&self.path);
    }
}

impl Store {
    /// Opens (creating if needed) the store with logical folder `store_dir` (part of every
    /// path's hash) and optional physical `root` where it lives on this machine.
    pub fn open(store_dir: &str, root: Option<&Path>, state_dir: &Path) -> Result<Store, Error> {
        Store::open_with(store_dir, root, state_dir, Access::Create)
    }

    /// Opens the store for `access`. A writing open finishes what killed adds and
    /// collections left, and refuses a database that registers nothing beside a folder
    /// of store paths (collecting would delete them all).
    pub fn open_with(
        store_dir: &str,
        root: Option<&Path>,
        state_dir: &Path,
        access: Access,
    ) -> Result<Store, Error> {
        let folder = StoreDir::new(store_dir)?;
        let root = root.map(Path::to_owned);
        let physical = physical_of(root.as_deref(), folder.as_str());
        let db_path = state_dir.join(DATABASE);
        // The folder may be Nix's store as well (`--root R` lays a store out as Nix's
        // `local?root=R` does): its paths would be ours to collect.
        let nix_beside = crate::folder_of(&physical).join("var/nix/db/db.sqlite");
        if access != Access::ReadOnly && nix_beside != db_path && is_nix_database(&nix_beside) {
            return Err(Error::SharedWithNix {
                folder: physical,
                database: nix_beside,
            });
        }
        if access != Access::Create {
            if !physical.is_dir() {
                return Err(Error::NoStore(physical));
            }
            if !db_path.is_file() {
                return Err(Error::NoDatabase {
                    folder: physical,
                    database: db_path,
                });
            }
        }
        let writable = access != Access::ReadOnly;
        if writable && is_nix_database(&db_path) {
            return Err(Error::NixDatabase(db_path));
        }

        let (db, nix) = if writable {
            if database_is_new(&db_path) {
                refuse_foreign_entries(&physical)?;
                // Still new once the folder is listed: no add of this store placed what
                // is there (an add creates the database first).
                refuse_unknown_paths(&physical, &db_path, |_| Ok(database_is_new(&db_path)))?;
                if physical.join(MARK).symlink_metadata().is_ok() {
                    return Err(Error::OtherDatabase {
                        folder: physical,
                        database: db_path,
                    });
                }
            }
            std::fs::create_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
            (open_writable(&db_path)?, false)
        } else {
            open_read_only(&db_path)?
        };
        let mut store = Store {
            folder,
            root,
            state_dir: state_dir.to_owned(),
            db_path,
            writable,
            db,
            nix,
            owner: None,
        };
        store.check_described_folder()?;
        if writable {
            std::fs::create_dir_all(&physical).map_err(|e| Error::io(&physical, e))?;
            store.check_folder_for_writing()?;
            store.take_owner_lock()?;
            store.remove_temporaries()?;
            store.finish_interrupted()?;
            store.refuse_unknown_store_paths()?;
        } else {
            store.check_folder_mark()?;
        }
        Ok(store)
    }

    /// The logical store folder (`/nix/store`).
    pub fn folder(&self) -> &str {
        self.folder.as_str()
    }

    /// The logical store folder, checked.
    pub fn store_dir(&self) -> &StoreDir {
        &self.folder
    }

    /// `path` as a store path of this store's folder; anything else is no valid path of
    /// this store (`Error::NotValid`). Whether it is valid is not asked.
    pub fn parse_path(&self, path: &str) -> Result<StorePath, Error> {
        self.folder
            .parse(path)
            .map_err(|_| Error::NotValid(path.to_owned()))
    }

    /// Each of `paths` as a store path of this store's folder (see `parse_path`).
    pub fn parse_paths(&self, paths: &[impl AsRef<str>]) -> Result<Vec<StorePath>, Error> {
        paths
            .iter()
            .map(|path| self.parse_path(path.as_ref()))
            .collect()
    }

    /// Where a logical path lives on this machine.
    pub fn physical(&self, logical: &str) -> PathBuf {
        physical_of(self.root.as_deref(), logical)
    }

    /// Fails unless the store was opened for writing; `what` names the operation.
    pub(crate) fn require_writable(&self, what: &'static str) -> Result<(), Error> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly(what))
        }
    }

    /// A new private work folder (see `WorkDir`).
    pub fn work_dir(&self) -> Result<WorkDir, Error> {
        self.require_writable("a work folder")?;
        let path = self.temporary("-work");
        std::fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
        Ok(WorkDir {
            path,
            _owner: self.owner.as_ref().map(|(_, lock)| lock.clone()),
        })
    }

    /// The store folder on this machine.
    pub(crate) fn physical_folder(&self) -> PathBuf {
        self.physical(self.folder.as_str())
    }
}
