//! The JSON documents of `upkeep plan`, `run`, `report`, `merge` and `issues`; the
//! documents once assembled by hand keep their keys in the order of their names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cudapkgs_upkeep::issues::file::Filed;
use cudapkgs_upkeep::regress::Change;
use cudapkgs_upkeep::report::Dashboard;
use cudapkgs_upkeep::results::Merged;
use cudapkgs_upkeep::run::{Judged, RunReport};
use cudapkgs_upkeep::{Job, Outcome};
use schemars::JsonSchema;
use serde::Serialize;

use crate::output::schema_of;

/// `upkeep plan --json`: the shard's jobs, and how many the set has.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct PlanReport<'a> {
    pub(super) jobs: Vec<PlannedJob<'a>>,
    /// `I/N`: `1/1` for the whole plan.
    pub(super) shard: String,
    /// The jobs of the whole set.
    pub(super) total: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct PlannedJob<'a> {
    /// Comma-separated, as `flags` writes them; empty for none.
    capabilities: &'a str,
    cuda: &'a str,
    id: String,
    package: &'a str,
    /// What `cudapkgs build` is given.
    spec: &'a str,
    system: &'a str,
}

impl<'a> PlannedJob<'a> {
    pub(super) fn of(job: &'a Job) -> Self {
        PlannedJob {
            capabilities: &job.capabilities,
            cuda: &job.cuda,
            id: job.id(),
            package: &job.package,
            spec: &job.spec,
            system: &job.system,
        }
    }
}

/// `upkeep run --json`: each job's result and what changed since the last run.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct RunDocument<'a> {
    /// Jobs that failed.
    failed: usize,
    /// What filing did, when issues were filed.
    issues: Option<&'a Filed>,
    resumed: bool,
    results: Vec<JobReport<'a>>,
    /// The run's key.
    run: &'a str,
}

#[derive(Debug, Serialize, JsonSchema)]
struct JobReport<'a> {
    changes: &'a [Change],
    /// NAR bytes of the runtime outputs' closure.
    closure_size: Option<u64>,
    duration_ms: u64,
    /// SHA-256 of the job's definition and its local archive.
    inputs: &'a str,
    job: String,
    /// The job's log file.
    log: &'a Path,
    /// What the failing step said.
    message: Option<&'a str>,
    /// Libraries nothing provides, when that is the failure.
    missing: Option<&'a [String]>,
    outcome: Outcome,
    reused: bool,
    signature: Option<&'a str>,
    /// The step that failed.
    step: Option<&'a str>,
    /// The package's outputs.
    store_paths: &'a BTreeMap<String, String>,
    /// Package → version of everything the job built.
    versions: &'a BTreeMap<String, String>,
}

impl<'a> RunDocument<'a> {
    pub(super) fn of(report: &'a RunReport, filed: Option<&'a Filed>) -> Self {
        RunDocument {
            failed: report.failed(),
            issues: filed,
            resumed: report.resumed,
            results: report
                .results
                .iter()
                .map(|Judged { result, changes }| {
                    let failure = result.failure.as_ref();
                    JobReport {
                        changes,
                        closure_size: result.closure_size,
                        duration_ms: result.duration_ms,
                        inputs: &result.inputs,
                        job: result.job.id(),
                        log: &result.log,
                        message: failure.map(|f| f.message.as_str()),
                        missing: failure.map(|f| f.missing.as_slice()),
                        outcome: result.outcome,
                        reused: result.reused,
                        signature: failure.map(|f| f.signature.as_str()),
                        step: failure.map(|f| f.step.as_str()),
                        store_paths: &result.store_paths,
                        versions: &result.versions,
                    }
                })
                .collect(),
            run: &report.run,
        }
    }
}

/// `upkeep report --json`: the dashboard, and the page written with `--html`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ReportDocument<'a> {
    #[serde(flatten)]
    pub(super) board: &'a Dashboard,
    pub(super) html: Option<&'a PathBuf>,
}

/// The JSON documents of `upkeep`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("upkeep-plan", schema_of::<PlanReport>()),
        ("upkeep-run", schema_of::<RunDocument>()),
        ("upkeep-report", schema_of::<ReportDocument>()),
        ("upkeep-merge", schema_of::<Merged>()),
        ("upkeep-issues", schema_of::<Filed>()),
    ]
}
