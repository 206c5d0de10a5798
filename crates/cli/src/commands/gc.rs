//! `cudapkgs gc`: garbage collection (the roots it keeps are `cudapkgs store root`'s).

use std::fmt::Write as _;

use serde::Serialize;

use cudapkgs_store::store::Access;

use crate::cli::StoreLocation;
use crate::context::{open_store_for, store_failure};
use crate::error::{CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::render::count;

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct DeadReport<'a> {
    nar_size: u64,
    path: &'a str,
}

/// `cudapkgs gc --json`, its keys in the order of their names.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct GcReport<'a> {
    dry_run: bool,
    /// Valid paths kept.
    kept: usize,
    /// The valid paths removed (or, with `--dry-run`, that would be).
    removed: &'a [DeadReport<'a>],
    removed_nar_size: u64,
    /// Entries of the store folder that were not registered.
    unregistered_removed: &'a [String],
}

/// The JSON document of `gc`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("gc", schema_of::<GcReport>())]
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
        .map_err(|error| store_failure(&error))?;
    let dead: Vec<DeadReport> = collection
        .dead
        .iter()
        .map(|(path, nar_size)| DeadReport {
            path,
            nar_size: *nar_size,
        })
        .collect();
    if output.json {
        Output::print_json(&GcReport {
            dry_run,
            kept: collection.alive,
            removed: &dead,
            removed_nar_size: collection.dead_bytes(),
            unregistered_removed: &collection.unregistered,
        })?;
        return Ok(Exit::Success);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut text = String::new();
    for report in &dead {
        let _ = writeln!(
            text,
            "{verb} {}  ({})",
            report.path,
            output.size(report.nar_size)
        );
    }
    for path in &collection.unregistered {
        let _ = writeln!(text, "{verb} {path}  (not registered)");
    }
    let _ = writeln!(
        text,
        "{} {}, {}; {} kept",
        if dry_run { "would free" } else { "freed" },
        count(dead.len(), "path", "paths"),
        output.size(collection.dead_bytes()),
        count(collection.alive, "path", "paths")
    );
    Output::print(&text)?;
    Ok(Exit::Success)
}
