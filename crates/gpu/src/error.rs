//! What can go wrong talking to the driver or a CUDA library.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no NVIDIA driver found (looked in {})", looked_in(.0))]
    NoDriver(Vec<PathBuf>),
    #[error(
        "{}: a stub of the driver (CUDA_ERROR_STUB_LIBRARY), not the driver itself",
        .0.display()
    )]
    Stub(PathBuf),
    #[error("cannot load {}: {message}", .path.display())]
    Load { path: PathBuf, message: String },
    #[error("{}: no symbol {symbol}", .path.display())]
    Symbol { path: PathBuf, symbol: String },
    #[error("{call} failed: {name} ({code})")]
    Cuda {
        call: &'static str,
        code: i32,
        name: String,
    },
    #[error("{library}: {call} returned {code}")]
    Library {
        library: &'static str,
        call: &'static str,
        code: i32,
    },
    #[error("{0}")]
    Wrong(String),
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn looked_in(folders: &[PathBuf]) -> String {
    if folders.is_empty() {
        return "nowhere".to_owned();
    }
    folders
        .iter()
        .map(|folder| folder.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl GpuError {
    /// The message and the chain of its sources on one line (`message: cause`), for a
    /// result that carries the failure as text (a probe's, a smoke test's).
    pub(crate) fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(inner) = cause {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            cause = inner.source();
        }
        text
    }
}
