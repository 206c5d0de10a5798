//! The store: content-addressed paths under a store folder (optionally inside a
//! physical root, like Nix's chroot stores), registered in a SQLite database.
//!
//! Adding a tree: its NAR is hashed while scanning for the hash parts of every valid
//! path (its references), the store path is computed as Nix would, the tree is copied
//! into a temporary folder inside the store, renamed into place, made read-only, and
//! registered with its references in one transaction. A path is valid only once that
//! transaction commits; temporaries of an interrupted add are removed on the next open.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Error;
use crate::gc::check_root_name;
use crate::nar::{self, HashingWriter};
use crate::path::{hash_part, source_path};
use crate::scan::ReferenceScanner;
use crate::{base32, copy};

pub(crate) const TEMP_PREFIX: &str = ".cudapkgs-add-";

/// An open store.
#[derive(Debug)]
pub struct Store {
    pub(crate) folder: String,
    root: Option<PathBuf>,
    state_dir: PathBuf,
    pub(crate) db: Connection,
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

pub(crate) fn db_error(error: &rusqlite::Error) -> Error {
    Error::Database(error.to_string())
}

impl Store {
    /// Opens (creating if needed) the store with logical folder `store_dir` (part of every
    /// path's hash) and optional physical `root` where it lives on this machine.
    pub fn open(store_dir: &str, root: Option<&Path>, state_dir: &Path) -> Result<Store, Error> {
        let store_dir = store_dir.trim_end_matches('/').to_owned();
        if !store_dir.starts_with('/') {
            return Err(Error::Database(format!(
                "the store folder `{store_dir}` must be an absolute path"
            )));
        }
        let store = Store {
            folder: store_dir,
            root: root.map(Path::to_owned),
            state_dir: state_dir.to_owned(),
            db: open_database(state_dir)?,
        };
        let physical = store.physical(&store.folder);
        std::fs::create_dir_all(&physical).map_err(|e| Error::io(&physical, e))?;
        store.remove_temporaries()?;
        Ok(store)
    }

    /// The logical store folder (`/nix/store`).
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// Where a logical path lives on this machine.
    pub fn physical(&self, logical: &str) -> PathBuf {
        match &self.root {
            Some(root) => root.join(logical.trim_start_matches('/')),
            None => PathBuf::from(logical),
        }
    }

    /// A fresh temporary name in the store folder: the prefix, this process (so that an
    /// open of the store can tell a dead process's temporaries), a unique part, `suffix`.
    fn temporary(&self, suffix: &str) -> PathBuf {
        self.physical(&self.folder).join(format!(
            "{TEMP_PREFIX}{}-{}{suffix}",
            std::process::id(),
            unique()
        ))
    }

    /// A new private work folder (see `WorkDir`).
    pub fn work_dir(&self) -> Result<WorkDir, Error> {
        let path = self.temporary("-work");
        std::fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
        Ok(WorkDir { path })
    }

    /// The store folder on this machine.
    pub(crate) fn physical_folder(&self) -> PathBuf {
        self.physical(&self.folder)
    }

    /// Holds the garbage collector's lock until dropped: shared by adds (which may create
    /// paths no root holds yet), exclusive for a collection.
    pub(crate) fn gc_lock(&self, exclusive: bool) -> Result<std::fs::File, Error> {
        lock_file(&self.state_dir.join("gc.lock"), exclusive)
    }

    fn remove_temporaries(&self) -> Result<(), Error> {
        let folder = self.physical(&self.folder);
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let entry = entry.map_err(|e| Error::io(&folder, e))?;
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
                continue;
            };
            // A temporary of a process still running is its add in progress.
            let owner = rest.split('-').next().unwrap_or_default();
            let running = !owner.is_empty() && Path::new("/proc").join(owner).exists();
            if !running || owner == std::process::id().to_string() {
                copy::remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    /// The hash parts of every valid path, for reference scanning.
    fn valid_hash_parts(&self) -> Result<Vec<([u8; 32], String)>, Error> {
        let mut statement = self
            .db
            .prepare("SELECT path FROM ValidPaths")
            .map_err(|e| db_error(&e))?;
        let paths = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(|e| db_error(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| db_error(&e))?;
        Ok(paths
            .into_iter()
            .filter_map(|path| Some((hash_part(&path)?, path)))
            .collect())
    }

    /// Adds the tree at `source` under `name`; returns its store path. Adding the same
    /// content again returns the same path and changes nothing.
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
        crate::path::check_name(name)?;
        if let Some(root) = gc_root {
            check_root_name(root)?;
        }
        let _collection_waits = self.gc_lock(false)?;
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
        let added = self.stage_and_place(source, name, &candidates, &work, &staged);
        // Whatever was not moved into place (on failure, or when another process placed
        // the same path first) goes.
        let _ = copy::remove_tree(&work);
        let _ = copy::remove_tree(&staged);
        let added = added?;
        if let Some(root) = gc_root {
            self.add_root(root, &added)?;
        }
        Ok(added)
    }

    /// Serialises `source` once, hashing and scanning the stream while it is restored
    /// into `work/tree` (so what is stored is exactly what was hashed), then places it.
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
        let (writer, reader) = crate::pipe::chunk_pipe();
        let (dumped, restored) = std::thread::scope(|scope| {
            let restoring = scope.spawn(|| crate::restore::restore(reader, &restored_at));
            let dumped = dump_hashing_and_scanning(source, candidates, writer);
            (
                dumped,
                restoring
                    .join()
                    .expect("the restoring thread does not panic"),
            )
        });
        // A failed dump makes the restore fail too; its own error says more.
        let Dumped { hash, size, found } = dumped?;
        restored?;
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
        let _lock = lock_path(&destination)?;
        if present(self)? {
            return Ok(path);
        }
        // Something at the destination that is not registered is left from an
        // interrupted add (or put there by hand): the new tree replaces it.
        copy::remove_tree(&destination)?;
        std::fs::rename(staged, &destination).map_err(|e| Error::io(&destination, e))?;
        if self.info(&path)?.is_none() {
            self.register(&path, &hash, size, &references)?;
        }
        Ok(path)
    }

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
        // Immediate: the write lock is taken (waiting its turn) before anything is read.
        let transaction = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| db_error(&e))?;
        transaction
            .execute(
                "INSERT OR IGNORE INTO ValidPaths (path, hash, registrationTime, narSize) VALUES (?1, ?2, ?3, ?4)",
                params![path, format!("sha256:{}", base32::encode(hash)), i64::try_from(now).unwrap_or(0), i64::try_from(size).unwrap_or(i64::MAX)],
            )
            .map_err(|e| db_error(&e))?;
        for reference in references {
            transaction
                .execute(
                    "INSERT OR IGNORE INTO Refs (referrer, reference) SELECT a.id, b.id FROM ValidPaths a, ValidPaths b WHERE a.path = ?1 AND b.path = ?2",
                    params![path, reference],
                )
                .map_err(|e| db_error(&e))?;
        }
        transaction.commit().map_err(|e| db_error(&e))
    }

    /// Every valid path, sorted.
    pub fn valid_paths(&self) -> Result<Vec<String>, Error> {
        let mut paths: Vec<String> = self
            .valid_hash_parts()?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        paths.sort();
        Ok(paths)
    }

    /// Checks the store against its database: every valid path's tree must be on disk
    /// with its registered NAR hash and size, and everything in the store folder must be
    /// registered (temporaries of running adds and lock files aside). With `repair`,
    /// unregistered entries are removed; damaged valid paths are only reported.
    pub fn verify(&self, repair: bool) -> Result<Verification, Error> {
        let mut problems = Vec::new();
        let valid = self.valid_paths()?;
        for path in &valid {
            let physical = self.physical(path);
            if physical.symlink_metadata().is_err() {
                problems.push(Problem::Missing(path.clone()));
                continue;
            }
            let (hash, size) = nar::hash(&physical)?;
            let info = self.info(path)?.expect("listed as valid");
            let actual = format!("sha256:{}", base32::encode(&hash));
            if actual != info.nar_hash || size != info.nar_size {
                problems.push(Problem::Changed {
                    path: path.clone(),
                    registered: info.nar_hash,
                    actual,
                });
            }
        }
        let folder = self.physical(&self.folder);
        let valid_names: HashSet<&str> =
            valid.iter().filter_map(|p| p.rsplit('/').next()).collect();
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let entry = entry.map_err(|e| Error::io(&folder, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX)
                || is_lock_file(&entry)
                || valid_names.contains(name.as_str())
            {
                continue;
            }
            if repair {
                copy::remove_tree(&entry.path())?;
            }
            problems.push(Problem::Unregistered {
                path: format!("{}/{name}", self.folder),
                removed: repair,
            });
        }
        Ok(Verification {
            checked: valid.len(),
            problems,
        })
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
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
            })
            .optional()
            .map_err(|e| db_error(&e))?;
        let Some((id, nar_hash, nar_size, registration_time)) = row else {
            return Ok(None);
        };
        let mut statement = self
            .db
            .prepare_cached("SELECT v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?1 ORDER BY v.path")
            .map_err(|e| db_error(&e))?;
        let references = statement
            .query_map(params![id], |row| row.get::<_, String>(0))
            .map_err(|e| db_error(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| db_error(&e))?;
        Ok(Some(PathInfo {
            path: path.to_owned(),
            nar_hash,
            nar_size: u64::try_from(nar_size).unwrap_or(0),
            references,
            registration_time,
        }))
    }
}

/// A name no other add uses: this process and a counter.
fn unique() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos}-{count}")
}

/// Holds an exclusive lock on `<path>.lock` until dropped, so that adds (and removals)
/// of one path by several processes take turns.
fn lock_path(path: &Path) -> Result<std::fs::File, Error> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    lock_file(Path::new(&lock_path), true)
}

/// Whether a store folder entry is a path's lock file: an empty file `<path>.lock`.
pub(crate) fn is_lock_file(entry: &std::fs::DirEntry) -> bool {
    Path::new(&entry.file_name())
        .extension()
        .is_some_and(|extension| extension == "lock")
        && entry.metadata().is_ok_and(|m| m.is_file() && m.len() == 0)
}

/// Holds a `flock` on `path` (created if needed) until the file is dropped.
fn lock_file(path: &Path, exclusive: bool) -> Result<std::fs::File, Error> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let operation = if exclusive {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::LockShared
    };
    rustix::fs::flock(&file, operation).map_err(|e| Error::io(path, e.into()))?;
    Ok(file)
}

/// What one pass over a tree's NAR found.
struct Dumped {
    hash: [u8; 32],
    size: u64,
    /// The candidate hash parts seen.
    found: HashSet<[u8; 32]>,
}

/// Writes the NAR of `source` to `out` while hashing it and scanning it for candidates.
fn dump_hashing_and_scanning(
    source: &Path,
    candidates: &[([u8; 32], String)],
    out: impl Write,
) -> Result<Dumped, Error> {
    let scanner = ReferenceScanner::new(candidates.iter().map(|(hash, _)| *hash));
    let mut writer = std::io::BufWriter::with_capacity(
        1 << 20,
        Tee(Tee(HashingWriter::default(), scanner), out),
    );
    nar::dump(source, &mut writer)?;
    let Tee(Tee(hashing, scanner), out) = writer
        .into_inner()
        .map_err(|e| Error::io(source, e.into_error()))?;
    drop(out);
    let (hash, size) = hashing.finish();
    Ok(Dumped {
        hash,
        size,
        found: scanner.into_found(),
    })
}

/// Writes to two writers.
struct Tee<A, B>(A, B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

fn open_database(state_dir: &Path) -> Result<Connection, Error> {
    std::fs::create_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
    let path = state_dir.join("db.sqlite");
    let db = Connection::open(&path).map_err(|e| db_error(&e))?;
    db.busy_timeout(std::time::Duration::from_secs(60))
        .map_err(|e| db_error(&e))?;
    // Switching to WAL and creating the tables can meet another process doing the same;
    // SQLite answers that with "locked" without waiting, so the setup is retried.
    let started = std::time::Instant::now();
    let setup = || {
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
         PRAGMA foreign_keys = ON;
         CREATE TABLE IF NOT EXISTS ValidPaths (
             id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
             path TEXT UNIQUE NOT NULL,
             hash TEXT NOT NULL,
             registrationTime INTEGER NOT NULL,
             narSize INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS Refs (
             referrer INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
             reference INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE RESTRICT,
             PRIMARY KEY (referrer, reference)
         );
         CREATE TABLE IF NOT EXISTS Roots (
             name TEXT PRIMARY KEY NOT NULL,
             path INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE RESTRICT
         );",
        )
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
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => return Err(db_error(&error)),
        }
    }
    Ok(db)
}
