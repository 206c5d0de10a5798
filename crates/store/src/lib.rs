//! A store compatible with Nix's, registered in SQLite (`store`), with what builds
//! remember (`records`), its roots and collections (`gc`): reading NARs back into trees
//! (`restore`), copying a tree as one state of it (`snapshot`), and where a store lives
//! by default (`location`). Nix's formats that need no database (base-32, NARs, store
//! paths, reference scanning) are `cudapkgs_nix`'s.

mod copy;
pub mod diff;
mod error;
pub mod gc;
mod identity;
pub mod location;
mod pipe;
mod records;
pub mod restore;
pub mod snapshot;
pub mod store;
pub mod why;

pub use error::{Corruption, Error};
pub use records::{GpuCheckRecord, check_time};

/// The folder `path` is in (`.` for a bare name).
pub(crate) fn folder_of(path: &std::path::Path) -> &std::path::Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    }
}
