//! Store paths: `<store dir>/<32 characters of Nix base-32>-<name>`, the rules their names
//! follow, and the paths Nix computes for trees added by content (`nix-store --add`):
//! the hash made from the NAR's SHA-256, the references, the store folder and the name.
//!
//! `StoreDir` and `StorePath` are the checked forms: a value of either type was checked
//! once, where it was made, and is never malformed.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::base32;
use crate::error::Error;

/// Length of a store path's hash part.
pub const HASH_LEN: usize = 32;

/// The store folder a real Nix uses.
pub const NIX_STORE_DIR: &str = "/nix/store";

/// The longest name Nix accepts after the hash part.
const MAX_NAME_LEN: usize = 211;

/// Whether every byte of `text` is in Nix's base-32 alphabet.
pub fn is_nix32(text: &str) -> bool {
    text.bytes().all(|byte| base32::ALPHABET.contains(&byte))
}

/// Whether `text` is a store path hash part.
pub fn is_hash_part(text: &str) -> bool {
    text.len() == HASH_LEN && is_nix32(text)
}

/// What is wrong with a store path name (the part after `<hash>-`), if anything, as
/// the end of a sentence about it: Nix
/// accepts letters, digits and `+-._?=`, not starting with a dot, 1 to 211 bytes.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Some(format!(
            "has a name of {} bytes (1 to {MAX_NAME_LEN} allowed)",
            name.len()
        ));
    }
    if name.starts_with('.') {
        return Some("has a name starting with '.'".to_owned());
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(*c)))
        .map(|bad| format!("holds {bad:?}, which store names may not"))
}

/// Checks a store path name (what follows the hash part and `-`).
pub fn check_name(name: &str) -> Result<(), Error> {
    match name_problem(name) {
        None => Ok(()),
        Some(_) => Err(Error::BadName(name.to_owned())),
    }
}

/// Checks a store path's base name (`<hash>-<name>`), saying what is wrong.
pub fn check_base_name(base: &str) -> Result<(), String> {
    let Some((hash, name)) = base.split_at_checked(HASH_LEN) else {
        return Err(format!("{base:?} is too short for a store path name"));
    };
    if !is_nix32(hash) {
        return Err(format!(
            "{base:?} does not start with a hash part of Nix base-32"
        ));
    }
    let Some(name) = name.strip_prefix('-') else {
        return Err(format!("{base:?} has no '-' after its hash part"));
    };
    match name_problem(name) {
        None => Ok(()),
        Some(problem) => Err(format!("{base:?} {problem}")),
    }
}

/// Whether a store folder entry is named like a store path: 32 characters of Nix's
/// base-32 (a 20-byte hash), `-`, and a valid name.
pub fn is_store_path_name(entry: &str) -> bool {
    check_base_name(entry).is_ok()
}

/// The base name of `path` if it is a well-formed store path directly in `store_dir`.
pub fn base_name<'a>(store_dir: &str, path: &'a str) -> Result<&'a str, String> {
    let base = path
        .strip_prefix(store_dir)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| format!("{path:?} is not in the store folder {store_dir}"))?;
    check_base_name(base)?;
    Ok(base)
}

/// The hash part of a store path or base name that `check_base_name` accepted.
pub fn hash_part_of(base: &str) -> &str {
    let base = base.rsplit('/').next().unwrap_or(base);
    base.get(..HASH_LEN).unwrap_or(base)
}

/// The 32 bytes of a store path's hash part (its base name's start), as the reference
/// scanner looks for them; `None` for a base name shorter than that.
pub fn hash_part(path: &str) -> Option<[u8; HASH_LEN]> {
    path.rsplit('/')
        .next()?
        .as_bytes()
        .get(..HASH_LEN)?
        .try_into()
        .ok()
}

/// The store path of a tree added by content: type `source`, its references (full store
/// paths), and whether it refers to itself.
pub fn source_path(
    store_dir: &str,
    name: &str,
    nar_sha256: &[u8; 32],
    references: &[String],
    self_reference: bool,
) -> Result<String, Error> {
    check_name(name)?;
    let mut kind = String::from("source");
    let mut sorted: Vec<&String> = references.iter().collect();
    sorted.sort();
    for reference in sorted {
        kind.push(':');
        kind.push_str(reference);
    }
    if self_reference {
        kind.push_str(":self");
    }
    let hex = nar_sha256
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
    let fingerprint = format!("{kind}:sha256:{hex}:{store_dir}:{name}");
    let digest: [u8; 32] = Sha256::digest(fingerprint.as_bytes()).into();
    // Nix folds the digest to 20 bytes by XOR before printing it.
    let mut folded = [0u8; 20];
    for (i, byte) in digest.iter().enumerate() {
        folded[i % 20] ^= byte;
    }
    Ok(format!("{store_dir}/{}-{name}", base32::encode(&folded)))
}

/// A logical store folder: absolute, without a trailing `/` (`/nix/store`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreDir(String);

impl StoreDir {
    /// Checks `dir` (trailing slashes are dropped); a relative folder is refused.
    pub fn new(dir: &str) -> Result<StoreDir, Error> {
        let dir = dir.trim_end_matches('/');
        if !dir.starts_with('/') {
            return Err(Error::RelativeStoreDir(dir.to_owned()));
        }
        Ok(StoreDir(dir.to_owned()))
    }

    /// Nix's own store folder, `/nix/store`.
    pub fn nix() -> StoreDir {
        StoreDir(NIX_STORE_DIR.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` checked to be a store path directly in this folder.
    pub fn parse(&self, path: &str) -> Result<StorePath, Error> {
        base_name(&self.0, path).map_err(Error::BadStorePath)?;
        Ok(StorePath {
            full: path.to_owned(),
            dir_len: self.0.len(),
        })
    }

    /// The store path of `base` (`<hash>-<name>`) in this folder.
    pub fn join(&self, base: &str) -> Result<StorePath, Error> {
        check_base_name(base).map_err(Error::BadStorePath)?;
        Ok(StorePath {
            full: format!("{}/{base}", self.0),
            dir_len: self.0.len(),
        })
    }

    /// The path of a tree added by content (see `source_path`).
    pub fn source_path(
        &self,
        name: &str,
        nar_sha256: &[u8; 32],
        references: &[String],
        self_reference: bool,
    ) -> Result<StorePath, Error> {
        let full = source_path(&self.0, name, nar_sha256, references, self_reference)?;
        Ok(StorePath {
            full,
            dir_len: self.0.len(),
        })
    }
}

impl std::fmt::Display for StoreDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StoreDir {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A store path: a store folder, a hash part and a name, checked. `Display` (and
/// `as_str`) give the full path, `/nix/store/<hash>-<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath {
    full: String,
    /// Where the store folder ends (the `/` before the base name).
    dir_len: usize,
}

impl StorePath {
    /// Checks a full store path: an absolute store folder, then `/<hash>-<name>`.
    pub fn parse(path: &str) -> Result<StorePath, Error> {
        let (dir, _) = path
            .rsplit_once('/')
            .ok_or_else(|| Error::BadStorePath(format!("{path:?} is not a store path")))?;
        StoreDir::new(dir)
            .map_err(|_| {
                Error::BadStorePath(format!("{path:?} is not in an absolute store folder"))
            })?
            .parse(path)
    }

    /// The full path.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The store folder it is in.
    pub fn dir(&self) -> &str {
        &self.full[..self.dir_len]
    }

    /// `<hash>-<name>`.
    pub fn base_name(&self) -> &str {
        &self.full[self.dir_len + 1..]
    }

    /// The 32 characters of Nix base-32.
    pub fn hash_part(&self) -> &str {
        &self.base_name()[..HASH_LEN]
    }

    /// What follows the hash part and `-`.
    pub fn name(&self) -> &str {
        &self.base_name()[HASH_LEN + 1..]
    }

    /// The full path, taken.
    pub fn into_string(self) -> String {
        self.full
    }
}

impl std::fmt::Display for StorePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full)
    }
}

/// A store path is read as its full path wherever a `&str` is wanted.
impl std::ops::Deref for StorePath {
    type Target = str;

    fn deref(&self) -> &str {
        &self.full
    }
}

impl AsRef<str> for StorePath {
    fn as_ref(&self) -> &str {
        &self.full
    }
}

impl std::borrow::Borrow<str> for StorePath {
    fn borrow(&self) -> &str {
        &self.full
    }
}

impl PartialEq<str> for StorePath {
    fn eq(&self, other: &str) -> bool {
        self.full == other
    }
}

impl PartialEq<&str> for StorePath {
    fn eq(&self, other: &&str) -> bool {
        self.full == *other
    }
}

impl PartialEq<String> for StorePath {
    fn eq(&self, other: &String) -> bool {
        &self.full == other
    }
}

impl From<StorePath> for String {
    fn from(path: StorePath) -> String {
        path.full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_nix_rules() {
        let hash = "0123456789abcdfghijklmnpqrsvwxyz";
        assert!(check_base_name(&format!("{hash}-hello-2.12")).is_ok());
        assert!(check_base_name(&format!("{hash}-a+b=c?d_e.f")).is_ok());
        for bad in [
            format!("{hash}hello"),
            format!("{hash}-"),
            format!("{hash}-.hidden"),
            format!("{hash}-a/b"),
            format!("{hash}-ü"),
            format!("{}-x", "e".repeat(32)),
            "short".to_owned(),
            format!("{hash}-{}", "x".repeat(212)),
        ] {
            assert!(check_base_name(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            base_name("/nix/store", &format!("/nix/store/{hash}-x")),
            Ok(&*format!("{hash}-x"))
        );
        assert!(base_name("/nix/store", &format!("/nix/store/sub/{hash}-x")).is_err());
        assert!(base_name("/nix/store", &format!("/nix/storex/{hash}-x")).is_err());
        assert_eq!(hash_part_of(&format!("/nix/store/{hash}-x")), hash);
    }

    #[test]
    fn names_are_checked() {
        for good in ["tree", "cuda_cudart-12.9.79-lib", "a+b=c?d_e.f"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "with space",
            "slash/name",
            "ü",
            &"x".repeat(212),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn store_path_names_are_told_from_other_entries() {
        let path = source_path("/nix/store", "tree", &[7; 32], &[], false).expect("path");
        assert!(is_store_path_name(path.rsplit('/').next().expect("base")));
        for other in [
            "stray-by-hand",
            "README",
            "0000000000000000000000000000000-short",
            "00000000000000000000000000000000",
            "00000000000000000000000000000000-",
            "e0000000000000000000000000000000-not-base32",
            "00000000000000000000000000000000-.hidden",
        ] {
            assert!(!is_store_path_name(other), "{other}");
        }
    }

    #[test]
    fn store_paths_are_checked_once_and_split_into_their_parts() {
        let hash = "0123456789abcdfghijklmnpqrsvwxyz";
        let dir = StoreDir::new("/opt/store/").expect("absolute");
        assert_eq!(dir.as_str(), "/opt/store");
        assert!(matches!(
            StoreDir::new("store"),
            Err(Error::RelativeStoreDir(_))
        ));
        let path = dir
            .parse(&format!("/opt/store/{hash}-hello-2.12"))
            .expect("path");
        assert_eq!(path.to_string(), format!("/opt/store/{hash}-hello-2.12"));
        assert_eq!(path.dir(), "/opt/store");
        assert_eq!(path.hash_part(), hash);
        assert_eq!(path.name(), "hello-2.12");
        assert_eq!(path.base_name(), format!("{hash}-hello-2.12"));
        assert_eq!(StorePath::parse(path.as_str()).expect("parse"), path);
        assert_eq!(dir.join(path.base_name()).expect("join"), path);
        for bad in [
            format!("/nix/store/{hash}-hello"),
            format!("/opt/store/{hash}-.hidden"),
            format!("/opt/store/sub/{hash}-x"),
        ] {
            assert!(dir.parse(&bad).is_err(), "{bad}");
        }
        assert!(StorePath::parse(&format!("{hash}-x")).is_err());
        assert!(StorePath::parse(&format!("store/{hash}-x")).is_err());
        let added = dir.source_path("tree", &[7; 32], &[], false).expect("path");
        assert_eq!(added.dir(), "/opt/store");
        assert_eq!(added.name(), "tree");
        assert!(is_hash_part(added.hash_part()));
    }
}
