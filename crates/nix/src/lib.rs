//! Nix's formats, without a database: base-32 (`base32`), NAR serialisation and hashing
//! (`nar`), store paths, their names and the paths of trees added by content
//! (`store_path`), reference scanning (`scan`), narinfo files and their fingerprints
//! (`narinfo`), `nix-cache-info` (`cache_info`), ed25519 signing keys and signatures as
//! Nix writes them (`signature`), local store URIs (`store_uri`), and the notations of
//! a hash (`hash`).
//!
//! The parsers read untrusted bytes: they never panic and name the line of what they
//! refuse.

pub mod base32;
pub mod cache_info;
mod error;
pub mod hash;
pub mod lock;
pub mod nar;
pub mod narinfo;
pub mod scan;
pub mod signature;
pub mod store_path;
pub mod store_uri;

pub use error::Error;
pub use store_path::{StoreDir, StorePath};
