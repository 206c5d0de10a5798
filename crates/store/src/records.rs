//! What builds remember in the store's database: records of builds keyed by their inputs
//! (whatever the builder puts there), and the SHA-256 of input files, so that a file
//! that has not changed is not read again.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, params};

use crate::error::Error;
use crate::store::{Store, sql};

impl Store {
    /// The record kept under `key`, if any.
    pub fn build_record(&self, key: &str) -> Result<Option<String>, Error> {
        self.db
            .query_row(
                "SELECT record FROM BuildRecords WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql(&self.db_path))
    }

    /// Every record, by key.
    pub fn build_records(&self) -> Result<Vec<(String, String)>, Error> {
        let failed = sql(&self.db_path);
        let mut statement = self
            .db
            .prepare("SELECT key, record FROM BuildRecords ORDER BY key")
            .map_err(&failed)?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(&failed)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&failed)
    }

    /// Keeps `record` under `key`, in place of what was there.
    pub fn set_build_record(&mut self, key: &str, record: &str) -> Result<(), Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.db
            .execute(
                "INSERT OR REPLACE INTO BuildRecords (key, record, time) VALUES (?1, ?2, ?3)",
                params![key, record, i64::try_from(now).unwrap_or(i64::MAX)],
            )
            .map(drop)
            .map_err(sql(&self.db_path))
    }

    /// The SHA-256 (hex) remembered for the file at `path` while it had `identity`
    /// (whatever tells the file's state apart: device, inode, size, change time).
    pub fn remembered_hash(&self, path: &str, identity: &str) -> Result<Option<String>, Error> {
        self.db
            .query_row(
                "SELECT sha256 FROM FileHashes WHERE path = ?1 AND identity = ?2",
                params![path, identity],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql(&self.db_path))
    }

    /// Remembers the SHA-256 (hex) of the file at `path` in the state `identity`.
    pub fn remember_hash(&mut self, path: &str, identity: &str, sha256: &str) -> Result<(), Error> {
        self.db
            .execute(
                "INSERT OR REPLACE INTO FileHashes (path, identity, sha256) VALUES (?1, ?2, ?3)",
                params![path, identity, sha256],
            )
            .map(drop)
            .map_err(sql(&self.db_path))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn records_and_hashes_are_kept_and_replaced() {
        let dir = tempfile::tempdir().expect("temp");
        let store_dir = dir.path().join("store");
        let open = || {
            Store::open(
                store_dir.to_str().expect("utf-8"),
                None,
                &dir.path().join("state"),
            )
            .expect("open")
        };
        let mut store = open();
        assert_eq!(store.build_record("k").expect("query"), None);
        store.set_build_record("k", "one").expect("set");
        store.set_build_record("k", "two").expect("set");
        store.remember_hash("/a", "1:2:3", "abc").expect("remember");
        drop(store);
        let store = open();
        assert_eq!(
            store.build_record("k").expect("query").as_deref(),
            Some("two")
        );
        assert_eq!(
            store
                .remembered_hash("/a", "1:2:3")
                .expect("query")
                .as_deref(),
            Some("abc")
        );
        assert_eq!(store.remembered_hash("/a", "1:2:4").expect("query"), None);
    }
}
