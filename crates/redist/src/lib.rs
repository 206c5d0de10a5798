//! NVIDIA's CUDA redistributables: manifests (`manifest`), verified and cached downloads
//! (`fetch`), safe unpacking (`unpack`), fix-ups and the split into outputs (`split`),
//! PyPI wheels as a second source (`pypi`, with `requirement` for their dependencies),
//! and which package provides which library (`providers`).

mod error;
pub mod fetch;
pub mod manifest;
pub mod package;
pub mod parallel;
pub mod providers;
pub mod pypi;
pub mod requirement;
pub mod source;
pub mod split;
pub mod unpack;

pub use error::Error;
