//! ed25519 keys and signatures in Nix's text forms: a secret key is
//! `name:base64(seed ‖ public key)` (64 bytes), a public key `name:base64(32 bytes)`, a
//! signature `name:base64(64 bytes)`, as `nix-store --generate-binary-cache-key` and
//! `nix sign-paths` write them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SecureRandom as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::Error;
use crate::narinfo::NarInfo;

/// A signing key. Its `Debug` form never shows the secret.
pub struct SecretKey {
    name: String,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A key that checks signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: [u8; 32],
}

/// Splits `name:base64` and decodes the base64 part to exactly `len` bytes.
fn split_key(text: &str, kind: &'static str, len: usize) -> Result<(String, Vec<u8>), Error> {
    let bad = |problem: String| Error::Key { kind, problem };
    let text = text.trim_end_matches(['\n', '\r', ' ', '\t']);
    let (name, encoded) = text
        .split_once(':')
        .ok_or_else(|| bad("it has no ':' between the name and the key".to_owned()))?;
    check_name(name).map_err(bad)?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| bad(format!("the part after the name is not base64 ({e})")))?;
    if bytes.len() != len {
        return Err(bad(format!(
            "the key holds {} bytes, not {len}",
            bytes.len()
        )));
    }
    Ok((name.to_owned(), bytes))
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("its name is empty".to_owned());
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("its name {name:?} holds white space"));
    }
    Ok(())
}

impl SecretKey {
    /// A new key named `name` (such as `cache.example.org-1`), from the system's random
    /// source.
    pub fn generate(name: &str) -> Result<SecretKey, Error> {
        check_name(name).map_err(|problem| Error::Key {
            kind: "secret",
            problem,
        })?;
        let mut seed = [0; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| Error::Random)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| Error::Random)?;
        Ok(SecretKey {
            name: name.to_owned(),
            seed,
            pair,
        })
    }

    /// Reads a secret key file's text; the public half must belong to the seed.
    pub fn parse(text: &str) -> Result<SecretKey, Error> {
        let (name, bytes) = split_key(text, "secret", 64)?;
        let (seed, public) = bytes.split_at(32);
        let pair =
            Ed25519KeyPair::from_seed_and_public_key(seed, public).map_err(|_| Error::Key {
                kind: "secret",
                problem: "its public half does not belong to its seed".to_owned(),
            })?;
        Ok(SecretKey {
            name,
            seed: seed.try_into().expect("32 bytes"),
            pair,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key file's text, without a newline (as Nix writes it).
    pub fn to_text(&self) -> String {
        let mut bytes = self.seed.to_vec();
        bytes.extend_from_slice(self.pair.public_key().as_ref());
        format!("{}:{}", self.name, STANDARD.encode(bytes))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self
                .pair
                .public_key()
                .as_ref()
                .try_into()
                .expect("ed25519 public keys have 32 bytes"),
        }
    }

    /// `name:base64(signature)` of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        format!(
            "{}:{}",
            self.name,
            STANDARD.encode(self.pair.sign(message).as_ref())
        )
    }

    /// Adds this key's signature of the narinfo's fingerprint, replacing an older
    /// signature under the same name.
    pub fn sign_narinfo(&self, info: &mut NarInfo, store_dir: &str) {
        let signature = self.sign(info.fingerprint(store_dir).as_bytes());
        let prefix = format!("{}:", self.name);
        info.sigs.retain(|sig| !sig.starts_with(&prefix));
        info.sigs.push(signature);
    }
}

impl PublicKey {
    /// Reads `name:base64(32 bytes)`, as in `trusted-public-keys`.
    pub fn parse(text: &str) -> Result<PublicKey, Error> {
        let (name, bytes) = split_key(text, "public", 32)?;
        Ok(PublicKey {
            name,
            key: bytes.try_into().expect("32 bytes"),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn to_text(&self) -> String {
        format!("{}:{}", self.name, STANDARD.encode(self.key))
    }

    /// Whether `signature` (`name:base64`) is this key's, under this key's name, of
    /// `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some((name, encoded)) = signature.split_once(':') else {
            return false;
        };
        if name != self.name {
            return false;
        }
        let Ok(bytes) = STANDARD.decode(encoded) else {
            return false;
        };
        bytes.len() == 64
            && UnparsedPublicKey::new(&ED25519, self.key)
                .verify(message, &bytes)
                .is_ok()
    }
}

/// The name of the first of `trusted` keys that signed the narinfo, if any. A signature
/// under a trusted key's name that this key did not make counts for nothing, as in Nix.
pub fn trusted_signer<'a>(
    info: &NarInfo,
    store_dir: &str,
    trusted: &'a [PublicKey],
) -> Option<&'a str> {
    let fingerprint = info.fingerprint(store_dir);
    trusted
        .iter()
        .find(|key| {
            info.sigs
                .iter()
                .any(|sig| key.verifies(fingerprint.as_bytes(), sig))
        })
        .map(PublicKey::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key pair written by `nix-store --generate-binary-cache-key test-1 sk pk`
    /// (Nix 2.8).
    const NIX_SECRET: &str = "test-1:X0qMGXTS9pPI/C23aYcQaBBFMvfPQt7l4ICtoZXjZWSW3Qz7C8VwvKmCnil9hDLJpehchCHhTNjJ2jn/6Pdnew==";
    const NIX_PUBLIC: &str = "test-1:lt0M+wvFcLypgp4pfYQyyaXoXIQh4UzYydo5/+j3Z3s=";

    #[test]
    fn reads_nix_keys_and_signs_what_they_verify() {
        let secret = SecretKey::parse(NIX_SECRET).expect("secret");
        let public = PublicKey::parse(NIX_PUBLIC).expect("public");
        assert_eq!(secret.public(), public);
        assert_eq!(secret.to_text(), NIX_SECRET);
        let signature = secret.sign(b"hello");
        assert!(public.verifies(b"hello", &signature));
        assert!(!public.verifies(b"hellO", &signature));
        // The same bytes under another name count for nothing.
        let renamed = signature.replacen("test-1:", "test-2:", 1);
        assert!(!public.verifies(b"hello", &renamed));
    }

    #[test]
    fn generated_keys_round_trip() {
        let secret = SecretKey::generate("cache.example.org-1").expect("key");
        let again = SecretKey::parse(&format!("{}\n", secret.to_text())).expect("reads back");
        assert_eq!(again.public(), secret.public());
        let public = PublicKey::parse(&secret.public().to_text()).expect("public");
        assert!(public.verifies(b"x", &again.sign(b"x")));
        // A forgery: a valid signature by another key, under the trusted name.
        let other = SecretKey::generate("cache.example.org-1").expect("key");
        assert!(!public.verifies(b"x", &other.sign(b"x")));
    }

    #[test]
    fn refuses_bad_keys() {
        let pair = SecretKey::parse(NIX_SECRET).expect("secret").to_text();
        let (name, encoded) = pair.split_once(':').expect("colon");
        let mut bytes = STANDARD.decode(encoded).expect("base64");
        bytes[40] ^= 1;
        let mismatched = format!("{name}:{}", STANDARD.encode(&bytes));
        for (text, expected) in [
            ("no-colon", "no ':'"),
            (":AAAA", "name is empty"),
            ("a b:AAAA", "white space"),
            ("k:!!!!", "not base64"),
            ("k:AAAA", "3 bytes"),
            (mismatched.as_str(), "does not belong"),
        ] {
            let error = SecretKey::parse(text).expect_err(text);
            assert!(error.to_string().contains(expected), "{error}");
        }
        assert!(PublicKey::parse(NIX_SECRET).is_err());
    }
}
