use std::path::PathBuf;

/// What can go wrong with a cache.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Location(String),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A request to a remote cache failed.
    #[error("{url}: {problem}")]
    Remote { url: String, problem: String },
    /// A remote cache could not be reached (the connection failed before an answer).
    #[error("{url}: cannot reach the cache")]
    Unreachable {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// What a cache holds is not what it claims (a bad narinfo, hash, size, signature).
    #[error("{what}: {problem}")]
    Untrusted { what: String, problem: String },
    /// A path or object that the cache does not have.
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Store(#[from] cudapkgs_store::Error),
    #[error("{0}")]
    Unsupported(String),
    /// Outputs whose licence does not allow the push (see `push::Options::private`).
    #[error("{0}")]
    Licence(String),
}

/// Nix's formats' errors (a NAR of a tree, a store path name) count as the store's, as
/// they did when the store held those formats.
impl From<cudapkgs_nix::Error> for Error {
    fn from(error: cudapkgs_nix::Error) -> Self {
        Error::Store(error.into())
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn untrusted(what: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Untrusted {
            what: what.into(),
            problem: problem.into(),
        }
    }
}

/// `error` and the chain of its sources on one line (`message: cause: cause`), for an
/// answer over HTTP, which has no room for more.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
