//! The one error type of this crate.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Redist(#[from] cudapkgs_redist::Error),
    #[error(transparent)]
    Store(#[from] cudapkgs_store::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A needed library that no package of the set provides and the system does not have.
    #[error(
        "{package}: {file} needs {library}, which no package of the set provides (add the package that has it)"
    )]
    Unresolved {
        package: String,
        file: String,
        library: String,
    },
    #[error("the packages need each other in a cycle: {0}")]
    Cycle(String),
    /// `--strict-targets` and a kernel with no usable image.
    #[error("{0}")]
    Targets(String),
    #[error("{path}: {problem}")]
    Elf {
        path: std::path::PathBuf,
        problem: String,
    },
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}
