//! The one error type of this crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A manifest or index that does not have the expected shape; `at` is a JSON path.
    #[error("{origin}: {at}: {problem}")]
    BadDocument {
        origin: String,
        at: String,
        problem: String,
    },
    /// A manifest or index page that does not parse as JSON at all.
    #[error("{origin}: {at}: not {what}")]
    NotJson {
        origin: String,
        at: String,
        /// What the text should have been (`JSON`, `the JSON form of a simple index page`).
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url}: {problem}")]
    Download { url: String, problem: String },
    /// A server that answered that it has no such file (HTTP 404).
    #[error("{url}: HTTP 404: not found")]
    Absent { url: String },
    /// What the fetcher would have to download while it may not use the network.
    #[error("{url}: not in the download cache, and the network is not used")]
    Offline { url: String },
    /// A download past its bound: the size its index or manifest gave, or the fetcher's
    /// maximum; nothing of it was kept.
    #[error("{url}: {problem}")]
    TooLarge { url: String, problem: String },
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}; the download was deleted")]
    HashMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    /// An archive refused for safety or damage; nothing of it was kept.
    #[error("{archive}: {problem}; nothing was unpacked")]
    BadArchive { archive: PathBuf, problem: String },
    /// A pkg-config or CMake file of a package that points at the system's `/usr/`.
    #[error("{path}: line {line}: `{text}` refers to /usr/")]
    UsrReference {
        path: PathBuf,
        line: usize,
        text: String,
    },
    /// A package tree the fix-ups or the split refuse.
    #[error("{path}: {problem}")]
    BadPackage { path: PathBuf, problem: String },
    #[error("{0}")]
    NotFound(String),
    /// A mirror that has no manifest of the release: another release, or another mirror.
    #[error("{url}: no manifest for {redist} {release}")]
    NoManifest {
        url: String,
        redist: String,
        release: String,
    },
    /// A mirror that has no folder of the product.
    #[error("{url}: no release folder for {redist}")]
    NoReleaseFolder { url: String, redist: String },
}

impl Error {
    /// The same error naming `archive` (and the path inside it) where it named `tree`,
    /// the work folder the archive was unpacked in, which is gone when anyone reads it.
    #[must_use]
    pub fn naming_archive(self, tree: &std::path::Path, archive: &std::path::Path) -> Self {
        let named = |path: PathBuf| match path.strip_prefix(tree) {
            Ok(inside) if inside.as_os_str().is_empty() => archive.to_owned(),
            Ok(inside) => archive.join(inside),
            Err(_) => path,
        };
        match self {
            Error::BadPackage { path, problem } => Error::BadPackage {
                path: named(path),
                problem,
            },
            Error::UsrReference { path, line, text } => Error::UsrReference {
                path: named(path),
                line,
                text,
            },
            other => other,
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}
