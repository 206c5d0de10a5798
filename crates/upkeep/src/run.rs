//! A run: every job of a shard built, checked, measured and pushed, its result recorded
//! as soon as it is known, so that a killed run resumes where it stopped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::config::SetConfig;
use crate::error::Error;
use crate::job::Job;
use crate::regress::{Change, changes};
use crate::results::{Failure, JobResult, Outcome, Results, now_ms};
use crate::signature::signature;
use crate::steps::{self, Build, BuiltPackage, Toolbox};

/// The outputs that run: what is checked, measured and handed to the GPU check. A
/// package without them (headers only) is measured by `out`.
const RUNTIME_OUTPUTS: [&str; 2] = ["lib", "bin"];

/// What a run tells its reporter.
#[derive(Debug)]
pub enum Event<'a> {
    Started {
        job: &'a Job,
        index: usize,
        total: usize,
    },
    /// Recorded by the run this one resumes.
    AlreadyRecorded { job: &'a Job },
    Finished {
        result: &'a JobResult,
        changes: &'a [Change],
    },
}

/// A job's result and its changes since the job's previous result.
#[derive(Debug, Clone)]
pub struct Judged {
    pub result: JobResult,
    pub changes: Vec<Change>,
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    pub run: String,
    pub resumed: bool,
    /// Every job of the shard, those of the resumed part included.
    pub results: Vec<Judged>,
}

impl RunReport {
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|j| j.result.outcome == Outcome::Failed)
            .count()
    }
}

/// Runs `jobs` (one shard's) into `results`, taking up an unfinished run of the same
/// jobs and shard.
pub fn run(
    results: &mut Results,
    jobs: &[Job],
    shard: &str,
    set: &SetConfig,
    tools: &Toolbox,
    logs: &Path,
    progress: &dyn Fn(Event<'_>),
) -> Result<RunReport, Error> {
    let run = results.start_run(jobs, shard)?;
    let folder = logs.join(&run.key[..16]);
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    let mut judged = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        if run.done.contains(&job.id()) {
            progress(Event::AlreadyRecorded { job });
            let result = results
                .history(&job.id())?
                .into_iter()
                .find(|r| r.run == run.key)
                .expect("a job the run recorded");
            let before = results.previous(&result)?;
            let found = changes(before.as_ref(), &result, set.closure_growth);
            judged.push(Judged {
                result,
                changes: found,
            });
            continue;
        }
        progress(Event::Started {
            job,
            index,
            total: jobs.len(),
        });
        let before = results.latest_of(&job.id())?;
        let mut result = run_job(job, before.as_ref(), set, tools, &folder)?;
        result.run.clone_from(&run.key);
        results.record(&run, &result)?;
        let found = changes(before.as_ref(), &result, set.closure_growth);
        progress(Event::Finished {
            result: &result,
            changes: &found,
        });
        judged.push(Judged {
            result,
            changes: found,
        });
    }
    results.finish(&run)?;
    Ok(RunReport {
        run: run.key,
        resumed: run.resumed,
        results: judged,
    })
}

/// The hash of what upkeep asks `build` for: the job, the source, and for a local
/// package the file's bytes (a missing file hashes as such: the build says why).
fn inputs_hash(job: &Job, set: &SetConfig) -> String {
    let mut hasher = Sha256::new();
    let definition = serde_json::json!({
        "job": job.id(),
        "spec": job.spec,
        "source": set.source.as_str(),
        "index_url": set.index_url,
        "base_url": set.base_url,
    });
    hasher.update(definition.to_string().as_bytes());
    if job.is_local() {
        let file = &job.spec[job.package.len() + 1..];
        match File::open(file) {
            Ok(mut file) => {
                let mut buffer = vec![0u8; 1 << 16];
                while let Ok(n) = file.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buffer[..n]);
                }
            }
            Err(_) => hasher.update(b"\0missing"),
        }
    }
    hasher
        .finalize()
        .iter()
        .fold(String::new(), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// A step's failure, signed.
fn failed(job: &Job, step: &str, message: String, missing: Vec<String>, tail: String) -> Failure {
    Failure {
        signature: signature(&job.id(), step, &message),
        step: step.to_owned(),
        message,
        missing,
        log_tail: tail,
    }
}

/// Builds, checks, measures, GPU-checks and pushes one job.
fn run_job(
    job: &Job,
    previous: Option<&JobResult>,
    set: &SetConfig,
    tools: &Toolbox,
    folder: &Path,
) -> Result<JobResult, Error> {
    let started = Instant::now();
    let log_path = folder.join(format!("{}.log", job.file_name()));
    let mut log = File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let mut result = JobResult {
        job: job.clone(),
        run: String::new(),
        inputs: inputs_hash(job, set),
        outcome: Outcome::Passed,
        failure: None,
        log: log_path.clone(),
        duration_ms: 0,
        closure_size: None,
        store_paths: BTreeMap::new(),
        versions: BTreeMap::new(),
        architectures: std::collections::BTreeSet::new(),
        reused: false,
        time: 0,
    };
    let failure = steps_of(job, previous, set, tools, &mut log, &log_path, &mut result)?;
    if let Some(failure) = failure {
        result.outcome = Outcome::Failed;
        result.failure = Some(failure);
    }
    result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result.time = now_ms();
    Ok(result)
}

/// The steps in order; the first failure ends the job.
fn steps_of(
    job: &Job,
    previous: Option<&JobResult>,
    set: &SetConfig,
    tools: &Toolbox,
    log: &mut File,
    log_path: &Path,
    result: &mut JobResult,
) -> Result<Option<Failure>, Error> {
    let ran = tools.run(log, log_path, &tools.build_args(job, set))?;
    let packages = match steps::read_build(&ran) {
        Build::Built(packages) => packages,
        Build::Unresolved(lines, libraries) => {
            return Ok(Some(failed(
                job,
                "build",
                lines.join("\n"),
                libraries,
                ran.tail(),
            )));
        }
        Build::Failed(message) => {
            return Ok(Some(failed(job, "build", message, Vec::new(), ran.tail())));
        }
    };
    result.versions = packages
        .iter()
        .map(|p| (p.package.clone(), p.version.clone()))
        .collect();
    let Some(own) = own_package(job, &packages) else {
        let message = format!("the build reported no package {}", job.package);
        return Ok(Some(failed(job, "build", message, Vec::new(), ran.tail())));
    };
    result.store_paths.clone_from(&own.outputs);
    result.architectures.clone_from(&own.architectures);
    let mut runtime: Vec<String> = RUNTIME_OUTPUTS
        .iter()
        .filter_map(|name| own.outputs.get(*name).cloned())
        .collect();
    // Unchanged outputs were checked, measured and pushed by the previous success.
    if let Some(previous) = previous.filter(|p| {
        p.outcome == Outcome::Passed
            && p.store_paths == result.store_paths
            && p.closure_size.is_some()
    }) {
        result.closure_size = previous.closure_size;
        result.reused = true;
        return Ok(None);
    }
    if !runtime.is_empty() {
        let mut args = vec!["check".to_owned()];
        args.extend(runtime.iter().cloned());
        if let Some(policy) = &set.policy {
            args.extend(["--policy".to_owned(), policy.display().to_string()]);
        }
        let ran = tools.run(log, log_path, &args)?;
        if let Err(message) = steps::read_check(&ran) {
            return Ok(Some(failed(job, "check", message, Vec::new(), ran.tail())));
        }
    }
    let measured = if runtime.is_empty() {
        own.outputs.get("out").cloned().into_iter().collect()
    } else {
        runtime.clone()
    };
    if !measured.is_empty() {
        let mut args = vec!["closure".to_owned()];
        args.extend(measured);
        let ran = tools.run(log, log_path, &args)?;
        match steps::read_closure(&ran) {
            Ok(size) => result.closure_size = Some(size),
            Err(message) => {
                return Ok(Some(failed(
                    job,
                    "closure",
                    message,
                    Vec::new(),
                    ran.tail(),
                )));
            }
        }
    }
    if let Some(gpu_check) = &tools.gpu_check {
        let mut args = gpu_check.clone();
        args.append(&mut runtime);
        let ran = tools.run(log, log_path, &args)?;
        if let Err(message) = steps::read_success(&ran) {
            return Ok(Some(failed(
                job,
                "gpu-check",
                message,
                Vec::new(),
                ran.tail(),
            )));
        }
    }
    if let Some(cache) = &set.cache {
        // `out` links every output of its package, so its closure is the whole set.
        let outs: Vec<String> = packages
            .iter()
            .filter_map(|p| p.outputs.get("out").cloned())
            .collect();
        let ran = tools.run(log, log_path, &steps::push_args(cache, &outs))?;
        if let Err(message) = steps::read_success(&ran) {
            return Ok(Some(failed(job, "push", message, Vec::new(), ran.tail())));
        }
    }
    Ok(None)
}

/// The job's own package among those built (its dependencies come with it).
fn own_package<'a>(job: &Job, packages: &'a [BuiltPackage]) -> Option<&'a BuiltPackage> {
    packages
        .iter()
        .find(|p| p.package == job.package)
        .or_else(|| packages.last())
}

/// Where a job's log lies, for people: `logs` relative, when it is below it.
pub fn relative_log(result: &JobResult, logs: &Path) -> PathBuf {
    result
        .log
        .strip_prefix(logs)
        .map_or_else(|_| result.log.clone(), Path::to_path_buf)
}
