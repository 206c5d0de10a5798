//! The one error type of this crate.

/// A file this crate cannot read or change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF file at offset {offset:#x}: {problem}")]
    Malformed { offset: u64, problem: String },
}
