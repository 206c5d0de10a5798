//! `cudapkgs check`: runtime closures against a policy.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use cudapkgs_check::{Policy, Report};
use cudapkgs_store::store::Access;
use serde::Serialize;

use super::store::{HopReport, failure, open_store_for, resolve_all};
use crate::cli::StoreLocation;
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;
use crate::units;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Store paths, or names of roots, whose closures are checked
    #[arg(required = true, value_name = "STORE_PATH")]
    pub paths: Vec<String>,
    /// A policy file: `deny = ["magma"]`, `allow = ["header"]` (rules switched off)
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A package no closure may hold (repeat for more)
    #[arg(long = "deny", value_name = "NAME")]
    pub deny: Vec<String>,
    /// A rule switched off: denied, toolkit, static-library, header, stub-library,
    /// stub-runpath (repeat for more)
    #[arg(long = "allow", value_name = "RULE")]
    pub allow: Vec<String>,
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
    let store = open_store_for(&args.location, Access::ReadOnly)?;
    let roots = resolve_all(&store, &args.paths)?;
    let report =
        cudapkgs_check::check_closure(&store, &roots, &policy).map_err(|error| match error {
            cudapkgs_check::Error::Store(error) => failure(&error),
            other => CliError::new(other.to_string()),
        })?;
    print(&report, output)?;
    Ok(if report.violations.is_empty() {
        Exit::Success
    } else {
        Exit::Problems
    })
}

/// The policy file's, with the flags' names and rules added.
fn policy(args: &CheckArgs) -> CliResult<Policy> {
    let mut policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| CliError::new(format!("{}: {error}", path.display())))?;
            Policy::parse(&text, path).map_err(|error| CliError::new(error.to_string()))?
        }
        None => Policy::default(),
    };
    for name in &args.deny {
        policy
            .deny_name(name)
            .map_err(|error| CliError::new(format!("--deny: {error}")))?;
    }
    for rule in &args.allow {
        policy
            .allow_rule(rule)
            .map_err(|error| CliError::new(format!("--allow: {error}")))?;
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
    let paths = report.paths;
    let _ = match report.violations.len() {
        0 => writeln!(text, "{paths} paths checked, no violation"),
        1 => writeln!(text, "{paths} paths checked, 1 violation"),
        n => writeln!(text, "{paths} paths checked, {n} violations"),
    };
    Output::print(&text)
}
