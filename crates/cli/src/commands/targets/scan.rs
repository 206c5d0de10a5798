//! `cudapkgs targets scan`: where builds force their own GPU targets.

use std::fmt::Write as _;

use cudapkgs_targets::{Finding, Request};
use serde::Serialize;

use super::{RequestJson, ScanArgs, json, read_input, request};
use crate::error::{CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::settings::{Config, EnvLookup};

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct ScanJson {
    request: Option<RequestJson>,
    inputs: Vec<InputJson>,
    findings: Vec<FindingJson>,
    summary: SummaryJson,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct InputJson {
    path: String,
    files_read: usize,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct FindingJson {
    pub input: String,
    pub file: String,
    pub line: usize,
    pub end_line: usize,
    pub kind: &'static str,
    pub architectures: Vec<String>,
    pub overrides_user: bool,
    /// A list of what the project supports, which filters the user's request.
    pub upper_bound: bool,
    pub reason: String,
}

impl FindingJson {
    pub(super) fn new(input: &str, file: &str, finding: &Finding) -> FindingJson {
        FindingJson {
            input: input.to_owned(),
            file: file.to_owned(),
            line: finding.line,
            end_line: finding.end_line,
            kind: finding.kind.name(),
            architectures: finding.forced.names(),
            overrides_user: finding.overrides_user,
            upper_bound: finding.upper_bound,
            reason: finding.reason.clone(),
        }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct SummaryJson {
    files_read: usize,
    findings: usize,
    /// Findings that fail the scan: they override the user (or, with a request,
    /// keep the build from having exactly the requested targets).
    forcing: usize,
}

/// The JSON document of `targets scan`.
pub(super) fn schema() -> (&'static str, schemars::Schema) {
    ("targets-scan", schema_of::<ScanJson>())
}

pub(super) fn run(
    args: &ScanArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    let request = request(&args.request, output, config, env, None, false)?;
    let mut inputs = Vec::new();
    let mut findings = Vec::new();
    let mut files_read = 0;
    for path in &args.paths {
        let (_, files) = read_input(path, &args.exclude)?;
        let shown = path.display().to_string();
        files_read += files.len();
        inputs.push(InputJson {
            path: shown.clone(),
            files_read: files.len(),
        });
        for file in cudapkgs_targets::scan(&files) {
            let name = file.path.display().to_string();
            for finding in &file.findings {
                if request
                    .as_ref()
                    .is_none_or(|request| finding.conflicts_with(request))
                {
                    findings.push(FindingJson::new(&shown, &name, finding));
                }
            }
        }
    }
    let forcing = findings
        .iter()
        .filter(|finding| request.is_some() || finding.overrides_user)
        .count();
    if json(output, args.format) {
        Output::print_json(&ScanJson {
            request: request.as_ref().map(RequestJson::new),
            inputs,
            summary: SummaryJson {
                files_read,
                findings: findings.len(),
                forcing,
            },
            findings,
        })?;
    } else {
        Output::print(&human(
            &findings,
            request.as_ref(),
            files_read,
            forcing,
            args.paths.len() > 1,
        ))?;
    }
    Ok(if forcing > 0 {
        Exit::Problems
    } else {
        Exit::Success
    })
}

fn human(
    findings: &[FindingJson],
    request: Option<&Request>,
    files_read: usize,
    forcing: usize,
    several: bool,
) -> String {
    let mut out = String::new();
    if let Some(request) = request {
        let _ = writeln!(
            out,
            "requested: {} (CUDA {})",
            cudapkgs_targets::describe(&request.targets),
            request.options.cuda
        );
    }
    let width = findings
        .iter()
        .map(|finding| location(finding, several).len())
        .max()
        .unwrap_or(0);
    for finding in findings {
        let verdict = match (
            request.is_some() || finding.overrides_user,
            finding.upper_bound,
        ) {
            (true, _) => "forces",
            (false, true) => "limits",
            (false, false) => "default",
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:<23} {:<7} {}\n{:<width$}  {}",
            location(finding, several),
            finding.kind,
            verdict,
            finding.architectures.join(" "),
            "",
            finding.reason,
        );
    }
    let defaults = findings.len() - forcing;
    let against = match (request.is_some(), forcing) {
        (true, _) => "targets other than the request",
        (false, 1) => "its own targets",
        (false, _) => "their own targets",
    };
    let _ = writeln!(
        out,
        "{forcing} {} {against} in {files_read} build {} read{}",
        if forcing == 1 {
            "place forces"
        } else {
            "places force"
        },
        if files_read == 1 { "file" } else { "files" },
        if defaults > 0 {
            format!(
                "; {defaults} more {} the user's choice (defaults it replaces, lists of what is supported)",
                if defaults == 1 { "follows" } else { "follow" }
            )
        } else {
            String::new()
        }
    );
    out
}

fn location(finding: &FindingJson, several: bool) -> String {
    let lines = if finding.end_line > finding.line {
        format!("{}-{}", finding.line, finding.end_line)
    } else {
        finding.line.to_string()
    };
    if several {
        format!("{}: {}:{lines}", finding.input, finding.file)
    } else {
        format!("{}:{lines}", finding.file)
    }
}
