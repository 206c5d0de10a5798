//! `cudapkgs schema`: the JSON Schema of each document `--json` prints, generated from
//! the types that print it, so the schema cannot drift from the output.

use std::fmt::Write as _;

use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;

/// The version of the documents' shape: raised when a key changes meaning or goes.
pub const DOCUMENTS_VERSION: u32 = 1;

/// Prints the schema of `document`, or the names of the documents with one.
pub fn run(
    document: Option<&str>,
    schemas: &[(&'static str, schemars::Schema)],
) -> CliResult<Exit> {
    let Some(wanted) = document else {
        let mut text = String::new();
        for (name, _) in schemas {
            let _ = writeln!(text, "{name}");
        }
        Output::print(&text)?;
        return Ok(Exit::Success);
    };
    let (name, schema) = schemas
        .iter()
        .find(|(name, _)| *name == wanted)
        .ok_or_else(|| {
            let names: Vec<&str> = schemas.iter().map(|(name, _)| *name).collect();
            CliError::new(format!("no schema for `{wanted}`"))
                .with_hint(format!("the documents with one: {}", names.join(", ")))
        })?;
    let mut schema = schema.clone();
    schema.insert(
        "$id".to_owned(),
        format!("urn:cudapkgs:schema:v{DOCUMENTS_VERSION}:{name}").into(),
    );
    schema.insert(
        "title".to_owned(),
        format!("cudapkgs --json document: {name}").into(),
    );
    Output::print_json(&schema)?;
    Ok(Exit::Success)
}
