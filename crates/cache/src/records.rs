//! Build records in a cache: `build/<key>.record`, the record a build keeps in its store
//! (its inputs' key → the outputs it gave), signed like a narinfo, so that another machine
//! that computes the same key takes the outputs instead of building them.
//!
//! The file is lines of `Name: value`: `Key`, `RecordHash` (`sha256:` and the hex of the
//! record's text), `Sig` (one or more), and `Record` last (the text, one line of JSON). A
//! signature covers `1;build;<key>;<RecordHash>`; a record is taken only with a trusted
//! signature over exactly its key and text.

use cudapkgs_nix::signature::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::backend::Backend;

/// The largest record read (a set of a few dozen packages is a few KiB).
const RECORD_LIMIT: u64 = 4 << 20;

/// The key of a build record in a cache.
pub fn record_key(key: &str) -> String {
    format!("build/{key}.record")
}

fn record_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex = digest.iter().fold(String::new(), |mut hex, byte| {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    format!("sha256:{hex}")
}

fn fingerprint(key: &str, hash: &str) -> String {
    format!("1;build;{key};{hash}")
}

/// A build key is the hex of a SHA-256.
fn check_build_key(key: &str) -> Result<(), Error> {
    if key.len() == 64
        && key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(Error::Location(format!(
            "{key:?} is not a build record's key"
        )))
    }
}

/// The file of the record `text` under `key`, signed with `secret`.
pub fn render(key: &str, text: &str, secret: &SecretKey) -> Result<String, Error> {
    check_build_key(key)?;
    if text.contains('\n') {
        return Err(Error::Location(
            "a build record is one line of text".to_owned(),
        ));
    }
    let hash = record_hash(text);
    let signature = secret.sign(fingerprint(key, &hash).as_bytes());
    Ok(format!(
        "Key: {key}\nRecordHash: {hash}\nSig: {signature}\nRecord: {text}\n"
    ))
}

/// The record text of the file `file` fetched as `key`, if one of `trusted` signed it;
/// the name of that key beside it.
pub fn read(file: &str, key: &str, trusted: &[PublicKey]) -> Result<(String, String), Error> {
    let what = record_key(key);
    let untrusted = |problem: &str| Error::Untrusted {
        what: what.clone(),
        problem: problem.to_owned(),
    };
    let (mut named, mut hash, mut text, mut sigs) = (None, None, None, Vec::new());
    for line in file.lines() {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| untrusted(&format!("{line:?} is not a `Name: value` line")))?;
        match name {
            "Key" => named = Some(value),
            "RecordHash" => hash = Some(value),
            "Sig" => sigs.push(value),
            "Record" => text = Some(value),
            _ => {}
        }
    }
    let (Some(named), Some(hash), Some(text)) = (named, hash, text) else {
        return Err(untrusted(
            "a record file needs Key, RecordHash and Record lines",
        ));
    };
    if named != key {
        return Err(untrusted(&format!(
            "it is the record of {named}, not {key}"
        )));
    }
    if record_hash(text) != hash {
        return Err(untrusted(
            "its record does not have the RecordHash it claims",
        ));
    }
    let message = fingerprint(key, hash);
    let signer = trusted
        .iter()
        .find(|public| {
            sigs.iter()
                .any(|sig| public.verifies(message.as_bytes(), sig))
        })
        .ok_or_else(|| untrusted("no trusted key signed it"))?;
    Ok((text.to_owned(), signer.name().to_owned()))
}

/// The store paths a record file for `key` names (its signature unchecked: the server
/// that takes a push checks only that the cache has what the record names).
pub fn outputs_of(file: &str, key: &str) -> Result<Vec<String>, Error> {
    let text = file
        .lines()
        .find_map(|line| line.strip_prefix("Record: "))
        .ok_or_else(|| Error::Untrusted {
            what: record_key(key),
            problem: "no Record line".to_owned(),
        })?;
    if !file.lines().any(|line| line == format!("Key: {key}")) {
        return Err(Error::Untrusted {
            what: record_key(key),
            problem: "not the record of this key".to_owned(),
        });
    }
    outputs(text).ok_or_else(|| Error::Untrusted {
        what: record_key(key),
        problem: "its record is not a build record".to_owned(),
    })
}

/// The store paths a build record's text names (every output of its packages); `None`
/// for text of another shape.
pub fn outputs(text: &str) -> Option<Vec<String>> {
    let packages: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    Some(
        packages
            .iter()
            .flat_map(|p| p["outputs"].as_array().cloned().unwrap_or_default())
            .filter_map(|pair| pair.get(1).and_then(|p| p.as_str()).map(str::to_owned))
            .collect(),
    )
}

/// The record of `key` in the cache, checked; `None` when the cache has none.
pub fn fetch(
    backend: &dyn Backend,
    key: &str,
    trusted: &[PublicKey],
) -> Result<Option<(String, String)>, Error> {
    check_build_key(key)?;
    let Some(bytes) = backend.get_small(&record_key(key), RECORD_LIMIT)? else {
        return Ok(None);
    };
    let file = String::from_utf8(bytes).map_err(|_| Error::Untrusted {
        what: record_key(key),
        problem: "not UTF-8 text".to_owned(),
    })?;
    read(&file, key, trusted).map(Some)
}

/// Writes the record of `key` to the cache, signed (after its outputs: the caller pushes
/// those first, so a record never names a path the cache lacks).
pub fn push(backend: &dyn Backend, key: &str, text: &str, secret: &SecretKey) -> Result<(), Error> {
    let file = render(key, text, secret)?;
    backend.put_bytes(&record_key(key), file.as_bytes(), "text/plain")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_taken_only_with_a_trusted_signature_over_key_and_text() {
        let secret = SecretKey::generate("cache-1").expect("key");
        let other = SecretKey::generate("cache-1").expect("key");
        let key = "a".repeat(64);
        let text = r#"[{"package":"libfoo"}]"#;
        let file = render(&key, text, &secret).expect("render");
        let trusted = [secret.public()];
        assert_eq!(
            read(&file, &key, &trusted).expect("read"),
            (text.to_owned(), "cache-1".to_owned())
        );
        // An impostor under the trusted name, another key's record, a changed text.
        assert!(read(&file, &key, &[other.public()]).is_err());
        assert!(read(&file, &"b".repeat(64), &trusted).is_err());
        let changed = file.replace("libfoo", "libbar");
        assert!(read(&changed, &key, &trusted).is_err());
        assert!(render("../x", text, &secret).is_err());
        assert!(render(&key, "two\nlines", &secret).is_err());
    }
}
