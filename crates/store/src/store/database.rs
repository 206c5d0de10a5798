//! The database: opening it (read-only, or writable and created), its tables and the
//! tables older stores lack (created when missing), telling Nix's own database apart,
//! and the pending marks.

use std::fmt::Write as _;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use super::Store;
use crate::error::{Corruption, Error};

/// The database's file name in the state folder.
pub(super) const DATABASE: &str = "db.sqlite";

/// Turns SQLite's errors about the database at `database` into this crate's, naming it.
pub(crate) fn sql(database: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |error| match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::CorruptDatabase {
                path: database.to_owned(),
                source: Corruption::Sqlite(error),
            }
        }
        Some(rusqlite::ErrorCode::ReadOnly) => Error::NotWritable(database.to_owned()),
        _ => Error::Sqlite {
            path: database.to_owned(),
            source: error,
        },
    }
}

impl Store {
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
    pub(super) fn mark_pending(&self, path: &str) -> Result<(), Error> {
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
}

/// The tables and their columns; `Pending` holds the paths whose trees may be present
/// without being valid; `BuildRecords` and `FileHashes` are what builds remember
/// (`records.rs`); `GpuChecks` the latest result of each check of a path on each GPU.
pub(super) const TABLES: [(&str, &str); 8] = [
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
pub(super) const ADDED_LATER: [&str; 5] = [
    "Pending",
    "BuildRecords",
    "StoreInfo",
    "FileHashes",
    "GpuChecks",
];

/// `CREATE TABLE` statements for `tables` (temporary ones: in memory, for this
/// connection only).
pub(super) fn create_tables<'a>(
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
pub(super) fn open_immutable(path: &Path) -> rusqlite::Result<(Connection, Vec<String>)> {
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
pub(super) fn is_nix_schema(tables: &[String]) -> bool {
    tables.iter().any(|table| table == "DerivationOutputs")
}

/// Whether the database at `path` is Nix's: by the files Nix keeps beside it (its
/// `big-lock` and `schema`, readable while Nix holds the database busy), or by its
/// tables.
pub(super) fn is_nix_database(path: &Path) -> bool {
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
pub(super) fn open_read_only(path: &Path) -> Result<(Connection, bool), Error> {
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
            source: Corruption::MissingTable(missing[0].0),
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
pub(super) fn open_writable(path: &Path) -> Result<Connection, Error> {
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
