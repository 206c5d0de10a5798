//! The one error type of this crate: what was wrong, at which offset, and what was
//! expected. Offsets are relative to the start of the file (or archive member) that
//! was being read.

/// Malformed or unsupported device code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes end before a structure does.
    #[error("truncated {what} at offset {offset:#x}: needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// A structure has a value it cannot have.
    #[error("malformed {what} at offset {offset:#x}: {problem}")]
    Malformed {
        what: &'static str,
        offset: u64,
        problem: String,
    },
    /// Decompression failed or produced a different size than the header promised.
    #[error("cannot decompress entry at offset {offset:#x} ({codec}): {problem}")]
    Decompress {
        offset: u64,
        codec: &'static str,
        problem: String,
    },
    /// A file that is not ELF, an archive, a wheel or a fatbin.
    #[error("not a CUDA container: {0}")]
    NotRecognized(String),
    /// An error from the ELF or archive reader.
    #[error("unreadable {what}: {problem}")]
    Object { what: &'static str, problem: String },
}

impl Error {
    pub(crate) fn malformed(what: &'static str, offset: u64, problem: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            offset,
            problem: problem.into(),
        }
    }

    /// Shifts the offset by `base`, for errors found inside a slice that starts at `base`.
    #[must_use]
    pub fn at_base(self, base: u64) -> Self {
        match self {
            Error::Truncated {
                what,
                offset,
                needed,
                available,
            } => Error::Truncated {
                what,
                offset: offset + base,
                needed,
                available,
            },
            Error::Malformed {
                what,
                offset,
                problem,
            } => Error::Malformed {
                what,
                offset: offset + base,
                problem,
            },
            Error::Decompress {
                offset,
                codec,
                problem,
            } => Error::Decompress {
                offset: offset + base,
                codec,
                problem,
            },
            other => other,
        }
    }
}
