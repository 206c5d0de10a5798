//! `cudapkgs store root add|remove|list`: the garbage collector's roots.

use std::fmt::Write as _;

use cudapkgs_store::store::Access;
use serde::Serialize;

use crate::cli::RootCommand;
use crate::context::{open_store_for, store_failure};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct RootReport<'a> {
    name: &'a str,
    path: &'a str,
}

/// `cudapkgs store root remove --json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct RemovedReport<'a> {
    /// The root's name.
    removed: &'a str,
}

/// The JSON documents of `store root add`, `remove` and `list`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("store-root-add", schema_of::<RootReport>()),
        ("store-root-remove", schema_of::<RemovedReport>()),
        ("store-root-list", schema_of::<Vec<RootReport>>()),
    ]
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
            // A path of another form is no valid path of the store, as `add_root` says
            // of a path that is not registered.
            let added = store
                .parse_path(path)
                .and_then(|checked| store.add_root(name, &checked));
            added.map_err(|error| {
                store_failure(&error).with_hint("add the path with `cudapkgs store add` first")
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
            if !store
                .remove_root(name)
                .map_err(|error| store_failure(&error))?
            {
                return Err(CliError::new(format!("there is no root named `{name}`"))
                    .with_hint("`cudapkgs store root list` shows the roots"));
            }
            if output.json {
                Output::print_json(&RemovedReport { removed: name })?;
            } else {
                output.detail(format!("root {name} removed"));
            }
            Ok(Exit::Success)
        }
        RootCommand::List { location } => {
            let store = open_store_for(location, Access::ReadOnly)?;
            let roots = store.roots().map_err(|error| store_failure(&error))?;
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
