//! The one error type of this crate.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Unsupported { path: PathBuf, what: String },
    #[error("{0}: changed while it was being read")]
    Changed(PathBuf),
    /// Writing the copy of `path` into the store failed (a full disk, say); the
    /// temporary copy is gone, so the message names the file that was being copied.
    #[error("{path}: cannot copy it into the store folder {folder}")]
    Copying {
        path: PathBuf,
        folder: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid store path name `{0}`: use letters, digits and +-._?=, not starting with a dot, at most 211 bytes"
    )]
    BadName(String),
    #[error("malformed NAR at offset {offset:#x}: {problem}")]
    BadNar { offset: u64, problem: String },
    #[error("{0} is not a valid path of this store")]
    NotValid(String),
    #[error("invalid root name `{0}`: use letters, digits and +-._@=:, at most 200 bytes")]
    BadRootName(String),
    #[error(
        "`{0}` is neither a store path nor the name of a root (`cudapkgs store root list` shows them)"
    )]
    NoRoot(String),
    #[error("the store folder `{0}` must be an absolute path")]
    RelativeStoreDir(String),
    #[error("there is no store at {0}")]
    NoStore(PathBuf),
    #[error("the store folder {folder} has no database at {database}")]
    NoDatabase { folder: PathBuf, database: PathBuf },
    /// The database registers nothing, yet the folder holds store paths: it is another
    /// store's folder, or this store's database was lost. Deleting would take them all.
    #[error(
        "the store folder {folder} holds {count} store path{plural} (such as {example}) that the database {database} does not know; nothing was changed",
        plural = if *count == 1 { "" } else { "s" }
    )]
    UnknownPaths {
        folder: PathBuf,
        database: PathBuf,
        count: usize,
        example: String,
    },
    /// The folder about to become a store holds entries no store puts there.
    #[error(
        "{folder} is not empty and is no store folder: it holds {count} entr{plural} that {are} no store path{s} (such as `{example}`); nothing was changed",
        plural = if *count == 1 { "y" } else { "ies" },
        are = if *count == 1 { "is" } else { "are" },
        s = if *count == 1 { "" } else { "s" }
    )]
    ForeignEntries {
        folder: PathBuf,
        count: usize,
        example: String,
    },
    /// The database's paths live in another logical store folder.
    #[error(
        "the database {database} describes the store folder {described}, not {given}; nothing was changed"
    )]
    OtherStore {
        database: PathBuf,
        described: String,
        given: String,
    },
    /// Nix's database holds a transaction a killed Nix left unfinished.
    #[error(
        "{0} holds a transaction that a killed Nix command left unfinished; nothing was read or changed"
    )]
    NixUnfinished(PathBuf),
    /// The store folder is also a Nix store's, with Nix's database beside it.
    #[error(
        "the store folder {folder} is also Nix's store (its database is {database}): cudapkgs would judge Nix's paths as its own; nothing was changed"
    )]
    SharedWithNix { folder: PathBuf, database: PathBuf },
    /// The database is a copy of one still in place.
    #[error(
        "the database {database} is a copy of {original}, which is still there: both would take the same store for their own; nothing was changed"
    )]
    CopiedDatabase {
        database: PathBuf,
        original: PathBuf,
    },
    /// The store folder is marked as another database's.
    #[error(
        "the store folder {folder} is marked as the store of another database than {database} (or that store's database was lost or replaced); nothing was changed"
    )]
    OtherDatabase { folder: PathBuf, database: PathBuf },
    /// The database registers paths, and the store folder has no mark of it.
    #[error(
        "the database {database} registers paths, but the store folder {folder} is not the one it was made for (it has no mark of that store: it was removed or replaced, or it is another folder); nothing was changed"
    )]
    UnmarkedFolder { folder: PathBuf, database: PathBuf },
    /// A writing command, or a collection, pointed at Nix's own database.
    #[error(
        "{0} is Nix's database: its store is only read (path-info, closure, why, diff, store verify), never changed, and its roots are Nix's"
    )]
    NixDatabase(PathBuf),
    #[error("{path} is not a usable store database")]
    CorruptDatabase {
        path: PathBuf,
        #[source]
        source: Corruption,
    },
    #[error(
        "{0} holds a transaction that a killed process left unfinished, which only a user who can write it can roll back"
    )]
    Interrupted(PathBuf),
    #[error("{0}: this user cannot write it")]
    NotWritable(PathBuf),
    #[error("store database {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the store was opened read-only; {0} needs a store opened for writing")]
    ReadOnly(&'static str),
    #[error("store database: {0}")]
    Database(String),
    /// What Nix's formats refuse (other than the kinds above).
    #[error(transparent)]
    Nix(cudapkgs_nix::Error),
}

/// What makes a file no usable store database.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    /// SQLite's own judgement: not a database, or a damaged one.
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// A database, but not one with a store's tables.
    #[error("it has no {0} table")]
    MissingTable(&'static str),
}

/// Nix's formats' errors as this crate's: the kinds both have keep their variant here,
/// so that callers match one of them.
impl From<cudapkgs_nix::Error> for Error {
    fn from(error: cudapkgs_nix::Error) -> Self {
        use cudapkgs_nix::Error as Nix;
        match error {
            Nix::Io { path, source } => Error::Io { path, source },
            Nix::Unsupported { path, what } => Error::Unsupported { path, what },
            Nix::Changed(path) => Error::Changed(path),
            Nix::BadName(name) => Error::BadName(name),
            Nix::RelativeStoreDir(dir) => Error::RelativeStoreDir(dir),
            other => Error::Nix(other),
        }
    }
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// The same error with a path under `from` named as the same place under `to`: a
    /// temporary that is removed afterwards is named by what it stands for.
    pub(crate) fn relocated(self, from: &Path, to: &Path) -> Self {
        let moved = |path: PathBuf| match path.strip_prefix(from) {
            Ok(rest) if rest.as_os_str().is_empty() => to.to_owned(),
            Ok(rest) => to.join(rest),
            Err(_) => path,
        };
        match self {
            Error::Io { path, source } => Error::Io {
                path: moved(path),
                source,
            },
            Error::Unsupported { path, what } => Error::Unsupported {
                path: moved(path),
                what,
            },
            Error::Changed(path) => Error::Changed(moved(path)),
            other => other,
        }
    }
}
