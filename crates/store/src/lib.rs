//! The store's formats, compatible with Nix: base-32 (`base32`), NAR serialisation and
//! hashing (`nar`), reading NARs back into trees (`restore`), and store paths of trees
//! added by content (`path`), reference scanning (`scan`), copying a tree as one state
//! of it (`snapshot`), and a store registered in SQLite (`store`) with what builds
//! remember (`records`); where a store lives by default (`location`).

pub mod base32;
mod copy;
pub mod diff;
mod error;
pub mod gc;
mod identity;
pub mod location;
pub mod nar;
pub mod path;
mod pipe;
mod records;
pub mod restore;
pub mod scan;
pub mod snapshot;
pub mod store;
pub mod why;

pub use error::Error;
pub use records::{GpuCheckRecord, check_time};

/// The folder `path` is in (`.` for a bare name).
pub(crate) fn folder_of(path: &std::path::Path) -> &std::path::Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    }
}
