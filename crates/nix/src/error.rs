use std::path::{Path, PathBuf};

/// What the formats refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A narinfo or nix-cache-info file that does not parse; `line` counts from 1.
    #[error("line {line}: {problem}")]
    Malformed { line: usize, problem: String },
    /// A file that parses but lacks what Nix requires, or holds a value out of range.
    #[error("{0}")]
    Invalid(String),
    /// A signing or public key that is not `name:base64` of the right length.
    #[error("not a Nix {kind} key: {problem}")]
    Key { kind: &'static str, problem: String },
    /// The operating system's random source failed (key generation).
    #[error("no randomness for a new key: the system's random source failed")]
    Random,
    /// Reading a tree to serialise it failed.
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A node a NAR cannot hold (a FIFO, a socket, a device) or a tree nested too deep.
    #[error("{path}: {what}")]
    Unsupported { path: PathBuf, what: String },
    /// The tree changed while it was being serialised.
    #[error("{0}: changed while it was being read")]
    Changed(PathBuf),
    #[error(
        "invalid store path name `{0}`: use letters, digits and +-._?=, not starting with a dot, at most 211 bytes"
    )]
    BadName(String),
    /// Not a store path: the reason says what is wrong.
    #[error("{0}")]
    BadStorePath(String),
    #[error("the store folder `{0}` must be an absolute path")]
    RelativeStoreDir(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}
