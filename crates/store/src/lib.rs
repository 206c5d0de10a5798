//! The store's formats, compatible with Nix: base-32 (`base32`), NAR serialisation and
//! hashing (`nar`), reading NARs back into trees (`restore`), and store paths of trees
//! added by content (`path`).

pub mod base32;
mod error;
pub mod nar;
pub mod path;
pub mod restore;

pub use error::Error;
