//! Queries of valid paths: what the database knows of one, every valid path, and the
//! closure of some.

use std::collections::HashSet;

use cudapkgs_nix::{StorePath, base32};
use rusqlite::{OptionalExtension, params};

use super::{Store, sql};
use crate::error::Error;

/// What the database knows of a valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub path: String,
    /// `sha256:<base-32>`.
    pub nar_hash: String,
    pub nar_size: u64,
    pub references: Vec<String>,
    pub registration_time: i64,
}

impl Store {
    /// Every valid path, sorted.
    pub fn valid_paths(&self) -> Result<Vec<String>, Error> {
        let mut paths = self.query_paths("SELECT path FROM ValidPaths")?;
        paths.sort();
        Ok(paths)
    }

    /// `roots` and every path they reference, directly or not; an invalid root is an
    /// error naming it.
    pub fn closure(&self, roots: &[StorePath]) -> Result<Vec<PathInfo>, Error> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut pending: Vec<String> = roots.iter().map(ToString::to_string).collect();
        let mut closure = Vec::new();
        while let Some(path) = pending.pop() {
            if !seen.insert(path.clone()) {
                continue;
            }
            let info = self
                .info(&path)?
                .ok_or_else(|| Error::NotValid(path.clone()))?;
            pending.extend(info.references.iter().cloned());
            closure.push(info);
        }
        Ok(closure)
    }

    /// What the database knows of `path`, if it is valid.
    pub fn info(&self, path: &str) -> Result<Option<PathInfo>, Error> {
        let failed = sql(&self.db_path);
        // Cached statements: a closure asks this once per path.
        let row = self
            .db
            .prepare_cached(
                "SELECT id, hash, narSize, registrationTime FROM ValidPaths WHERE path = ?1",
            )
            .and_then(|mut statement| {
                statement.query_row(params![path], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        // Nix's older paths may have no size recorded.
                        row.get::<_, Option<i64>>(2)?.unwrap_or(0),
                        row.get::<_, i64>(3)?,
                    ))
                })
            })
            .optional()
            .map_err(&failed)?;
        let Some((id, nar_hash, nar_size, registration_time)) = row else {
            return Ok(None);
        };
        let mut statement = self
            .db
            .prepare_cached("SELECT v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?1 ORDER BY v.path")
            .map_err(&failed)?;
        let references = statement
            .query_map(params![id], |row| row.get::<_, String>(0))
            .map_err(&failed)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&failed)?;
        Ok(Some(PathInfo {
            path: path.to_owned(),
            nar_hash: nix_base32_hash(&nar_hash),
            nar_size: u64::try_from(nar_size).unwrap_or(0),
            references,
            registration_time,
        }))
    }
}

/// A NAR hash as `sha256:<base-32>`: Nix's database keeps it in hex (`sha256:<hex>`),
/// ours in base-32 already, and Nix shows base-32.
pub(super) fn nix_base32_hash(hash: &str) -> String {
    let Some(hex) = hash.strip_prefix("sha256:").filter(|hex| hex.len() == 64) else {
        return hash.to_owned();
    };
    let bytes: Option<Vec<u8>> = (0..32)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    match bytes {
        Some(bytes) => format!("sha256:{}", base32::encode(&bytes)),
        None => hash.to_owned(),
    }
}
