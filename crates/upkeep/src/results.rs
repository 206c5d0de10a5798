//! The results database (SQLite): runs, and one result per job and run with its
//! outcome, failure signature, failing step, log tail, duration, closure size and store
//! paths. A run killed midway is resumed by the next run of the same plan and shard:
//! jobs it recorded are not run again, so every job is recorded once per run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::job::Job;

/// The schema this crate writes (`PRAGMA user_version`).
const SCHEMA: i64 = 1;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    plan TEXT NOT NULL,
    shard TEXT NOT NULL,
    started INTEGER NOT NULL,
    finished INTEGER
);
CREATE TABLE IF NOT EXISTS results (
    run INTEGER NOT NULL REFERENCES runs(id),
    job TEXT NOT NULL,
    definition TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outcome TEXT NOT NULL,
    step TEXT,
    signature TEXT,
    message TEXT,
    missing TEXT NOT NULL,
    log_tail TEXT NOT NULL,
    log TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    closure_size INTEGER,
    store_paths TEXT NOT NULL,
    versions TEXT NOT NULL,
    architectures TEXT NOT NULL,
    reused INTEGER NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (run, job)
);
CREATE INDEX IF NOT EXISTS results_by_job ON results(job, time);
CREATE TABLE IF NOT EXISTS acted (
    signature TEXT NOT NULL,
    run TEXT NOT NULL,
    action TEXT NOT NULL,
    reference TEXT NOT NULL,
    PRIMARY KEY (signature, run, action)
);
";

/// Passed, or failed at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
        }
    }
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    /// `build`, `check`, `closure`, `push`, `gpu-check`.
    pub step: String,
    /// What the step said (its error, its unresolved libraries, its violations).
    pub message: String,
    /// Libraries nothing provides, when that is the failure.
    pub missing: Vec<String>,
    /// `signature::signature` of the job, step and message.
    pub signature: String,
    /// The last lines of the step's log.
    pub log_tail: String,
}

/// One job's result in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobResult {
    pub job: Job,
    /// The run's key (empty until recorded).
    pub run: String,
    /// SHA-256 of the job's definition and the local archive's bytes: what upkeep asked
    /// for; what the index resolved to is in `versions`.
    pub inputs: String,
    pub outcome: Outcome,
    pub failure: Option<Failure>,
    /// The job's log file.
    pub log: PathBuf,
    pub duration_ms: u64,
    /// NAR bytes of the runtime outputs' closure.
    pub closure_size: Option<u64>,
    /// The package's outputs.
    pub store_paths: BTreeMap<String, String>,
    /// Package → version of everything the job built.
    pub versions: BTreeMap<String, String>,
    /// SASS and PTX architectures the package's outputs carry.
    pub architectures: BTreeSet<String>,
    /// The outputs were those of the previous success: its check, closure and push stand.
    pub reused: bool,
    /// When the job ended, in milliseconds since 1970.
    pub time: i64,
}

/// A run being recorded.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: i64,
    pub key: String,
    /// Taken up from a run that did not finish.
    pub resumed: bool,
    /// Jobs already recorded in it.
    pub done: BTreeSet<String>,
}

/// What a merge took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Merged {
    pub runs: usize,
    pub results: usize,
}

/// The results database.
#[derive(Debug)]
pub struct Results {
    connection: Connection,
    path: PathBuf,
}

/// Milliseconds since 1970.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::new(), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The plan's identity: the hash of its job ids in order.
pub fn plan_hash(jobs: &[Job]) -> String {
    let ids: Vec<String> = jobs.iter().map(Job::id).collect();
    hex_sha256(&ids.join("\n"))
}

impl Results {
    /// Opens the database at `path`, creating it (not its folder) when missing.
    pub fn open(path: &Path) -> Result<Results, Error> {
        let connection = Connection::open(path).map_err(|e| Error::database(path, e))?;
        let results = Results {
            connection,
            path: path.to_owned(),
        };
        results.prepare(true)?;
        Ok(results)
    }

    /// Opens an existing database for reading: never created, never changed.
    pub fn open_read_only(path: &Path) -> Result<Results, Error> {
        if !path.is_file() {
            return Err(Error::Schema {
                path: path.to_owned(),
                problem: "no such file (`cudapkgs upkeep run` makes it)".to_owned(),
            });
        }
        let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Error::database(path, e))?;
        let results = Results {
            connection,
            path: path.to_owned(),
        };
        results.prepare(false)?;
        Ok(results)
    }

    fn sql(&self, error: rusqlite::Error) -> Error {
        Error::database(&self.path, error)
    }

    fn prepare(&self, write: bool) -> Result<(), Error> {
        self.connection
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| self.sql(e))?;
        let version: i64 = self
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| self.sql(e))?;
        let tables: i64 = self
            .connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.sql(e))?;
        if version > SCHEMA || (version == 0 && tables > 0) {
            return Err(Error::Schema {
                path: self.path.clone(),
                problem: format!(
                    "not a results database of this version (schema {version}, tables {tables}; this cudapkgs writes schema {SCHEMA})"
                ),
            });
        }
        if write && version < SCHEMA {
            self.connection
                .execute_batch(&format!("{CREATE}PRAGMA user_version = {SCHEMA};"))
                .map_err(|e| self.sql(e))?;
        }
        Ok(())
    }

    /// Starts a run of `jobs` for `shard`, or takes up the newest unfinished run of the
    /// same plan and shard.
    pub fn start_run(&mut self, jobs: &[Job], shard: &str) -> Result<Run, Error> {
        let plan = plan_hash(jobs);
        let unfinished: Option<(i64, String)> = self
            .connection
            .query_row(
                "SELECT id, key FROM runs WHERE plan = ?1 AND shard = ?2 AND finished IS NULL
                 ORDER BY started DESC, id DESC LIMIT 1",
                params![plan, shard],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        if let Some((id, key)) = unfinished {
            let mut statement = self
                .connection
                .prepare("SELECT job FROM results WHERE run = ?1")
                .map_err(|e| self.sql(e))?;
            let done = statement
                .query_map([id], |row| row.get::<_, String>(0))
                .and_then(Iterator::collect)
                .map_err(|e| self.sql(e))?;
            return Ok(Run {
                id,
                key,
                resumed: true,
                done,
            });
        }
        let started = now_ms();
        let key = hex_sha256(&format!(
            "{started}\n{}\n{plan}\n{shard}\n{:?}",
            std::process::id(),
            SystemTime::now()
        ));
        self.connection
            .execute(
                "INSERT INTO runs (key, plan, shard, started) VALUES (?1, ?2, ?3, ?4)",
                params![key, plan, shard, started],
            )
            .map_err(|e| self.sql(e))?;
        Ok(Run {
            id: self.connection.last_insert_rowid(),
            key,
            resumed: false,
            done: BTreeSet::new(),
        })
    }

    /// Records `result` in `run` (once: a job already recorded there is kept as it was).
    pub fn record(&mut self, run: &Run, result: &JobResult) -> Result<bool, Error> {
        let failure = result.failure.as_ref();
        let changed = self
            .connection
            .execute(
                "INSERT OR IGNORE INTO results (run, job, definition, inputs, outcome, step,
                    signature, message, missing, log_tail, log, duration_ms, closure_size,
                    store_paths, versions, architectures, reused, time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                    ?16, ?17, ?18)",
                params![
                    run.id,
                    result.job.id(),
                    json(&result.job),
                    result.inputs,
                    result.outcome.as_str(),
                    failure.map(|f| f.step.clone()),
                    failure.map(|f| f.signature.clone()),
                    failure.map(|f| f.message.clone()),
                    json(&failure.map(|f| f.missing.clone()).unwrap_or_default()),
                    failure.map(|f| f.log_tail.clone()).unwrap_or_default(),
                    result.log.to_string_lossy(),
                    i64::try_from(result.duration_ms).unwrap_or(i64::MAX),
                    result
                        .closure_size
                        .map(|size| i64::try_from(size).unwrap_or(i64::MAX)),
                    json(&result.store_paths),
                    json(&result.versions),
                    json(&result.architectures),
                    result.reused,
                    result.time,
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(changed == 1)
    }

    /// Marks `run` finished.
    pub fn finish(&mut self, run: &Run) -> Result<(), Error> {
        self.connection
            .execute(
                "UPDATE runs SET finished = ?1 WHERE id = ?2",
                params![now_ms(), run.id],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    const SELECT: &'static str = "SELECT r.definition, runs.key, r.inputs, r.outcome, r.step,
        r.signature, r.message, r.missing, r.log_tail, r.log, r.duration_ms, r.closure_size,
        r.store_paths, r.versions, r.architectures, r.reused, r.time
        FROM results r JOIN runs ON runs.id = r.run";

    fn query(
        &self,
        filter: &str,
        values: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<JobResult>, Error> {
        let mut statement = self
            .connection
            .prepare(&format!("{} {filter}", Self::SELECT))
            .map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map(values, |row| {
                Ok(Row {
                    definition: row.get(0)?,
                    run: row.get(1)?,
                    inputs: row.get(2)?,
                    outcome: row.get(3)?,
                    step: row.get(4)?,
                    signature: row.get(5)?,
                    message: row.get(6)?,
                    missing: row.get(7)?,
                    log_tail: row.get(8)?,
                    log: row.get(9)?,
                    duration_ms: row.get(10)?,
                    closure_size: row.get(11)?,
                    store_paths: row.get(12)?,
                    versions: row.get(13)?,
                    architectures: row.get(14)?,
                    reused: row.get(15)?,
                    time: row.get(16)?,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<Row>, _>>)
            .map_err(|e| self.sql(e))?;
        rows.into_iter().map(|row| row.parse(&self.path)).collect()
    }

    /// The result of the same job just before `result`.
    pub fn previous(&self, result: &JobResult) -> Result<Option<JobResult>, Error> {
        let id = result.job.id();
        let mut found = self.query(
            "WHERE r.job = ?1 AND (r.time < ?2 OR (r.time = ?2 AND runs.key < ?3))
             ORDER BY r.time DESC, runs.key DESC LIMIT 1",
            &[&id, &result.time, &result.run],
        )?;
        Ok(found.pop())
    }

    /// The newest result of every job, in job order.
    pub fn latest(&self) -> Result<Vec<JobResult>, Error> {
        let mut newest: BTreeMap<String, JobResult> = BTreeMap::new();
        for result in self.query("ORDER BY r.time, runs.key", &[])? {
            newest.insert(result.job.id(), result);
        }
        Ok(newest.into_values().collect())
    }

    /// The newest result of `job`.
    pub fn latest_of(&self, job: &str) -> Result<Option<JobResult>, Error> {
        Ok(self.history(job)?.pop())
    }

    /// Every result of `job`, oldest first.
    pub fn history(&self, job: &str) -> Result<Vec<JobResult>, Error> {
        self.query("WHERE r.job = ?1 ORDER BY r.time, runs.key", &[&job])
    }

    /// Takes the runs and results of the database at `source` that this one lacks (by
    /// run key and job): merging twice, or a shard's copy of an older merge, adds nothing.
    pub fn merge(&mut self, source: &Path) -> Result<Merged, Error> {
        // Opened first, so that a damaged or foreign file is refused with its name.
        drop(Results::open_read_only(source)?);
        let before = self.counts()?;
        let transaction = self
            .connection
            .transaction()
            .map_err(|e| Error::database(&self.path, e))?;
        let sql = |e| Error::database(source, e);
        transaction
            .execute("ATTACH DATABASE ?1 AS other", [source.to_string_lossy()])
            .map_err(sql)?;
        transaction
            .execute_batch(
                "INSERT INTO runs (key, plan, shard, started, finished)
                    SELECT key, plan, shard, started, finished FROM other.runs WHERE true
                    ON CONFLICT (key) DO UPDATE SET finished = coalesce(runs.finished, excluded.finished);
                 INSERT OR IGNORE INTO results
                    SELECT mine.id, r.job, r.definition, r.inputs, r.outcome, r.step, r.signature,
                        r.message, r.missing, r.log_tail, r.log, r.duration_ms, r.closure_size,
                        r.store_paths, r.versions, r.architectures, r.reused, r.time
                    FROM other.results r
                    JOIN other.runs theirs ON theirs.id = r.run
                    JOIN main.runs mine ON mine.key = theirs.key;
                 INSERT OR IGNORE INTO acted SELECT * FROM other.acted;",
            )
            .map_err(sql)?;
        transaction.commit().map_err(sql)?;
        self.connection
            .execute("DETACH DATABASE other", [])
            .map_err(|e| self.sql(e))?;
        let after = self.counts()?;
        Ok(Merged {
            runs: after.runs - before.runs,
            results: after.results - before.results,
        })
    }

    fn counts(&self) -> Result<Merged, Error> {
        let count = |table: &str| -> Result<usize, Error> {
            self.connection
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                    row.get::<_, i64>(0)
                })
                .map(|n| usize::try_from(n).unwrap_or(0))
                .map_err(|e| self.sql(e))
        };
        Ok(Merged {
            runs: count("runs")?,
            results: count("results")?,
        })
    }

    /// The issue reference an action (`opened`, `commented`, `closed`) on `signature`
    /// for the result of `run` was recorded with, if it was taken.
    pub fn acted(&self, signature: &str, run: &str, action: &str) -> Result<Option<String>, Error> {
        self.connection
            .query_row(
                "SELECT reference FROM acted WHERE signature = ?1 AND run = ?2 AND action = ?3",
                params![signature, run, action],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Records that the action was taken, so that filing again does not repeat it.
    pub fn mark_acted(
        &mut self,
        signature: &str,
        run: &str,
        action: &str,
        reference: &str,
    ) -> Result<(), Error> {
        self.connection
            .execute(
                "INSERT OR IGNORE INTO acted (signature, run, action, reference) VALUES (?1, ?2, ?3, ?4)",
                params![signature, run, action, reference],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }
}

/// A result as the database holds it.
struct Row {
    definition: String,
    run: String,
    inputs: String,
    outcome: String,
    step: Option<String>,
    signature: Option<String>,
    message: Option<String>,
    missing: String,
    log_tail: String,
    log: String,
    duration_ms: i64,
    closure_size: Option<i64>,
    store_paths: String,
    versions: String,
    architectures: String,
    reused: bool,
    time: i64,
}

impl Row {
    fn parse(self, path: &Path) -> Result<JobResult, Error> {
        fn json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, Error> {
            serde_json::from_str(text).map_err(|error| Error::Schema {
                path: path.to_owned(),
                problem: format!("a result does not read back: {error}"),
            })
        }
        let outcome = match self.outcome.as_str() {
            "passed" => Outcome::Passed,
            "failed" => Outcome::Failed,
            other => {
                return Err(Error::Schema {
                    path: path.to_owned(),
                    problem: format!("unknown outcome `{other}`"),
                });
            }
        };
        let failure = match (self.step, self.signature) {
            (Some(step), Some(signature)) => Some(Failure {
                step,
                message: self.message.unwrap_or_default(),
                missing: json(path, &self.missing)?,
                signature,
                log_tail: self.log_tail,
            }),
            _ => None,
        };
        Ok(JobResult {
            job: json(path, &self.definition)?,
            run: self.run,
            inputs: self.inputs,
            outcome,
            failure,
            log: PathBuf::from(self.log),
            duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
            closure_size: self.closure_size.and_then(|size| u64::try_from(size).ok()),
            store_paths: json(path, &self.store_paths)?,
            versions: json(path, &self.versions)?,
            architectures: json(path, &self.architectures)?,
            reused: self.reused,
            time: self.time,
        })
    }
}

/// A column kept as JSON.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(package: &str) -> Job {
        Job::new(package, "13", "linux-x86_64", "").expect("job")
    }

    fn result(job: &Job, outcome: Outcome, time: i64) -> JobResult {
        JobResult {
            job: job.clone(),
            run: String::new(),
            inputs: "i".to_owned(),
            outcome,
            failure: (outcome == Outcome::Failed).then(|| Failure {
                step: "build".to_owned(),
                message: "needs libx.so.1".to_owned(),
                missing: vec!["libx.so.1".to_owned()],
                signature: "sig".to_owned(),
                log_tail: "tail".to_owned(),
            }),
            log: PathBuf::from("/logs/a.log"),
            duration_ms: 5,
            closure_size: Some(10),
            store_paths: BTreeMap::from([("lib".to_owned(), "/s/x-lib".to_owned())]),
            versions: BTreeMap::from([("a".to_owned(), "1.0".to_owned())]),
            architectures: BTreeSet::from(["sm_90".to_owned()]),
            reused: false,
            time,
        }
    }

    #[test]
    fn an_unfinished_run_is_taken_up_and_each_job_recorded_once() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("r.sqlite");
        let jobs = [job("a"), job("b")];
        let mut results = Results::open(&path).expect("open");
        let run = results.start_run(&jobs, "1/1").expect("run");
        assert!(!run.resumed);
        let first = result(&jobs[0], Outcome::Failed, 100);
        assert!(results.record(&run, &first).expect("record"));
        drop(results);

        let mut results = Results::open(&path).expect("again");
        let resumed = results.start_run(&jobs, "1/1").expect("run");
        assert!(resumed.resumed);
        assert_eq!(resumed.key, run.key);
        assert_eq!(resumed.done, BTreeSet::from([jobs[0].id()]));
        assert!(
            !results.record(&resumed, &first).expect("once"),
            "recorded once"
        );
        results
            .record(&resumed, &result(&jobs[1], Outcome::Passed, 101))
            .expect("record");
        results.finish(&resumed).expect("finish");
        // Another shard, or another plan, is another run.
        assert!(!results.start_run(&jobs, "1/2").expect("run").resumed);

        let later = results.start_run(&jobs, "1/1").expect("run");
        assert!(!later.resumed && later.key != run.key);
        let mut fixed = result(&jobs[0], Outcome::Passed, 200);
        results.record(&later, &fixed).expect("record");
        fixed.run.clone_from(&later.key);
        let previous = results.previous(&fixed).expect("previous").expect("one");
        assert_eq!(previous.outcome, Outcome::Failed);
        assert_eq!(
            previous.failure.as_ref().expect("failure").missing,
            ["libx.so.1"]
        );
        assert_eq!(previous.run, run.key);
        let latest = results.latest().expect("latest");
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0].outcome, Outcome::Passed);
        assert_eq!(results.history(&jobs[0].id()).expect("history").len(), 2);
    }

    #[test]
    fn merging_takes_what_is_missing_once() {
        let dir = tempfile::tempdir().expect("temp");
        let jobs = [job("a"), job("b")];
        let shard = |name: &str, index: usize| {
            let path = dir.path().join(name);
            let mut results = Results::open(&path).expect("open");
            let mine = [jobs[index].clone()];
            let run = results
                .start_run(&mine, &format!("{}/2", index + 1))
                .expect("run");
            results
                .record(&run, &result(&jobs[index], Outcome::Passed, 10))
                .expect("record");
            results.finish(&run).expect("finish");
            path
        };
        let (one, two) = (shard("1.sqlite", 0), shard("2.sqlite", 1));
        let mut merged = Results::open(&dir.path().join("m.sqlite")).expect("open");
        assert_eq!(
            merged.merge(&one).expect("merge"),
            Merged {
                runs: 1,
                results: 1
            }
        );
        assert_eq!(
            merged.merge(&two).expect("merge"),
            Merged {
                runs: 1,
                results: 1
            }
        );
        assert_eq!(merged.merge(&one).expect("again"), Merged::default());
        assert_eq!(merged.latest().expect("latest").len(), 2);
        // A shard that started from a copy of the merged database brings only its own run.
        std::fs::copy(dir.path().join("m.sqlite"), dir.path().join("copy.sqlite")).expect("copy");
        let mut copy = Results::open(&dir.path().join("copy.sqlite")).expect("open");
        let run = copy.start_run(&jobs[..1], "1/2").expect("run");
        copy.record(&run, &result(&jobs[0], Outcome::Failed, 20))
            .expect("record");
        drop(copy);
        assert_eq!(
            merged
                .merge(&dir.path().join("copy.sqlite"))
                .expect("merge"),
            Merged {
                runs: 1,
                results: 1
            }
        );
        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign)
            .and_then(|c| c.execute_batch("CREATE TABLE x (y)"))
            .expect("foreign");
        let error = merged.merge(&foreign).expect_err("foreign").to_string();
        assert!(
            error.contains("foreign.sqlite") && error.contains("not a results database"),
            "{error}"
        );
        assert!(Results::open_read_only(&dir.path().join("none.sqlite")).is_err());
    }
}
