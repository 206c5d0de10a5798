//! `cudapkgs gc` and `cudapkgs store root`: garbage-collector roots and collection.

use std::fmt::Write as _;

use serde::Serialize;

use cudapkgs_store::store::Access;

use super::store::{failure, open_store_for};
use crate::cli::{RootCommand, StoreLocation};
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;
use crate::units;

#[derive(Debug, Serialize)]
struct RootReport<'a> {
    name: &'a str,
    path: &'a str,
}

/// `cudapkgs store root add|remove|list`.
pub fn root(command: &RootCommand, output: Output) -> CliResult<Exit> {
    match command {
        RootCommand::Add {
            name,
            path,
            location,
        } => {
            let mut store = open_store_for(location, Access::Existing)?;
            store.add_root(name, path).map_err(|error| {
                failure(&error).with_hint("add the path with `cudapkgs store add` first")
            })?;
            if output.json {
                Output::print_json(&RootReport { name, path })?;
            } else {
                output.detail(format!("root {name} -> {path}"));
            }
            Ok(Exit::Success)
        }
        RootCommand::Remove { name, location } => {
            let mut store = open_store_for(location, Access::Existing)?;
            if !store.remove_root(name).map_err(|error| failure(&error))? {
                return Err(CliError::new(format!("there is no root named `{name}`"))
                    .with_hint("`cudapkgs store root list` shows the roots"));
            }
            if output.json {
                Output::print_json(&serde_json::json!({ "removed": name }))?;
            } else {
                output.detail(format!("root {name} removed"));
            }
            Ok(Exit::Success)
        }
        RootCommand::List { location } => {
            let store = open_store_for(location, Access::ReadOnly)?;
            let roots = store.roots().map_err(|error| failure(&error))?;
            let reports: Vec<RootReport> = roots
                .iter()
                .map(|root| RootReport {
                    name: &root.name,
                    path: &root.path,
                })
                .collect();
            if output.json {
                Output::print_json(&reports)?;
            } else {
                let mut text = String::new();
                for report in &reports {
                    let _ = writeln!(text, "{}  {}", report.name, report.path);
                }
                Output::print(&text)?;
            }
            Ok(Exit::Success)
        }
    }
}

#[derive(Debug, Serialize)]
struct DeadReport<'a> {
    path: &'a str,
    nar_size: u64,
}

/// `cudapkgs gc [--dry-run]`.
pub fn gc(dry_run: bool, location: &StoreLocation, output: Output) -> CliResult<Exit> {
    let access = if dry_run {
        Access::ReadOnly
    } else {
        Access::Existing
    };
    let mut store = open_store_for(location, access)?;
    let collection = store
        .collect_garbage(dry_run)
        .map_err(|error| failure(&error))?;
    let dead: Vec<DeadReport> = collection
        .dead
        .iter()
        .map(|(path, nar_size)| DeadReport {
            path,
            nar_size: *nar_size,
        })
        .collect();
    if output.json {
        Output::print_json(&serde_json::json!({
            "dry_run": dry_run,
            "removed": dead,
            "removed_nar_size": collection.dead_bytes(),
            "unregistered_removed": collection.unregistered,
            "kept": collection.alive,
        }))?;
        return Ok(Exit::Success);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut text = String::new();
    for report in &dead {
        let _ = writeln!(
            text,
            "{verb} {}  ({})",
            report.path,
            units::bytes(report.nar_size)
        );
    }
    for path in &collection.unregistered {
        let _ = writeln!(text, "{verb} {path}  (not registered)");
    }
    let _ = writeln!(
        text,
        "{} {} paths, {}; {} paths kept",
        if dry_run { "would free" } else { "freed" },
        dead.len(),
        units::bytes(collection.dead_bytes()),
        collection.alive
    );
    Output::print(&text)?;
    Ok(Exit::Success)
}
