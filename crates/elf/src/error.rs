//! The one error type of this crate.

/// A file this crate cannot read or change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF file at offset {offset:#x}: {problem}")]
    Malformed { offset: u64, problem: String },
    #[error(
        "no dynamic section: a static executable or an object file has no runpath or needed libraries to change"
    )]
    NoDynamicSection,
    #[error("cannot rewrite this file: {0}")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn malformed(offset: u64, problem: impl Into<String>) -> Self {
        Error::Malformed {
            offset,
            problem: problem.into(),
        }
    }
}
