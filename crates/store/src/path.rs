//! Store paths exactly as Nix computes them for trees added by content (`nix-store
//! --add`): `<store dir>/<hash>-<name>`, the hash made from the NAR's SHA-256, the
//! references, the store folder and the name.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::base32;
use crate::error::Error;

/// The store folder a real Nix uses.
pub const NIX_STORE_DIR: &str = "/nix/store";

/// Checks a store path name: Nix accepts letters, digits and `+-._?=`, not starting with
/// a dot, at most 211 bytes.
pub fn check_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= 211
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(Error::BadName(name.to_owned()))
    }
}

/// Whether a store folder entry is named like a store path: 32 characters of Nix's
/// base-32 (a 20-byte hash), `-`, and a valid name.
pub fn is_store_path_name(entry: &str) -> bool {
    entry
        .split_once('-')
        .is_some_and(|(hash, name)| base32::decode(hash, 20).is_some() && check_name(name).is_ok())
}

/// The 32 characters of a store path's hash (its base name's start).
pub fn hash_part(path: &str) -> Option<[u8; 32]> {
    path.rsplit('/')
        .next()?
        .as_bytes()
        .get(..32)?
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
