//! `cudapkgs build`: CUDA packages from NVIDIA's archives or PyPI's wheels into the
//! store, split into outputs, with dependencies read from the ELF files, runpaths set,
//! GPU targets checked, and `out` as the compatibility view (`realise`, `prepare`,
//! `targets`), from a request resolved to packages with what they require (`resolve`);
//! and what a package provides, read from its archive (`features`).

mod error;
pub mod features;
pub mod prepare;
pub mod realise;
mod record;
pub mod resolve;
pub mod targets;

pub use error::{Error, Missing};
