//! Binary caches in Nix's protocol.
//!
//! A cache is a set of objects under keys (`nix-cache-info`, `<hash>.narinfo`,
//! `nar/<file hash>.nar.<ext>`) in a `Backend`: a folder (`file://`), an HTTP cache that
//! accepts `PUT` (`http(s)://`), or an S3 bucket (`s3://`). `push` writes the closures of
//! store paths into one, `substitute` brings paths from one into a store after checking
//! signatures, hashes and sizes, and `serve` answers Nix's HTTP requests from a cache or
//! straight from a store; `collect` removes what killed pushes left in a folder cache;
//! `records` keeps builds' records beside their outputs, signed.

pub mod backend;
pub mod collect;
pub mod compress;
mod error;
pub mod location;
pub mod push;
pub mod records;
pub mod serve;
mod sigv4;
pub mod substitute;
mod verify;

pub use error::Error;

/// The key of a store path's narinfo in a cache.
pub fn narinfo_key(hash_part: &str) -> String {
    format!("{hash_part}.narinfo")
}

/// The key of the cache's description.
pub const CACHE_INFO_KEY: &str = "nix-cache-info";

/// The largest narinfo read (they are well under a KiB).
pub(crate) const NARINFO_LIMIT: u64 = 1 << 20;
