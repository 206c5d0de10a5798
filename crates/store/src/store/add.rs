//! Adding a tree: one state of it is copied into the store folder while its NAR is
//! hashed and scanned for references, then placed under its store path and registered.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cudapkgs_nix::StorePath;
use cudapkgs_nix::base32;
use cudapkgs_nix::nar::{HashingWriter, under};
use cudapkgs_nix::scan::ReferenceScanner;
use cudapkgs_nix::store_path::{check_name, hash_part};
use rusqlite::params;

use super::{PathInfo, Scan, Store, lock_path, sql};
use crate::copy;
use crate::error::Error;
use crate::gc::check_root_name;
use crate::snapshot::Tee;

impl Store {
    /// The hash parts of every valid path, for reference scanning.
    pub(super) fn valid_hash_parts(&self) -> Result<Vec<([u8; 32], String)>, Error> {
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
    ) -> Result<StorePath, Error> {
        let info = self.add_with_info(source, name, scan, gc_root)?;
        Ok(self.folder.parse(&info.path)?)
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
        check_name(name)?;
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
                .closure(&self.parse_paths(inputs)?)?
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
        self.info(&added)?
            .ok_or(Error::NotValid(added.into_string()))
    }

    /// An error about one of an add's `temporaries` (copies of `source`, removed by the
    /// time anyone reads the message) told as a failure to copy the file of `source`.
    pub(super) fn named_by_source(
        &self,
        error: Error,
        source: &Path,
        temporaries: &[&Path],
    ) -> Error {
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
    pub(super) fn stage_and_place(
        &mut self,
        source: &Path,
        name: &str,
        candidates: &[([u8; 32], String)],
        work: &Path,
        staged: &Path,
    ) -> Result<StorePath, Error> {
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
        let path = self.folder.source_path(name, &hash, &references, false)?;
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
    pub(super) fn register(
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
}
