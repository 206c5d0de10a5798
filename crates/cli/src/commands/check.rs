//! `cudapkgs check`: runtime closures against a policy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use cudapkgs_check::{Policy, Report, Rule};
use cudapkgs_store::store::Access;
use serde::Serialize;

use crate::cli::{FileTreeArgs, StoreLocation};
use crate::context::{driver_dir, file_roots, open_store_for, resolve_all, store_failure};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::render::HopReport;
use crate::render::count;
use crate::settings::{
    Config, EnvLookup, Source, Targets, capabilities_of, names_release, targets, tell_sources,
};
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
    /// [default: the policy file's, else $CUDAPKGS_CAPABILITIES or $CUDAPKGS_GPU, else
    /// cudapkgs.toml's [cuda] capabilities or gpus; none: not checked]
    #[arg(long, value_name = "LIST", conflicts_with = "gpus")]
    pub capabilities: Option<String>,
    /// As --capabilities, by product name or capability, resolved with $CUDAPKGS_CUDA or
    /// cudapkgs.toml's [cuda] version (repeat for more)
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

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct ViolationReport<'a> {
    bytes: u64,
    chain: Vec<HopReport<'a>>,
    detail: &'a str,
    file: String,
    path: &'a str,
    root: &'a str,
    #[schemars(schema_with = "rule_names")]
    rule: &'static str,
}

/// `cudapkgs check --json` on store paths; its keys (and each violation's) in the order
/// of their names, as they always were.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct StoreCheckReport<'a> {
    /// Store paths looked at (the closures of the roots).
    paths_checked: usize,
    violations: &'a [ViolationReport<'a>],
}

/// `cudapkgs check --json` on folders and files.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct FilesCheckReport<'a> {
    files_checked: usize,
    violations: &'a [FileViolationReport<'a>],
}

/// The JSON documents of `check`: on store paths, and on folders and files.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("check", schema_of::<StoreCheckReport>()),
        ("check-files", schema_of::<FilesCheckReport>()),
    ]
}

/// A violated rule's name: one of those policies and `--allow` take.
fn rule_names(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = Rule::ALL.iter().map(|rule| rule.name()).collect();
    schemars::json_schema!({ "type": "string", "enum": names })
}

pub fn run(
    args: &CheckArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    let policy = policy(args, output, config, env)?;
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

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct FileViolationReport<'a> {
    bytes: u64,
    chain: Vec<FileHopReport<'a>>,
    detail: &'a str,
    file: &'a Path,
    #[schemars(schema_with = "rule_names")]
    rule: &'static str,
    start: &'a Path,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
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
        Output::print_json(&FilesCheckReport {
            files_checked: report.files,
            violations: &violations,
        })?;
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
fn policy(
    args: &CheckArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Policy> {
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
    // Flags beat the policy file; the environment and cudapkgs.toml fill in what the
    // file leaves open.
    let targets = targets(args.capabilities.as_deref(), &args.gpus, env, config)?;
    let release = names_release(None, env, config)?;
    tell_sources(
        output,
        &[("cuda", &release.source), ("capabilities", &targets.source)],
    );
    let flagged = matches!(targets.source, Source::Flag(_));
    if flagged || (policy.capabilities.is_empty() && targets.value != Targets::Default) {
        policy.capabilities = capabilities_of(&targets, release.value)?;
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
        return Output::print_json(&StoreCheckReport {
            paths_checked: report.paths,
            violations: &violations,
        });
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
