//! What builds remember in the store's database: records of builds keyed by their inputs
//! (whatever the builder puts there), and the SHA-256 of input files, so that a file
//! that has not changed is not read again; and the latest result of each GPU check of a
//! path on each GPU.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::error::Error;
use crate::store::{Store, sql};

/// One check of a store path on one GPU (module loads, a smoke test), as kept.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GpuCheckRecord {
    /// `module-loads`, `smoke:cublas`.
    pub name: String,
    pub gpu: String,
    pub uuid: String,
    pub capability: String,
    /// The driver's CUDA version and its library (`13.0 /usr/lib/libcuda.so.1`).
    pub driver: String,
    pub passed: bool,
    pub detail: String,
    pub seconds: f64,
    /// Unix time of the check.
    pub time: i64,
}

fn now() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

impl Store {
    /// Keeps `record` for the valid path `path`, in place of the same check's last
    /// result on the same GPU; `false` when `path` is not valid.
    pub fn record_gpu_check(&mut self, path: &str, record: &GpuCheckRecord) -> Result<bool, Error> {
        let changed = self
            .db
            .execute(
                "INSERT OR REPLACE INTO GpuChecks
                 (path, name, gpu, uuid, capability, driver, passed, detail, seconds, time)
                 SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM ValidPaths WHERE path = ?1",
                params![
                    path,
                    record.name,
                    record.gpu,
                    record.uuid,
                    record.capability,
                    record.driver,
                    record.passed,
                    record.detail,
                    record.seconds,
                    record.time,
                ],
            )
            .map_err(sql(&self.db_path))?;
        Ok(changed > 0)
    }

    /// The kept GPU checks of `path`, newest first; none for a database that predates
    /// them (a Nix database, a read-only older store).
    pub fn gpu_checks(&self, path: &str) -> Result<Vec<GpuCheckRecord>, Error> {
        let failed = sql(&self.db_path);
        let statement = self.db.prepare(
            "SELECT name, gpu, uuid, capability, driver, passed, detail, seconds, time
             FROM GpuChecks WHERE path = (SELECT id FROM ValidPaths WHERE path = ?1)
             ORDER BY time DESC, name",
        );
        let mut statement = match statement {
            Ok(statement) => statement,
            Err(error) if error.to_string().contains("no such table") => return Ok(Vec::new()),
            Err(error) => return Err(failed(error)),
        };
        statement
            .query_map(params![path], |row| {
                Ok(GpuCheckRecord {
                    name: row.get(0)?,
                    gpu: row.get(1)?,
                    uuid: row.get(2)?,
                    capability: row.get(3)?,
                    driver: row.get(4)?,
                    passed: row.get(5)?,
                    detail: row.get(6)?,
                    seconds: row.get(7)?,
                    time: row.get(8)?,
                })
            })
            .map_err(&failed)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&failed)
    }

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
        self.db
            .execute(
                "INSERT OR REPLACE INTO BuildRecords (key, record, time) VALUES (?1, ?2, ?3)",
                params![key, record, now()],
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

/// The time a check is recorded with.
pub fn check_time() -> i64 {
    now()
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

    #[test]
    fn gpu_checks_are_kept_per_check_and_gpu_and_go_with_their_path() {
        let dir = tempfile::tempdir().expect("temp");
        let source = dir.path().join("lib");
        std::fs::create_dir(&source).expect("folder");
        std::fs::write(source.join("libx.so"), b"x").expect("write");
        let store_dir = dir.path().join("store");
        let mut store = Store::open(
            store_dir.to_str().expect("utf-8"),
            None,
            &dir.path().join("state"),
        )
        .expect("open");
        let path = store
            .add(&source, "lib", &crate::store::Scan::Nothing, None)
            .expect("add");
        let record = |passed, time| super::GpuCheckRecord {
            name: "smoke:cublas".to_owned(),
            gpu: "NVIDIA H200".to_owned(),
            uuid: "GPU-1".to_owned(),
            capability: "9.0".to_owned(),
            driver: "13.0 /usr/lib/libcuda.so.1".to_owned(),
            passed,
            detail: "SGEMM matches".to_owned(),
            seconds: 0.5,
            time,
        };
        assert!(
            store
                .record_gpu_check(&path, &record(false, 1))
                .expect("record")
        );
        assert!(
            store
                .record_gpu_check(&path, &record(true, 2))
                .expect("record")
        );
        let other_gpu = super::GpuCheckRecord {
            uuid: "GPU-2".to_owned(),
            ..record(true, 3)
        };
        assert!(store.record_gpu_check(&path, &other_gpu).expect("record"));
        let kept = store.gpu_checks(&path).expect("query");
        assert_eq!(kept, [other_gpu, record(true, 2)]);
        let missing = format!("{}/00000000000000000000000000000000-none", store.folder());
        assert!(
            !store
                .record_gpu_check(&missing, &record(true, 4))
                .expect("record")
        );
        assert!(store.gpu_checks(&missing).expect("query").is_empty());
    }
}
