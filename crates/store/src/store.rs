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

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::Error;
use crate::gc::check_root_name;
use crate::identity::MARK;
use crate::nar::{self, HashingWriter, under};
use crate::path::{hash_part, is_store_path_name, source_path};
use crate::scan::ReferenceScanner;
use crate::snapshot::Tee;
use crate::{base32, copy};

pub(crate) const TEMP_PREFIX: &str = ".cudapkgs-add-";

/// The end of an owner lock's name (`<TEMP_PREFIX><owner>.owner.lock`).
const OWNER_LOCK: &str = ".owner.lock";

/// The database's file name in the state folder.
const DATABASE: &str = "db.sqlite";

/// An open store.
#[derive(Debug)]
pub struct Store {
    pub(crate) folder: String,
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

/// A held owner lock; the last of the store and its work folders to go removes it.
#[derive(Debug)]
struct OwnerLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
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
                if *removed {
                    "; removed"
                } else {
                    " (--repair removes it)"
                }
            ),
        }
    }
}

/// What the database knows of a valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub path: String,
    /// `sha256:<base-32>`.
    pub nar_hash: String,
    pub nar_size: u64,
    pub references: Vec<String>,
    pub registration_time: i64,
}

/// Turns SQLite's errors about the database at `database` into this crate's, naming it.
pub(crate) fn sql(database: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |error| match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::CorruptDatabase {
                path: database.to_owned(),
                problem: error.to_string(),
            }
        }
        Some(rusqlite::ErrorCode::ReadOnly) => Error::NotWritable(database.to_owned()),
        _ => Error::Sqlite {
            path: database.to_owned(),
            problem: error.to_string(),
        },
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
        let folder = store_dir.trim_end_matches('/').to_owned();
        if !folder.starts_with('/') {
            return Err(Error::RelativeStoreDir(folder));
        }
        let root = root.map(Path::to_owned);
        let physical = physical_of(root.as_deref(), &folder);
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
        &self.folder
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

    /// A fresh temporary name in the store folder: the prefix, this open's owner name (so
    /// that another open can tell whether its owner is alive), a unique part, `suffix`.
    pub(crate) fn temporary(&self, suffix: &str) -> PathBuf {
        let owner = self.owner.as_ref().map_or("", |(owner, _)| owner.as_str());
        self.physical(&self.folder)
            .join(format!("{TEMP_PREFIX}{owner}-{}{suffix}", unique()))
    }

    /// Names this writing open and holds its owner lock, before any temporary exists.
    fn take_owner_lock(&mut self) -> Result<(), Error> {
        let name = format!("{}.{}", std::process::id(), unique().replace('-', "."));
        let path = self.owner_lock(&name);
        let file = lock_file(&path, true, true)?.expect("a waiting lock is always taken");
        self.owner = Some((name, std::sync::Arc::new(OwnerLock { path, _file: file })));
        Ok(())
    }

    fn owner_lock(&self, owner: &str) -> PathBuf {
        self.physical_folder()
            .join(format!("{TEMP_PREFIX}{owner}{OWNER_LOCK}"))
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
        self.physical(&self.folder)
    }

    /// Holds the garbage collector's lock until dropped: shared by adds (which may create
    /// paths no root holds yet), exclusive for a collection and a repair.
    pub(crate) fn gc_lock(&self, exclusive: bool) -> Result<std::fs::File, Error> {
        let lock = lock_file(&self.state_dir.join("gc.lock"), exclusive, true)?;
        Ok(lock.expect("a waiting lock is always taken"))
    }

    /// Removes the temporaries of opens that ended without removing them (killed). An
    /// owner is alive while its lock is held: that holds across PID namespaces (two
    /// containers sharing a store), where another process's PID cannot be looked up.
    /// Temporaries from before owner locks are judged by their process ID.
    fn remove_temporaries(&self) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let folder = self.physical(&self.folder);
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
    fn finish_interrupted(&self) -> Result<(), Error> {
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

    /// Pending paths: trees that may be in the store folder without being valid.
    pub(crate) fn pending(&self) -> Result<Vec<String>, Error> {
        self.query_paths("SELECT path FROM Pending")
    }

    pub(crate) fn query_paths(&self, query: &str) -> Result<Vec<String>, Error> {
        let mut statement = self.db.prepare_cached(query).map_err(sql(&self.db_path))?;
        statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(sql(&self.db_path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql(&self.db_path))
    }

    /// Records that `path`'s tree may appear without being valid (see the module's notes).
    fn mark_pending(&self, path: &str) -> Result<(), Error> {
        self.db
            .execute(
                "INSERT OR IGNORE INTO Pending (path) VALUES (?1)",
                params![path],
            )
            .map(drop)
            .map_err(sql(&self.db_path))
    }

    pub(crate) fn unmark_pending(&self, path: &str) -> Result<(), Error> {
        self.db
            .execute("DELETE FROM Pending WHERE path = ?1", params![path])
            .map(drop)
            .map_err(sql(&self.db_path))
    }

    /// The physical path of `path` if it names an entry of the store folder (and so is
    /// safe to remove), `None` for anything else.
    pub(crate) fn entry(&self, path: &str) -> Option<PathBuf> {
        let name = path.strip_prefix(&self.folder)?.strip_prefix('/')?;
        let plain = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
        plain.then(|| self.physical(path))
    }

    /// Refuses a store whose database registers nothing while its folder holds store
    /// paths that are neither valid nor pending: they are another store's, or this
    /// store's database was lost, and collecting or repairing would delete them.
    pub(crate) fn refuse_unknown_store_paths(&self) -> Result<(), Error> {
        let any_valid: bool = self
            .db
            .query_row("SELECT EXISTS (SELECT 1 FROM ValidPaths)", [], |row| {
                row.get(0)
            })
            .map_err(sql(&self.db_path))?;
        if any_valid {
            return Ok(());
        }
        let mut known = None;
        refuse_unknown_paths(&self.physical_folder(), &self.db_path, |name| {
            let (valid, pending) = match &known {
                Some(known) => known,
                None => known.insert(self.known()?),
            };
            let path = format!("{}/{name}", self.folder);
            Ok(!valid.contains(&path) && !pending.contains(&path))
        })
    }

    /// The valid and the pending paths, read together (one consistent view).
    fn known(&self) -> Result<(HashSet<String>, HashSet<String>), Error> {
        let read = self
            .db
            .unchecked_transaction()
            .map_err(sql(&self.db_path))?;
        let valid = self.query_paths("SELECT path FROM ValidPaths")?;
        let pending = self.query_paths("SELECT path FROM Pending")?;
        read.finish().map_err(sql(&self.db_path))?;
        Ok((valid.into_iter().collect(), pending.into_iter().collect()))
    }

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
        let mut lock_file = physical.into_os_string();
        lock_file.push(".lock");
        match std::fs::remove_file(&lock_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(Path::new(&lock_file), e));
            }
            _ => {}
        }
        drop(lock);
        Ok(())
    }

    /// The hash parts of every valid path, for reference scanning.
    fn valid_hash_parts(&self) -> Result<Vec<([u8; 32], String)>, Error> {
        Ok(self
            .query_paths("SELECT path FROM ValidPaths")?
            .into_iter()
            .filter_map(|path| Some((hash_part(&path)?, path)))
            .collect())
    }

    /// Adds the tree at `source` under `name`; returns its store path. Adding the same
    /// content again returns the same path and changes nothing. A tree that changes while
    /// it is read is refused (`Error::Changed`) and nothing is stored.
    ///
    /// With `Scan::Nothing` the path is the one `nix-store --add` gives (no references).
    /// Otherwise every candidate path the tree mentions (in contents, names or link
    /// targets) becomes a reference, as Nix registers the outputs of a build, and is part
    /// of the path's hash. (The tree cannot hold its own path: that path is a hash of the
    /// tree.) With `gc_root`, the path is also registered as that garbage-collector root
    /// before any collection can run.
    pub fn add(
        &mut self,
        source: &Path,
        name: &str,
        scan: &Scan,
        gc_root: Option<&str>,
    ) -> Result<String, Error> {
        Ok(self.add_with_info(source, name, scan, gc_root)?.path)
    }

    /// `add`, returning what the database knows of the path as it was added (read before
    /// a collection could remove a path without a root).
    pub fn add_with_info(
        &mut self,
        source: &Path,
        name: &str,
        scan: &Scan,
        gc_root: Option<&str>,
    ) -> Result<PathInfo, Error> {
        self.require_writable("adding")?;
        crate::path::check_name(name)?;
        if let Some(root) = gc_root {
            check_root_name(root)?;
        }
        let _collection_waits = self.gc_lock(false)?;
        // The first path placed marks the folder as this database's store (a command
        // refused before it leaves no mark).
        self.claim_folder()?;
        let candidates = match scan {
            Scan::Nothing => Vec::new(),
            Scan::EveryValidPath => self.valid_hash_parts()?,
            Scan::ClosureOf(inputs) => self
                .closure(inputs)?
                .into_iter()
                .filter_map(|info| Some((hash_part(&info.path)?, info.path)))
                .collect(),
        };
        let work = self.temporary("");
        let mut staged = work.as_os_str().to_owned();
        staged.push("-tree");
        let staged = PathBuf::from(staged);
        let added = self
            .stage_and_place(source, name, &candidates, &work, &staged)
            .map_err(|error| {
                self.named_by_source(error, source, &[&work.join("tree"), &staged, &work])
            });
        // Whatever was not moved into place (on failure, or when another process placed
        // the same path first) goes.
        let _ = copy::remove_tree(&work);
        let _ = copy::remove_tree(&staged);
        let added = added?;
        if let Some(root) = gc_root {
            self.add_root(root, &added)?;
        }
        self.info(&added)?.ok_or(Error::NotValid(added))
    }

    /// An error about one of an add's `temporaries` (copies of `source`, removed by the
    /// time anyone reads the message) told as a failure to copy the file of `source`.
    fn named_by_source(&self, error: Error, source: &Path, temporaries: &[&Path]) -> Error {
        let Error::Io {
            path,
            source: cause,
        } = error
        else {
            return error;
        };
        match temporaries
            .iter()
            .find_map(|temporary| path.strip_prefix(temporary).ok())
        {
            Some(relative) => Error::Copying {
                path: under(source, relative),
                folder: self.physical_folder(),
                source: cause,
            },
            None => Error::Io {
                path,
                source: cause,
            },
        }
    }

    /// Copies `source` into `work/tree` as one state of it, hashing and scanning the
    /// stream the copy is restored from (so what is stored is exactly what was hashed),
    /// then places the copy.
    fn stage_and_place(
        &mut self,
        source: &Path,
        name: &str,
        candidates: &[([u8; 32], String)],
        work: &Path,
        staged: &Path,
    ) -> Result<String, Error> {
        std::fs::create_dir(work).map_err(|e| Error::io(work, e))?;
        let restored_at = work.join("tree");
        let scanner = ReferenceScanner::new(candidates.iter().map(|(hash, _)| *hash));
        let mut tap =
            std::io::BufWriter::with_capacity(1 << 20, Tee(HashingWriter::default(), scanner));
        crate::snapshot::copy(source, &restored_at, &mut tap)?;
        let Tee(hashing, scanner) = tap
            .into_inner()
            .map_err(|e| Error::io(source, e.into_error()))?;
        let (hash, size) = hashing.finish();
        let found = scanner.into_found();
        let mut references: Vec<String> = candidates
            .iter()
            .filter(|(hash_part, _)| found.contains(hash_part))
            .map(|(_, path)| path.clone())
            .collect();
        references.sort();
        let path = source_path(&self.folder, name, &hash, &references, false)?;
        let destination = self.physical(&path);
        // A valid path whose tree was deleted behind the store's back is put back (the
        // content is the same: the path is its hash).
        let present = |store: &Store| -> Result<bool, Error> {
            Ok(store.info(&path)?.is_some() && destination.symlink_metadata().is_ok())
        };
        if present(self)? {
            return Ok(path);
        }
        // Beside the destination, then read-only, then renamed within one folder (which
        // needs no write access to the moved folder): a path never exists writable at
        // its final name.
        std::fs::rename(&restored_at, staged).map_err(|e| Error::io(staged, e))?;
        copy::make_read_only(staged)?;
        let _lock = lock_path(&destination, true)?;
        if present(self)? {
            return Ok(path);
        }
        // Pending from here until registered: should this process die, the next open
        // removes the tree (and `verify` meanwhile knows whose it is).
        self.mark_pending(&path)?;
        // Something at the destination that is not registered is left from an
        // interrupted add (or put there by hand): the new tree replaces it.
        let placed = copy::remove_tree(&destination)
            .and_then(|()| {
                std::fs::rename(staged, &destination).map_err(|e| Error::io(&destination, e))
            })
            .and_then(|()| self.register(&path, &hash, size, &references));
        if let Err(error) = placed {
            if self.info(&path).ok().flatten().is_none() {
                let _ = copy::remove_tree(&destination);
            }
            let _ = self.unmark_pending(&path);
            return Err(error);
        }
        Ok(path)
    }

    /// Makes `path` valid with its references, and no longer pending, in one transaction
    /// (nothing changes for a path already valid).
    fn register(
        &mut self,
        path: &str,
        hash: &[u8; 32],
        size: u64,
        references: &[String],
    ) -> Result<(), Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let failed = sql(&self.db_path);
        // Immediate: the write lock is taken (waiting its turn) before anything is read.
        let transaction = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&failed)?;
        transaction
            .execute(
                "INSERT OR IGNORE INTO ValidPaths (path, hash, registrationTime, narSize) VALUES (?1, ?2, ?3, ?4)",
                params![path, format!("sha256:{}", base32::encode(hash)), i64::try_from(now).unwrap_or(0), i64::try_from(size).unwrap_or(i64::MAX)],
            )
            .map_err(&failed)?;
        for reference in references {
            transaction
                .execute(
                    "INSERT OR IGNORE INTO Refs (referrer, reference) SELECT a.id, b.id FROM ValidPaths a, ValidPaths b WHERE a.path = ?1 AND b.path = ?2",
                    params![path, reference],
                )
                .map_err(&failed)?;
        }
        transaction
            .execute("DELETE FROM Pending WHERE path = ?1", params![path])
            .map_err(&failed)?;
        transaction.commit().map_err(&failed)
    }

    /// Every valid path, sorted.
    pub fn valid_paths(&self) -> Result<Vec<String>, Error> {
        let mut paths = self.query_paths("SELECT path FROM ValidPaths")?;
        paths.sort();
        Ok(paths)
    }

    /// Checks the store against its database: every valid path's tree must be on disk
    /// with its registered NAR hash and size, and everything in the store folder must be
    /// registered (temporaries, pending trees and lock files aside). Paths added or
    /// collected while it runs are not problems. With `repair`, unregistered entries
    /// are removed (under the collector's lock, so that no add is placing one);
    /// damaged valid paths are only reported.
    pub fn verify(&self, repair: bool) -> Result<Verification, Error> {
        if repair {
            self.require_writable("repairing")?;
        }
        let valid = self.valid_paths()?;
        let mut problems = Vec::new();
        for path in &valid {
            problems.extend(self.check_valid_path(path)?);
        }
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
    fn check_valid_path(&self, path: &str) -> Result<Option<Problem>, Error> {
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
            Err(error) => return Err(error),
        };
        let actual = format!("sha256:{}", base32::encode(&hash));
        let changed = actual != info.nar_hash || size != info.nar_size;
        Ok((changed && still_valid()?).then(|| Problem::Changed {
            path: path.to_owned(),
            registered: info.nar_hash,
            actual,
        }))
    }

    /// `roots` and every path they reference, directly or not; an invalid root is an
    /// error naming it.
    pub fn closure(&self, roots: &[String]) -> Result<Vec<PathInfo>, Error> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut pending: Vec<String> = roots.to_vec();
        let mut closure = Vec::new();
        while let Some(path) = pending.pop() {
            if !seen.insert(path.clone()) {
                continue;
            }
            let info = self
                .info(&path)?
                .ok_or_else(|| Error::NotValid(path.clone()))?;
            pending.extend(info.references.iter().cloned());
            closure.push(info);
        }
        Ok(closure)
    }

    /// What the database knows of `path`, if it is valid.
    pub fn info(&self, path: &str) -> Result<Option<PathInfo>, Error> {
        let failed = sql(&self.db_path);
        // Cached statements: a closure asks this once per path.
        let row = self
            .db
            .prepare_cached(
                "SELECT id, hash, narSize, registrationTime FROM ValidPaths WHERE path = ?1",
            )
            .and_then(|mut statement| {
                statement.query_row(params![path], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        // Nix's older paths may have no size recorded.
                        row.get::<_, Option<i64>>(2)?.unwrap_or(0),
                        row.get::<_, i64>(3)?,
                    ))
                })
            })
            .optional()
            .map_err(&failed)?;
        let Some((id, nar_hash, nar_size, registration_time)) = row else {
            return Ok(None);
        };
        let mut statement = self
            .db
            .prepare_cached("SELECT v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?1 ORDER BY v.path")
            .map_err(&failed)?;
        let references = statement
            .query_map(params![id], |row| row.get::<_, String>(0))
            .map_err(&failed)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&failed)?;
        Ok(Some(PathInfo {
            path: path.to_owned(),
            nar_hash: nix_base32_hash(&nar_hash),
            nar_size: u64::try_from(nar_size).unwrap_or(0),
            references,
            registration_time,
        }))
    }
}

/// Where the logical `path` lives under the physical `root`, if any.
fn physical_of(root: Option<&Path>, logical: &str) -> PathBuf {
    match root {
        Some(root) => root.join(logical.trim_start_matches('/')),
        None => PathBuf::from(logical),
    }
}

/// A NAR hash as `sha256:<base-32>`: Nix's database keeps it in hex (`sha256:<hex>`),
/// ours in base-32 already, and Nix shows base-32.
fn nix_base32_hash(hash: &str) -> String {
    let Some(hex) = hash.strip_prefix("sha256:").filter(|hex| hex.len() == 64) else {
        return hash.to_owned();
    };
    let bytes: Option<Vec<u8>> = (0..32)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    match bytes {
        Some(bytes) => format!("sha256:{}", base32::encode(&bytes)),
        None => hash.to_owned(),
    }
}

/// Whether the database file does not exist yet (or is empty, which SQLite takes for
/// a new database).
fn database_is_new(path: &Path) -> bool {
    path.symlink_metadata().map_or(true, |m| m.len() == 0)
}

/// Fails with `Error::ForeignEntries` when the folder about to become a store holds
/// entries that no store puts there: it is somebody's folder, given by mistake, and a
/// store there would one day collect what it does not know.
fn refuse_foreign_entries(folder: &Path) -> Result<(), Error> {
    let mut foreign: Vec<String> = match std::fs::read_dir(folder) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(folder, e)),
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|entry| !is_lock_file(entry))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| {
                !is_store_path_name(name) && !name.starts_with(TEMP_PREFIX) && name != MARK
            })
            .collect(),
    };
    foreign.sort();
    match foreign.first() {
        None => Ok(()),
        Some(example) => Err(Error::ForeignEntries {
            folder: folder.to_owned(),
            count: foreign.len(),
            example: example.clone(),
        }),
    }
}

/// Fails with `Error::UnknownPaths` when the store folder `folder` holds entries named
/// like store paths that `unknown` calls unknown to the `database`. `unknown` is asked
/// after the listing, and an entry counts only if it is still there afterwards, so that
/// a path an add placed meanwhile (known by then) or a collection removed does not.
fn refuse_unknown_paths(
    folder: &Path,
    database: &Path,
    mut unknown: impl FnMut(&str) -> Result<bool, Error>,
) -> Result<(), Error> {
    let names: Vec<String> = match std::fs::read_dir(folder) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(folder, e)),
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|entry| !is_lock_file(entry))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| is_store_path_name(name))
            .collect(),
    };
    let mut found = Vec::new();
    for name in names {
        if unknown(&name)? && folder.join(&name).symlink_metadata().is_ok() {
            found.push(name);
        }
    }
    found.sort();
    match found.first() {
        None => Ok(()),
        Some(example) => Err(Error::UnknownPaths {
            folder: folder.to_owned(),
            database: database.to_owned(),
            count: found.len(),
            example: folder.join(example).display().to_string(),
        }),
    }
}

/// A name no other add uses: this process and a counter.
pub(crate) fn unique() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos}-{count}")
}

/// Holds an exclusive lock on `<path>.lock` until dropped, so that adds and removals of
/// one path by several processes take turns; without `wait`, `None` when it is held.
fn lock_path(path: &Path, wait: bool) -> Result<Option<std::fs::File>, Error> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    lock_file(Path::new(&lock_path), true, wait)
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
fn lock_file(path: &Path, exclusive: bool, wait: bool) -> Result<Option<std::fs::File>, Error> {
    use rustix::fs::FlockOperation;
    use std::os::unix::fs::MetadataExt;
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
        // A lock file removed (a collection removes a dead path's) while this process
        // waited for it locks nothing: lock the file that is there now.
        let held = file.metadata().map_err(|e| Error::io(path, e))?;
        if path
            .symlink_metadata()
            .is_ok_and(|now| now.ino() == held.ino() && now.dev() == held.dev())
        {
            return Ok(Some(file));
        }
    }
}

/// The tables and their columns; `Pending` holds the paths whose trees may be present
/// without being valid; `BuildRecords` and `FileHashes` are what builds remember
/// (`records.rs`); `GpuChecks` the latest result of each check of a path on each GPU.
const TABLES: [(&str, &str); 8] = [
    (
        "ValidPaths",
        "id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
         path TEXT UNIQUE NOT NULL,
         hash TEXT NOT NULL,
         registrationTime INTEGER NOT NULL,
         narSize INTEGER NOT NULL",
    ),
    (
        "Refs",
        "referrer INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
         reference INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE RESTRICT,
         PRIMARY KEY (referrer, reference)",
    ),
    (
        "Roots",
        "name TEXT PRIMARY KEY NOT NULL,
         path INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE RESTRICT",
    ),
    ("Pending", "path TEXT PRIMARY KEY NOT NULL"),
    (
        "BuildRecords",
        "key TEXT PRIMARY KEY NOT NULL,
         record TEXT NOT NULL,
         time INTEGER NOT NULL",
    ),
    (
        "StoreInfo",
        "key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL",
    ),
    (
        "FileHashes",
        "path TEXT PRIMARY KEY NOT NULL,
         identity TEXT NOT NULL,
         sha256 TEXT NOT NULL",
    ),
    (
        "GpuChecks",
        "path INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
         name TEXT NOT NULL,
         gpu TEXT NOT NULL,
         uuid TEXT NOT NULL,
         capability TEXT NOT NULL,
         driver TEXT NOT NULL,
         passed INTEGER NOT NULL,
         detail TEXT NOT NULL,
         seconds REAL NOT NULL,
         time INTEGER NOT NULL,
         PRIMARY KEY (path, name, uuid)",
    ),
];

/// Tables that stores made by older versions lack: created when missing, never a sign
/// of damage.
const ADDED_LATER: [&str; 5] = [
    "Pending",
    "BuildRecords",
    "StoreInfo",
    "FileHashes",
    "GpuChecks",
];

/// `CREATE TABLE` statements for `tables` (temporary ones: in memory, for this
/// connection only).
fn create_tables<'a>(
    tables: impl Iterator<Item = &'a (&'a str, &'a str)>,
    temporary: bool,
) -> String {
    let kind = if temporary {
        "TEMP TABLE"
    } else {
        "TABLE IF NOT EXISTS"
    };
    tables.fold(String::new(), |mut statements, (name, columns)| {
        let _ = writeln!(statements, "CREATE {kind} {name} ({columns});");
        statements
    })
}

/// Opens the database for reading only: SQLite creates and changes nothing (a database
/// in rollback-journal mode needs no write access to be read). The one exception is a
/// transaction that a killed writer left in the journal: no one can read the database
/// before it is rolled back, so a user who may write the database rolls it back.
/// Opens `path` as a database nobody changes meanwhile (SQLite's `immutable`): no
/// lock, no WAL index, nothing created.
fn open_immutable(path: &Path) -> rusqlite::Result<(Connection, Vec<String>)> {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            other => uri.push(other),
        }
    }
    uri.push_str("?immutable=1");
    let db = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((db, tables))
}

/// Whether the tables are those of Nix's own database (which has `DerivationOutputs`;
/// ours never does).
fn is_nix_schema(tables: &[String]) -> bool {
    tables.iter().any(|table| table == "DerivationOutputs")
}

/// Whether the database at `path` is Nix's: by the files Nix keeps beside it (its
/// `big-lock` and `schema`, readable while Nix holds the database busy), or by its
/// tables.
fn is_nix_database(path: &Path) -> bool {
    let folder = crate::folder_of(path);
    if ["big-lock", "schema"]
        .iter()
        .all(|name| folder.join(name).symlink_metadata().is_ok())
    {
        return true;
    }
    if path.symlink_metadata().is_err() {
        return false;
    }
    let Ok(db) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return false;
    };
    let _ = db.busy_timeout(std::time::Duration::from_secs(60));
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .is_ok_and(|tables| is_nix_schema(&tables))
}

/// Opens the database for reading; also says whether it is Nix's own (whose schema
/// has only `ValidPaths` and `Refs` of ours).
fn open_read_only(path: &Path) -> Result<(Connection, bool), Error> {
    let open = || -> rusqlite::Result<(Connection, Vec<String>)> {
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        db.busy_timeout(std::time::Duration::from_secs(60))?;
        let tables = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok((db, tables))
    };
    let (db, tables) = match open() {
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if failure.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK =>
        {
            // Nix's database is Nix's to recover: a query never writes it.
            if is_nix_database(path) {
                return Err(Error::NixUnfinished(path.to_owned()));
            }
            let rolled_back = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
                .and_then(|db| db.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())));
            if rolled_back.is_err() {
                return Err(Error::Interrupted(path.to_owned()));
            }
            open().map_err(sql(path))?
        }
        // A reader who may not write Nix's folder cannot make the WAL index that SQLite
        // wants while no Nix process has the database open: read it as it is on disk.
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if matches!(
                failure.code,
                rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen
            ) && is_nix_database(path) =>
        {
            open_immutable(path).map_err(sql(path))?
        }
        other => other.map_err(sql(path))?,
    };
    let missing: Vec<_> = TABLES
        .iter()
        .filter(|(name, _)| !tables.iter().any(|table| table == name))
        .collect();
    let nix = is_nix_schema(&tables);
    // No tables: a database created by an add killed before it wrote anything. Older
    // stores lack the tables added later: nothing of theirs is pending or recorded. Nix's
    // database has the paths and references, and none of what only we keep.
    let usable = tables.is_empty()
        || missing.iter().all(|(name, _)| {
            ADDED_LATER.contains(name) || (nix && !["ValidPaths", "Refs"].contains(name))
        });
    if !usable {
        return Err(Error::CorruptDatabase {
            path: path.to_owned(),
            problem: format!("it has no {} table", missing[0].0),
        });
    }
    if !missing.is_empty() {
        let temporary = create_tables(missing.into_iter(), true);
        db.execute_batch(&format!("PRAGMA temp_store = MEMORY; {temporary}"))
            .map_err(sql(path))?;
    }
    Ok((db, nix))
}

/// Opens the database for reading and writing, creating it and its tables if needed.
fn open_writable(path: &Path) -> Result<Connection, Error> {
    let db = Connection::open(path).map_err(sql(path))?;
    db.busy_timeout(std::time::Duration::from_secs(60))
        .map_err(sql(path))?;
    // Creating the tables can meet another process doing the same; SQLite answers that
    // with "locked" without waiting, so the setup is retried.
    let started = std::time::Instant::now();
    let schema = format!(
        "BEGIN IMMEDIATE; {} COMMIT;",
        create_tables(TABLES.iter(), false)
    );
    let setup = || -> rusqlite::Result<()> {
        db.execute_batch("PRAGMA foreign_keys = ON;")?;
        // Rollback-journal mode (SQLite's default), so that users who can read the store
        // but not write it can query it: a WAL database needs its shared-memory file
        // written even to be read. A database still in WAL mode from an older version is
        // switched when no other process has it open.
        let mode: String = db.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            let _ = db.query_row("PRAGMA journal_mode = DELETE", [], |row| {
                row.get::<_, String>(0)
            });
        }
        let present: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        if TABLES
            .iter()
            .any(|(name, _)| !present.iter().any(|table| table == name))
        {
            // In one transaction: a database is never seen with some of its tables.
            db.execute_batch(&schema)?;
        }
        Ok(())
    };
    loop {
        match setup() {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if matches!(
                    failure.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && started.elapsed() < std::time::Duration::from_secs(60) =>
            {
                let _ = db.execute_batch("ROLLBACK");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => {
                let _ = db.execute_batch("ROLLBACK");
                return Err(sql(path)(error));
            }
        }
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, access: Access) -> Result<Store, Error> {
        Store::open_with(
            "/nix/store",
            Some(&dir.join("root")),
            &dir.join("state"),
            access,
        )
    }

    /// A tree under its final name, complete and read-only, as an add leaves it between
    /// its rename and its registration.
    fn place_by_hand(store: &Store, name: &str) -> (String, PathBuf) {
        let path = source_path("/nix/store", name, &[7; 32], &[], false).expect("path");
        let physical = store.physical(&path);
        std::fs::create_dir(&physical).expect("mkdir");
        std::fs::write(physical.join("file"), name).expect("write");
        copy::make_read_only(&physical).expect("read-only");
        (path, physical)
    }

    #[test]
    fn temporaries_are_judged_by_their_owners_lock_not_by_a_process_id() {
        let dir = tempfile::tempdir().expect("temp");
        let store = open(dir.path(), Access::Create).expect("open");
        let folder = store.physical_folder();
        // Above any PID this machine hands out: a process of another PID namespace (a
        // container sharing the store), whose PID cannot be looked up here.
        let owner = "4194305.1.2";
        let temporary = folder.join(format!("{TEMP_PREFIX}{owner}-3-4"));
        std::fs::create_dir(&temporary).expect("mkdir");
        let held = lock_file(&store.owner_lock(owner), true, true)
            .expect("lock")
            .expect("taken");
        drop(open(dir.path(), Access::Existing).expect("open"));
        assert!(temporary.exists(), "its owner is alive: its lock is held");
        drop(held);
        drop(open(dir.path(), Access::Existing).expect("open"));
        assert!(!temporary.exists(), "its owner is gone");
        assert!(!store.owner_lock(owner).exists(), "and so is its lock");
        // An older version's temporary, named by a dead process's ID, goes too; the
        // work folders of a live open stay, and the open's lock goes with the last.
        let legacy = folder.join(format!("{TEMP_PREFIX}4194305-1-2"));
        std::fs::create_dir(&legacy).expect("mkdir");
        let work = store.work_dir().expect("work");
        let mine = store.owner_lock(&store.owner.as_ref().expect("owner").0);
        drop(store);
        drop(open(dir.path(), Access::Existing).expect("open"));
        assert!(!legacy.exists());
        assert!(work.path().is_dir() && mine.exists());
        drop(work);
        assert!(!mine.exists());
        // What sits at a lock's name but is no plain file locks nothing: a folder, a
        // link to nowhere.
        for (owner, make) in [("4194305.5.6", "folder"), ("4194305.7.8", "link")] {
            let store = open(dir.path(), Access::Existing).expect("open");
            let lock = store.owner_lock(owner);
            let temporary = folder.join(format!("{TEMP_PREFIX}{owner}-1-1"));
            std::fs::create_dir(&temporary).expect("mkdir");
            match make {
                "folder" => std::fs::create_dir(&lock).expect("mkdir"),
                _ => std::os::unix::fs::symlink("nowhere", &lock).expect("link"),
            }
            drop(store);
            drop(open(dir.path(), Access::Existing).expect("a writing open works"));
            assert!(
                lock.symlink_metadata().is_err() && !temporary.exists(),
                "{make}"
            );
        }
    }

    #[test]
    fn a_pending_tree_is_work_in_progress_until_its_owner_is_gone() {
        let dir = tempfile::tempdir().expect("temp");
        let store = open(dir.path(), Access::Create).expect("open");
        // An add killed after placing its tree, before registering it.
        let (path, physical) = place_by_hand(&store, "killed");
        store.mark_pending(&path).expect("mark");
        drop(store);
        let reader = open(dir.path(), Access::ReadOnly).expect("open");
        assert_eq!(reader.verify(false).expect("verify").problems, []);
        // While the path's lock is held, its add is still at work: the tree stays.
        let held = lock_path(&physical, true).expect("lock");
        drop(open(dir.path(), Access::Existing).expect("open"));
        assert!(physical.exists());
        drop(held);
        // Once it is free, the next writing open removes the tree and the mark.
        let store = open(dir.path(), Access::Existing).expect("open");
        assert!(!physical.exists());
        assert_eq!(store.pending().expect("pending"), Vec::<String>::new());
        assert_eq!(store.verify(false).expect("verify").problems, []);
    }

    #[test]
    fn a_collection_killed_before_removing_leaves_nothing_the_next_open_keeps() {
        let dir = tempfile::tempdir().expect("temp");
        let source = dir.path().join("source");
        std::fs::write(&source, "collected").expect("write");
        let mut store = open(dir.path(), Access::Create).expect("open");
        let path = store
            .add(&source, "source", &Scan::Nothing, None)
            .expect("add");
        // What a collection does first: unregister, and mark the tree pending.
        store.unregister(&[(path.clone(), 0)]).expect("unregister");
        drop(store);
        // The database registers nothing, but the store path in the folder is pending:
        // not someone else's, and not refused.
        let store = open(dir.path(), Access::Existing).expect("open");
        assert!(!store.physical(&path).exists());
        assert_eq!(store.verify(false).expect("verify").problems, []);
    }

    #[test]
    fn removals_stay_inside_the_store_folder() {
        let dir = tempfile::tempdir().expect("temp");
        let store = open(dir.path(), Access::Create).expect("open");
        let outside = dir.path().join("root/outside");
        std::fs::write(&outside, "not the store's").expect("write");
        for path in [
            "/nix/store/../outside",
            "/nix/store/..",
            "/nix/store/.",
            "/nix/store/",
            "/nix/store/a/b",
            "/nix/storefront",
            "/etc/passwd",
        ] {
            assert_eq!(store.entry(path), None, "{path}");
        }
        // A mark naming something else is dropped without removing anything.
        store.mark_pending("/nix/store/../outside").expect("mark");
        drop(store);
        let store = open(dir.path(), Access::Existing).expect("open");
        assert!(outside.exists());
        assert_eq!(store.pending().expect("pending"), Vec::<String>::new());
        assert!(matches!(
            store.remove_unregistered("/nix/store/../outside"),
            Err(Error::Database(_))
        ));
        assert!(outside.exists());
    }

    #[test]
    fn a_store_opened_read_only_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp");
        let source = dir.path().join("source");
        std::fs::write(&source, "a file").expect("write");
        let path = open(dir.path(), Access::Create)
            .expect("open")
            .add(&source, "source", &Scan::Nothing, Some("kept"))
            .expect("add");
        let mut store = open(dir.path(), Access::ReadOnly).expect("open");
        let refused = [
            store.add(&source, "other", &Scan::Nothing, None).err(),
            store.collect_garbage(false).err(),
            store.verify(true).err(),
            store.work_dir().err(),
            store.add_root("r", &path).err(),
            store.remove_root("kept").err(),
        ];
        for error in refused {
            assert!(matches!(error, Some(Error::ReadOnly(_))), "{error:?}");
        }
        // What it can do, it does.
        assert_eq!(store.collect_garbage(true).expect("dry run").alive, 1);
        assert_eq!(store.roots().expect("roots").len(), 1);
    }

    #[test]
    fn unknown_store_paths_beside_an_empty_database_are_refused() {
        let dir = tempfile::tempdir().expect("temp");
        let store = open(dir.path(), Access::Create).expect("open");
        let (_, physical) = place_by_hand(&store, "foreign");
        drop(store);
        let database = dir.path().join("state/db.sqlite");
        for access in [Access::Create, Access::Existing] {
            assert!(
                matches!(
                    open(dir.path(), access),
                    Err(Error::UnknownPaths { count: 1, .. })
                ),
                "{access:?}"
            );
        }
        // Nor does a missing database get created beside them.
        std::fs::remove_file(&database).expect("rm");
        assert!(matches!(
            open(dir.path(), Access::Create),
            Err(Error::UnknownPaths { .. })
        ));
        assert!(!database.exists());
        assert!(physical.exists());
    }
}
