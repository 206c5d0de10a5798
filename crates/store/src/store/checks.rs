//! What a writing open refuses before it changes anything: a folder that holds entries
//! no store puts there, and store paths that the database does not know.

use std::collections::HashSet;
use std::path::Path;

use cudapkgs_nix::store_path::is_store_path_name;

use super::{Store, TEMP_PREFIX, is_lock_file, sql};
use crate::error::Error;
use crate::identity::MARK;

impl Store {
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
    pub(super) fn known(&self) -> Result<(HashSet<String>, HashSet<String>), Error> {
        let read = self
            .db
            .unchecked_transaction()
            .map_err(sql(&self.db_path))?;
        let valid = self.query_paths("SELECT path FROM ValidPaths")?;
        let pending = self.query_paths("SELECT path FROM Pending")?;
        read.finish().map_err(sql(&self.db_path))?;
        Ok((valid.into_iter().collect(), pending.into_iter().collect()))
    }
}

/// Whether the database file does not exist yet (or is empty, which SQLite takes for
/// a new database).
pub(super) fn database_is_new(path: &Path) -> bool {
    path.symlink_metadata().map_or(true, |m| m.len() == 0)
}

/// Fails with `Error::ForeignEntries` when the folder about to become a store holds
/// entries that no store puts there: it is somebody's folder, given by mistake, and a
/// store there would one day collect what it does not know.
pub(super) fn refuse_foreign_entries(folder: &Path) -> Result<(), Error> {
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
pub(super) fn refuse_unknown_paths(
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
