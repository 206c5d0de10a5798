//! Nix's binary-cache formats, without a database: store path names (`store_path`),
//! narinfo files and their fingerprints (`narinfo`), `nix-cache-info` (`cache_info`),
//! ed25519 signing keys and signatures as Nix writes them (`signature`), and local
//! store URIs (`store_uri`).
//!
//! Everything here reads untrusted bytes: parsers never panic and name the line of what
//! they refuse.

pub mod cache_info;
mod error;
pub mod narinfo;
pub mod signature;
pub mod store_path;
pub mod store_uri;

pub use error::Error;
