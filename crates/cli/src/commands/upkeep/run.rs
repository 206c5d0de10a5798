//! `cudapkgs upkeep run` and `upkeep issues`: jobs run as child processes of this very
//! executable, results recorded, issues filed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use cudapkgs_upkeep::issues::Tracker;
use cudapkgs_upkeep::issues::drafts::Drafts;
use cudapkgs_upkeep::issues::file::{Filed, Filing, file};
use cudapkgs_upkeep::issues::github::GitHub;
use cudapkgs_upkeep::issues::text::LogLinks;
use cudapkgs_upkeep::run::{Event, Judged, RunReport, run as run_jobs};
use cudapkgs_upkeep::steps::Toolbox;
use cudapkgs_upkeep::{Outcome, Results};

use super::{allowed_growth, failure, jobs_of, results_path, set_of, store_args};
use crate::cli::StoreFolders;
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;
use crate::settings::{Config, EnvLookup};

/// Where issues go.
#[derive(Debug, Args)]
pub struct TrackerArgs {
    /// File issues in this GitHub repository, with the token in GITHUB_TOKEN
    #[arg(long, value_name = "OWNER/NAME", conflicts_with = "issues_dir")]
    pub github_repo: Option<String>,
    /// GitHub's REST API (GitHub Enterprise: https://HOST/api/v3)
    #[arg(long, value_name = "URL", default_value = "https://api.github.com")]
    pub github_api: String,
    /// Write issues as Markdown drafts in DIR instead of filing them
    #[arg(long, value_name = "DIR")]
    pub issues_dir: Option<PathBuf>,
    /// Where readers of an issue find the logs: the page they are published on (a CI
    /// run's, with the log folder as an artifact), linked with the log's path below the
    /// folder [default: the log's path on this machine]
    #[arg(long, value_name = "URL")]
    pub log_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Only this shard's jobs, written I/N
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The results database [default: the table's `results`, else upkeep.sqlite beside
    /// the configuration]
    #[arg(long, value_name = "DB")]
    pub results: Option<PathBuf>,
    /// The folder of job logs [default: the table's `logs`, else upkeep-logs beside the
    /// database]
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
    /// The download cache the builds use [default: build's]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub tracker: TrackerArgs,
    #[command(flatten)]
    pub store: StoreFolders,
}

#[derive(Debug, Args)]
pub struct IssuesArgs {
    /// The results database [default: the table's `results`, else upkeep.sqlite beside
    /// the configuration]
    #[arg(long, value_name = "DB")]
    pub results: Option<PathBuf>,
    /// The folder of job logs, for links [default: upkeep-logs beside the database]
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
    #[command(flatten)]
    pub tracker: TrackerArgs,
}

/// The step that checks a job's runtime outputs on this machine's GPUs: every job
/// gains it where the driver sees a GPU.
fn gpu_check_step() -> Option<Vec<String>> {
    crate::native::gpus_present().then(|| vec!["gpu-check".to_owned()])
}

/// The tracker the flags name, if any; GitHub's token is read here, by the binary.
fn tracker_of(
    args: &TrackerArgs,
    labels: &[String],
    env: EnvLookup<'_>,
) -> CliResult<Option<Box<dyn Tracker>>> {
    if let Some(repository) = &args.github_repo {
        let token = env("GITHUB_TOKEN").ok_or_else(|| {
            CliError::new("--github-repo needs a token: GITHUB_TOKEN is not set").with_hint(
                "export GITHUB_TOKEN with a token that may write issues, or use --issues-dir",
            )
        })?;
        let github = GitHub::new(&args.github_api, repository, &token, &labels[0])
            .map_err(|e| failure(&e).context("--github-repo"))?;
        return Ok(Some(Box::new(github)));
    }
    if let Some(folder) = &args.issues_dir {
        return Ok(Some(Box::new(
            Drafts::new(folder).map_err(|e| failure(&e))?,
        )));
    }
    Ok(None)
}

fn logs_folder(flag: Option<&Path>, table: Option<&Path>, results: &Path) -> PathBuf {
    flag.or(table).map_or_else(
        || cudapkgs_upkeep::config::default_logs(results),
        Path::to_path_buf,
    )
}

fn filing(config: &Config, args: &TrackerArgs, logs: &Path) -> Filing {
    Filing {
        labels: config
            .upkeep
            .as_ref()
            .map_or_else(cudapkgs_upkeep::config::default_labels, |set| {
                set.labels.clone()
            }),
        regression_label: "regression".to_owned(),
        logs: LogLinks {
            base_url: args.log_url.clone(),
            folder: logs.to_owned(),
        },
        allowed_growth: allowed_growth(config),
    }
}

fn describe_filed(filed: &Filed, output: Output) {
    for (verb, actions) in [
        ("opened", &filed.opened),
        ("commented on", &filed.commented),
        ("closed", &filed.closed),
    ] {
        for action in actions {
            output.note(format!("issue {} {verb}: {}", action.reference, action.job));
        }
    }
}

pub fn run(args: &RunArgs, output: Output, config: &Config, env: EnvLookup<'_>) -> CliResult<Exit> {
    let set = set_of(config)?;
    let (_, jobs, shard) = jobs_of(&set, args.shard.as_deref())?;
    let results_file = results_path(args.results.as_deref(), config);
    let logs = logs_folder(args.logs.as_deref(), set.logs.as_deref(), &results_file);
    // Made before any job runs: a missing token is found now, not after hours of builds.
    let mut tracker = tracker_of(&args.tracker, &set.labels, env)?;
    let mut results = Results::open(&results_file).map_err(|e| failure(&e))?;
    let program = std::env::current_exe()
        .map_err(|e| CliError::new("cannot find this executable to run the jobs").caused_by(&e))?;
    let tools = Toolbox {
        program,
        store: store_args(&args.store),
        download_cache: args.cache.clone(),
        gpu_check: gpu_check_step(),
    };
    let progress = |event: Event<'_>| match event {
        Event::Started { job, index, total } => {
            output.detail(format!("[{}/{total}] {}", index + 1, job.id()));
        }
        Event::AlreadyRecorded { job } => {
            output.note(format!(
                "{}: recorded by the run this one takes up",
                job.id()
            ));
        }
        Event::Finished { result, changes } => {
            output.note(format!(
                "{}: {} ({:.1} s)",
                result.job.id(),
                outcome_line(result),
                seconds(result.duration_ms)
            ));
            for change in changes {
                output.note(format!("  {}", change.describe()));
            }
        }
    };
    let report = run_jobs(
        &mut results,
        &jobs,
        &shard.to_string(),
        &set,
        &tools,
        &logs,
        &progress,
    )
    .map_err(|e| failure(&e))?;
    let filed = match tracker.as_deref_mut() {
        Some(tracker) => {
            let filed = file(&mut results, tracker, &filing(config, &args.tracker, &logs))
                .map_err(|e| failure(&e))?;
            describe_filed(&filed, output);
            Some(filed)
        }
        None => None,
    };
    print_run(&report, filed.as_ref(), output)?;
    Ok(if report.failed() > 0 {
        Exit::Problems
    } else {
        Exit::Success
    })
}

pub fn issues(
    args: &IssuesArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    let results_file = results_path(args.results.as_deref(), config);
    let table = config.upkeep.as_ref();
    let labels = table.map_or_else(cudapkgs_upkeep::config::default_labels, |set| {
        set.labels.clone()
    });
    let Some(mut tracker) = tracker_of(&args.tracker, &labels, env)? else {
        return Err(CliError::new(
            "no issue tracker: pass --github-repo OWNER/NAME or --issues-dir DIR",
        ));
    };
    let mut results = Results::open(&results_file).map_err(|e| failure(&e))?;
    let logs = logs_folder(
        args.logs.as_deref(),
        table.and_then(|set| set.logs.as_deref()),
        &results_file,
    );
    let filed = file(
        &mut results,
        tracker.as_mut(),
        &filing(config, &args.tracker, &logs),
    )
    .map_err(|e| failure(&e))?;
    describe_filed(&filed, output);
    if output.json {
        Output::print_json(&filed)?;
    } else {
        Output::print(&format!(
            "{} opened, {} commented on, {} closed\n",
            filed.opened.len(),
            filed.commented.len(),
            filed.closed.len()
        ))?;
    }
    Ok(Exit::Success)
}

#[allow(clippy::cast_precision_loss, reason = "seconds for people")]
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn outcome_line(result: &cudapkgs_upkeep::JobResult) -> String {
    match &result.failure {
        None if result.reused => "passed (outputs unchanged)".to_owned(),
        None => "passed".to_owned(),
        Some(failure) => {
            let first = failure.message.lines().next().unwrap_or_default();
            format!("failed at {}: {first}", failure.step)
        }
    }
}

fn print_run(report: &RunReport, filed: Option<&Filed>, output: Output) -> CliResult<()> {
    if output.json {
        return Output::print_json(&super::json::RunDocument::of(report, filed));
    }
    let mut text = String::new();
    for Judged { result, .. } in &report.results {
        let _ = writeln!(text, "{}  {}", result.job.id(), outcome_line(result));
    }
    let passed = report
        .results
        .iter()
        .filter(|j| j.result.outcome == Outcome::Passed)
        .count();
    let regressions = report
        .results
        .iter()
        .flat_map(|j| &j.changes)
        .filter(|c| c.is_regression())
        .count();
    let _ = writeln!(
        text,
        "{} jobs: {passed} passed, {} failed, {regressions} regressions",
        report.results.len(),
        report.failed()
    );
    Output::print(&text)
}
