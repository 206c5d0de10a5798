//! `cudapkgs check`: runtime closures against a policy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use cudapkgs_check::{Policy, Report};
use cudapkgs_store::store::Access;
use serde::Serialize;

use crate::cli::{FileTreeArgs, StoreLocation};
use crate::context::{driver_dir, file_roots, open_store_for, resolve_all, store_failure};
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;
use crate::render::HopReport;
use crate::render::count;
use crate::settings::flag_capabilities;
use crate::units;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Store paths or names of roots; or folders and files (a venv, a container's
    /// root), written with a `/` (`./venv`), whose run-time closures through the ELF
    /// graph are checked
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// A policy file: `deny = ["magma"]`, `allow = ["header"]` (rules switched off)
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A package no closure may hold (repeat for more)
    #[arg(long = "deny", value_name = "NAME")]
    pub deny: Vec<String>,
    /// A rule switched off: denied, toolkit, static-library, header, stub-library,
    /// stub-runpath, unresolved, driver, missing-target, unrequested-target (repeat for
    /// more)
    #[arg(long = "allow", value_name = "RULE")]
    pub allow: Vec<String>,
    /// Device code must be for exactly these GPUs: each file with device code needs an
    /// image for every one, and holds no SASS or PTX that none of them loads (`8.6,9.0`)
    #[arg(long, value_name = "LIST", conflicts_with = "gpus")]
    pub capabilities: Option<String>,
    /// As --capabilities, by product name or capability (repeat for more)
    #[arg(long = "gpu", value_name = "NAME")]
    pub gpus: Vec<String>,
    /// The driver's library folder that files using the driver must find (`host`: where
    /// this machine's libcuda.so.1 is) [default: /run/opengl-driver/lib]
    #[arg(long, value_name = "DIR|host")]
    pub driver_dir: Option<String>,
    #[command(flatten)]
    pub tree: FileTreeArgs,
    #[command(flatten)]
    pub location: StoreLocation,
}

#[derive(Debug, Serialize)]
struct ViolationReport<'a> {
    rule: &'static str,
    path: &'a str,
    file: String,
    bytes: u64,
    detail: &'a str,
    root: &'a str,
    chain: Vec<HopReport<'a>>,
}

pub fn run(args: &CheckArgs, output: Output) -> CliResult<Exit> {
    let policy = policy(args)?;
    if args
        .paths
        .iter()
        .any(|path| cudapkgs_check::files::names_a_file(path))
    {
        return run_on_files(&args.paths, &args.tree, &policy, output);
    }
    let store = open_store_for(&args.location, Access::ReadOnly)?;
    let roots = resolve_all(&store, &args.paths)?;
    let report =
        cudapkgs_check::check_closure(&store, &roots, &policy).map_err(|error| match error {
            cudapkgs_check::Error::Store(error) => store_failure(&error),
            other => CliError::from_error(&other),
        })?;
    print(&report, output)?;
    Ok(if report.violations.is_empty() {
        Exit::Success
    } else {
        Exit::Problems
    })
}

#[derive(Debug, Serialize)]
struct FileViolationReport<'a> {
    rule: &'static str,
    file: &'a Path,
    bytes: u64,
    detail: &'a str,
    start: &'a Path,
    chain: Vec<FileHopReport<'a>>,
}

#[derive(Debug, Serialize)]
struct FileHopReport<'a> {
    file: &'a Path,
    loads: &'a str,
}

fn run_on_files(
    paths: &[String],
    tree: &FileTreeArgs,
    policy: &Policy,
    output: Output,
) -> CliResult<Exit> {
    let (roots, search, threads) = file_roots(paths, tree, output)?;
    let report = cudapkgs_check::check_files(&roots, &search, policy, threads)
        .map_err(|error| CliError::from_error(&error))?;
    let violations: Vec<FileViolationReport> = report
        .violations
        .iter()
        .map(|v| FileViolationReport {
            rule: v.rule.name(),
            file: &v.file,
            bytes: v.bytes,
            detail: &v.detail,
            start: &v.start,
            chain: v
                .chain
                .iter()
                .map(|(file, loads)| FileHopReport { file, loads })
                .collect(),
        })
        .collect();
    if output.json {
        Output::print_json(&serde_json::json!({
            "files_checked": report.files,
            "violations": violations,
        }))?;
    } else {
        let mut text = String::new();
        for v in &report.violations {
            let detail = if v.detail.is_empty() {
                String::new()
            } else {
                format!(" `{}`", v.detail)
            };
            let _ = writeln!(
                text,
                "{}{detail}: {} ({})",
                v.rule.describe(),
                v.file.display(),
                units::bytes(v.bytes)
            );
            if !v.chain.is_empty() {
                let _ = writeln!(text, "  from {}", v.start.display());
                for (file, loads) in &v.chain {
                    let _ = writeln!(text, "    {} loads {loads}", file.display());
                }
            }
        }
        let _ = writeln!(
            text,
            "{} checked, {}",
            count(report.files, "file", "files"),
            violation_count(report.violations.len())
        );
        Output::print(&text)?;
    }
    Ok(if report.violations.is_empty() {
        Exit::Success
    } else {
        Exit::Problems
    })
}

fn violation_count(count: usize) -> String {
    match count {
        0 => "no violation".to_owned(),
        1 => "1 violation".to_owned(),
        n => format!("{n} violations"),
    }
}

/// The policy file's, with the flags' names and rules added and their GPUs and driver
/// folder in place of the file's.
fn policy(args: &CheckArgs) -> CliResult<Policy> {
    let mut policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| CliError::new(path.display().to_string()).caused_by(&error))?;
            Policy::parse(&text, path).map_err(|error| CliError::from_error(&error))?
        }
        None => Policy::default(),
    };
    for name in &args.deny {
        policy
            .deny_name(name)
            .map_err(|error| CliError::from_error(&error).context("--deny"))?;
    }
    for rule in &args.allow {
        policy
            .allow_rule(rule)
            .map_err(|error| CliError::from_error(&error).context("--allow"))?;
    }
    if args.capabilities.is_some() || !args.gpus.is_empty() {
        policy.capabilities = flag_capabilities(
            args.capabilities.as_deref(),
            &args.gpus,
            cudapkgs_caps::DEFAULT_CUDA,
        )?;
    }
    if args.driver_dir.is_some() {
        policy.driver_dir = driver_dir(args.driver_dir.as_deref())?;
    }
    Ok(policy)
}

fn print(report: &Report, output: Output) -> CliResult<()> {
    let violations: Vec<ViolationReport> = report
        .violations
        .iter()
        .map(|v| ViolationReport {
            rule: v.rule.name(),
            path: &v.path,
            file: v.file.display().to_string(),
            bytes: v.bytes,
            detail: &v.detail,
            root: &v.root,
            chain: v.chain.iter().map(HopReport::of).collect(),
        })
        .collect();
    if output.json {
        return Output::print_json(&serde_json::json!({
            "paths_checked": report.paths,
            "violations": violations,
        }));
    }
    let mut text = String::new();
    for (violation, shown) in report.violations.iter().zip(&violations) {
        let place = if shown.file.is_empty() {
            violation.path.clone()
        } else {
            format!("{}/{}", violation.path, shown.file)
        };
        let detail = if violation.detail.is_empty() {
            String::new()
        } else {
            format!(" `{}`", violation.detail)
        };
        let _ = writeln!(
            text,
            "{}{detail}: {place} ({})",
            violation.rule.describe(),
            units::bytes(violation.bytes)
        );
        if !shown.chain.is_empty() {
            let _ = writeln!(text, "  from {}", violation.root);
            for hop in &shown.chain {
                let _ = writeln!(text, "  {}", hop.line());
            }
        }
    }
    let _ = writeln!(
        text,
        "{} checked, {}",
        count(report.paths, "path", "paths"),
        violation_count(report.violations.len())
    );
    Output::print(&text)
}
