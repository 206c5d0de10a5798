//! `cudapkgs diff`: what changed between two closures, per package.

use std::fmt::Write as _;

use cudapkgs_store::diff::{ClosureDiff, PackageChange};
use cudapkgs_store::store::Access;
use serde::Serialize;

use crate::cli::StoreLocation;
use crate::context::{open_store_for, store_failure};
use crate::error::{CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::units;

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct ChangeReport<'a> {
    after: &'a [String],
    before: &'a [String],
    change: ChangeKind,
    package: &'a str,
    size_after: u64,
    size_before: u64,
    size_delta: i128,
}

/// `cudapkgs diff --json`, its keys (and each change's) in the order of their names.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct DiffReport<'a> {
    changes: &'a [ChangeReport<'a>],
    size_after: u64,
    size_before: u64,
    size_delta: i128,
}

/// The JSON document of `diff`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("diff", schema_of::<DiffReport>())]
}

/// How a package changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum ChangeKind {
    Added,
    Removed,
    /// Its versions differ.
    Version,
    /// The same versions, another size.
    Size,
}

/// A package absent from a closure has size 0 there (no NAR is empty).
fn kind(change: &PackageChange) -> ChangeKind {
    if change.size_before == 0 {
        ChangeKind::Added
    } else if change.size_after == 0 {
        ChangeKind::Removed
    } else if change.before == change.after {
        ChangeKind::Size
    } else {
        ChangeKind::Version
    }
}

/// `cudapkgs diff BEFORE AFTER`.
pub fn run(before: &str, after: &str, location: &StoreLocation, output: Output) -> CliResult<Exit> {
    let store = open_store_for(location, Access::ReadOnly)?;
    let before = store
        .resolve(before)
        .map_err(|error| store_failure(&error))?;
    let after = store
        .resolve(after)
        .map_err(|error| store_failure(&error))?;
    let ClosureDiff {
        changes,
        size_before,
        size_after,
    } = cudapkgs_store::diff::diff(&store, &[before], &[after]).map_err(|error| {
        store_failure(&error).with_hint("both paths must be valid paths of this store")
    })?;
    let reports: Vec<ChangeReport> = changes
        .iter()
        .map(|change| ChangeReport {
            package: &change.name,
            change: kind(change),
            before: &change.before,
            after: &change.after,
            size_before: change.size_before,
            size_after: change.size_after,
            size_delta: change.delta(),
        })
        .collect();
    let total = i128::from(size_after) - i128::from(size_before);
    if output.json {
        Output::print_json(&DiffReport {
            changes: &reports,
            size_before,
            size_after,
            size_delta: total,
        })?;
        return Ok(Exit::Success);
    }
    let mut text = String::new();
    for report in &reports {
        // As `nix store diff-closures` writes them: ∅ absent, ε present without a
        // version.
        let versions = |list: &[String], present: bool| match (present, list.is_empty()) {
            (false, _) => "∅".to_owned(),
            (true, true) => "ε".to_owned(),
            (true, false) => list.join(", "),
        };
        let what = match report.change {
            ChangeKind::Size => String::new(),
            change => format!(
                "{} → {}, ",
                versions(report.before, change != ChangeKind::Added),
                versions(report.after, change != ChangeKind::Removed)
            ),
        };
        let _ = writeln!(
            text,
            "{}: {what}{}",
            report.package,
            units::delta(report.size_delta)
        );
    }
    let _ = writeln!(
        text,
        "closure: {} → {} ({})",
        output.size(size_before),
        output.size(size_after),
        units::delta(total)
    );
    Output::print(&text)?;
    Ok(Exit::Success)
}
