//! Which store a database describes, and which database a store folder belongs to.
//!
//! A database records the logical store folder its paths live in (`StoreInfo.storeDir`)
//! and a name of its own (`StoreInfo.storeId`), which it writes as the mark
//! `.cudapkgs-store` into the store folder it first claims. A writing open refuses a
//! folder whose mark is another database's, and a folder without a mark when the database
//! registers paths (the folder was replaced, or it is another folder: the logical folder
//! given without its `--root`, a store wiped and made anew by another database). A store
//! moved as a whole, or reached through a link, carries its mark and stays itself.
//! Collecting or repairing judges a folder's entries by the database's list of valid
//! paths, so that list must be this folder's.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use crate::error::Error;
use crate::store::{Store, sql, unique};

/// The mark's file name in the store folder (no store path is named so, and it is no
/// temporary).
pub(crate) const MARK: &str = ".cudapkgs-store";

/// `StoreInfo` keys.
const STORE_FOLDER: &str = "storeDir";
const STORE_ID: &str = "storeId";
/// Where the database file was when it last wrote: a copy of it, elsewhere, while the
/// original is still there, is another database with the same name.
const DATABASE_FILE: &str = "databaseFile";

impl Store {
    /// Refuses a database whose paths live in another logical folder: a mistyped
    /// `--store-dir` beside the real store shares its default database, and so does a
    /// copied store. A writing open records the folder.
    pub(crate) fn check_described_folder(&self) -> Result<(), Error> {
        let recorded = self.store_info(STORE_FOLDER)?;
        let described = match &recorded {
            Some(folder) => Some(folder.clone()),
            None => self
                .query_paths("SELECT path FROM ValidPaths LIMIT 1")?
                .pop()
                .and_then(|path| path.rsplit_once('/').map(|(folder, _)| folder.to_owned())),
        };
        if let Some(described) = described.filter(|described| described != self.folder.as_str()) {
            return Err(Error::OtherStore {
                database: self.db_path.clone(),
                described,
                given: self.folder.to_string(),
            });
        }
        if self.writable && recorded.is_none() {
            self.set_store_info(STORE_FOLDER, self.folder.as_str())?;
        }
        Ok(())
    }

    /// For a writing open: refuses a folder marked by another database, and an unmarked
    /// one when the database registers paths (a database from before marks claims its
    /// folder now); an unmarked folder of a database without paths is claimed by its
    /// first add.
    pub(crate) fn check_folder_for_writing(&self) -> Result<(), Error> {
        self.refuse_copied_database()?;
        if let (Some(ours), Some(mark)) = (self.store_info(STORE_ID)?, self.read_mark()?)
            && ours == mark
        {
            return Ok(());
        }
        // Judged under the database's write lock, where another open's claim is whole.
        if self.under_write_lock(Self::check_folder_for_writing_locked)? {
            // A database from before marks, with its paths: it claims its folder now.
            self.claim_folder()?;
        }
        Ok(())
    }

    /// Refuses as `check_folder_for_writing` says; true when the folder is to be
    /// claimed now.
    fn check_folder_for_writing_locked(&self) -> Result<bool, Error> {
        match (self.store_info(STORE_ID)?, self.read_mark()?) {
            (Some(ours), Some(mark)) if ours == mark => Ok(false),
            (_, Some(_)) => Err(self.marked_by_another()),
            (Some(_), None) if self.registers_paths()? => Err(Error::UnmarkedFolder {
                folder: self.physical_folder(),
                database: self.db_path.clone(),
            }),
            (None, None) => self.registers_paths(),
            (Some(_), None) => Ok(false),
        }
    }

    /// Runs `work` in a transaction that holds the database's write lock.
    fn under_write_lock<T>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.db
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(sql(&self.db_path))?;
        let done = work(self);
        let end = if done.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.db.execute_batch(end).map_err(sql(&self.db_path))?;
        done
    }

    /// Before an add: makes sure the store folder is this database's, marking it when it
    /// is not marked yet and the database has no paths elsewhere to answer for.
    pub(crate) fn claim_folder(&self) -> Result<(), Error> {
        if let (Some(ours), Some(mark)) = (self.store_info(STORE_ID)?, self.read_mark()?)
            && ours == mark
        {
            return Ok(());
        }
        // The name is committed under the database's write lock first, and the mark
        // written after: an add killed in between leaves a named database and an
        // unmarked folder, which its next add marks (a mark naming no database would
        // refuse it for good). Two first adds of one database take turns and write the
        // same mark; of two databases, one mark wins and the other is refused.
        let ours = self.under_write_lock(Self::claim_name)?;
        if self.read_mark()?.is_some() {
            return self.check_folder_for_writing();
        }
        match self.write_mark(&ours) {
            Err(Error::OtherDatabase { .. }) if self.read_mark()?.as_deref() == Some(&ours) => {
                Ok(())
            }
            other => other,
        }
    }

    /// This database's name, given now if it has none, when the folder may be its
    /// store: not marked by another, and not unmarked while the database has paths.
    fn claim_name(&self) -> Result<String, Error> {
        match (self.store_info(STORE_ID)?, self.read_mark()?) {
            (Some(ours), Some(mark)) if ours == mark => Ok(ours),
            (_, Some(_)) => Err(self.marked_by_another()),
            (Some(_), None) if self.registers_paths()? => Err(Error::UnmarkedFolder {
                folder: self.physical_folder(),
                database: self.db_path.clone(),
            }),
            (Some(ours), None) => Ok(ours),
            (None, None) => {
                let id = format!("{}-{}", std::process::id(), unique());
                self.set_store_info(STORE_ID, &id)?;
                Ok(id)
            }
        }
    }

    /// Refuses a database that is a copy of another one still in place (a root or a state
    /// folder copied whole): both would claim the same folder by the same name, and each
    /// would collect what the other added. A database moved away from its place takes
    /// the new one.
    fn refuse_copied_database(&self) -> Result<(), Error> {
        let here = std::fs::canonicalize(&self.db_path).map_err(|e| Error::io(&self.db_path, e))?;
        let here_text = here.to_string_lossy().into_owned();
        match self.store_info(DATABASE_FILE)? {
            Some(before) if before == here_text => Ok(()),
            Some(before) if Path::new(&before).is_file() => Err(Error::CopiedDatabase {
                database: here,
                original: PathBuf::from(before),
            }),
            _ => self.set_store_info(DATABASE_FILE, &here_text),
        }
    }

    /// For a read-only open: refuses a folder another database marked, when this one
    /// registers paths (one that registers none answers every query with nothing, and a
    /// dry collection refuses the folder's store paths by itself).
    pub(crate) fn check_folder_mark(&self) -> Result<(), Error> {
        if !self.registers_paths()? {
            return Ok(());
        }
        match self.read_mark()? {
            Some(mark) if self.store_info(STORE_ID)?.as_deref() != Some(mark.as_str()) => {
                Err(self.marked_by_another())
            }
            _ => Ok(()),
        }
    }

    fn marked_by_another(&self) -> Error {
        Error::OtherDatabase {
            folder: self.physical_folder(),
            database: self.db_path.clone(),
        }
    }

    fn registers_paths(&self) -> Result<bool, Error> {
        self.db
            .query_row("SELECT EXISTS (SELECT 1 FROM ValidPaths)", [], |row| {
                row.get(0)
            })
            .map_err(sql(&self.db_path))
    }

    /// The mark's contents; `Some("")` for one being written (another open is claiming
    /// the folder), and any mark that is no plain file counts as another's.
    fn read_mark(&self) -> Result<Option<String>, Error> {
        let path = self.physical_folder().join(MARK);
        match path.symlink_metadata() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
            Ok(metadata) if !metadata.is_file() || metadata.len() > 4096 => {
                return Ok(Some(String::new()));
            }
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Some(text.trim_end().to_owned()))
    }

    /// Writes the mark, failing as another's when one appeared meanwhile (two first
    /// adds with different databases: only one claims the folder).
    fn write_mark(&self, id: &str) -> Result<(), Error> {
        let path = self.physical_folder().join(MARK);
        // Written whole beside it, then linked into place: no other open ever reads a
        // mark half written, and a link to an existing name fails, so one mark wins.
        let whole = self.temporary("-mark");
        let written = std::fs::File::create(&whole).and_then(|mut file| {
            writeln!(file, "{id}")?;
            // Read-only, as everything in a store folder is.
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o444))?;
            file.sync_all()
        });
        let placed = written.and_then(|()| std::fs::hard_link(&whole, &path));
        let _ = std::fs::remove_file(&whole);
        match placed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(self.marked_by_another())
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn store_info(&self, key: &str) -> Result<Option<String>, Error> {
        self.db
            .query_row(
                "SELECT value FROM StoreInfo WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql(&self.db_path))
    }

    fn set_store_info(&self, key: &str, value: &str) -> Result<(), Error> {
        self.db
            .execute(
                "INSERT OR REPLACE INTO StoreInfo (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .map(drop)
            .map_err(sql(&self.db_path))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::store::{Access, Scan, Store};

    use super::MARK;

    fn open(dir: &Path) -> Store {
        Store::open_with(
            "/nix/store",
            Some(&dir.join("root")),
            &dir.join("state"),
            Access::Create,
        )
        .expect("open")
    }

    #[test]
    fn an_add_killed_while_it_claims_the_folder_leaves_it_claimable() {
        let dir = tempfile::tempdir().expect("temp");
        let store = open(dir.path());
        // Killed after its name was committed, before its mark was written.
        store.under_write_lock(Store::claim_name).expect("named");
        drop(store);
        let mark = dir.path().join("root/nix/store").join(MARK);
        assert!(!mark.exists());
        let source = dir.path().join("src");
        std::fs::create_dir(&source).expect("mkdir");
        std::fs::write(source.join("f"), "x").expect("write");
        let mut store = open(dir.path());
        store
            .add(&source, "src", &Scan::Nothing, None)
            .expect("the next add works");
        assert!(mark.is_file());
        assert_eq!(
            store.read_mark().expect("read"),
            store.store_info(super::STORE_ID).expect("read")
        );
    }
}
