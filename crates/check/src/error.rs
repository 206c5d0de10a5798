//! The one error type of this crate.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] cudapkgs_store::Error),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Policy { path: PathBuf, problem: String },
    /// A policy file that TOML, or the policy's fields, do not read.
    #[error("{path}: not a policy file")]
    PolicySyntax {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// A package's record of its files that cannot be read as one.
    #[error("{path}: {problem}")]
    Record { path: PathBuf, problem: String },
    #[error("`{0}` is no package name")]
    BadName(String),
    #[error(
        "no rule `{0}` (the rules: denied, toolkit, static-library, header, stub-library, stub-runpath, unresolved, driver, missing-target, unrequested-target)"
    )]
    UnknownRule(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}
