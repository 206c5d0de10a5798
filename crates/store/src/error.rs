//! The one error type of this crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Unsupported { path: PathBuf, what: String },
    #[error("{0}: changed while being read; nothing was stored")]
    Changed(PathBuf),
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
    #[error("store database: {0}")]
    Database(String),
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}
