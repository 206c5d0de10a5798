//! The one error type of this crate.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `[upkeep]` table asks for something that cannot be done.
    #[error("[upkeep]: {0}")]
    Config(String),
    #[error("{0}")]
    Shard(String),
    /// A plan asked to spread over no runner at all.
    #[error("a plan needs at least one shard")]
    NoShards,
    /// A GitHub repository that is not `OWNER/NAME`.
    #[error("`{0}` is no GitHub repository: expected OWNER/NAME")]
    BadRepository(String),
    #[error("results database {path}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("results database {path}: {problem}")]
    Schema { path: PathBuf, problem: String },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The issue tracker refused or could not be reached.
    #[error("{method} {url}: {problem}")]
    Tracker {
        method: &'static str,
        url: String,
        problem: String,
    },
    /// A request to the issue tracker that got no answer to read.
    #[error("{method} {url}")]
    TrackerUnreachable {
        method: &'static str,
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// An answer of the issue tracker that is not the JSON it promised.
    #[error("{method} {url}: the answer is not JSON")]
    TrackerAnswer {
        method: &'static str,
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Catalog(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn database(path: &Path, source: rusqlite::Error) -> Self {
        Error::Database {
            path: path.to_owned(),
            source,
        }
    }
}
