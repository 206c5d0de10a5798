//! `inspect --expect-capabilities`: does each binary hold SASS for exactly the requested
//! capabilities, and PTX only where forward compatibility asks for it?

use std::collections::BTreeSet;
use std::fmt::Write as _;

use cudapkgs_caps::{
    Capability, CudaOptions, DEFAULT_CUDA, HostPlatform, ResolvedOptions, newest_tabulated_cuda,
    parse_capability_list,
};
use cudapkgs_fatbin::EntryKind;
use serde::Serialize;

use super::report::Report;
use crate::error::{CliError, CliResult};

/// What the binaries should hold.
#[derive(Debug, Clone)]
pub(crate) struct Expectation {
    pub sass: BTreeSet<Capability>,
    pub ptx: BTreeSet<Capability>,
}

impl Expectation {
    /// The targets of the standard options for `list`: SASS for each capability and,
    /// with forward compatibility, PTX for the highest (its baseline for `a`/`f`).
    pub fn new(list: &str, forward_compat: bool) -> CliResult<Expectation> {
        let capabilities = parse_capability_list(list)
            .map_err(|error| CliError::from_error(&error).context("--expect-capabilities"))?;
        let resolved = resolve(&capabilities, forward_compat)
            .map_err(|error| CliError::from(error).context("--expect-capabilities"))?;
        Ok(Expectation {
            sass: resolved.capabilities.iter().copied().collect(),
            ptx: resolved.ptx.into_iter().collect(),
        })
    }
}

/// Resolves with the default CUDA release, or the newest the table knows when a
/// capability needs it: the release only decides what is valid here.
fn resolve(
    capabilities: &[Capability],
    forward_compat: bool,
) -> Result<ResolvedOptions, cudapkgs_caps::OptionsError> {
    let platform = if capabilities
        .iter()
        .any(|c| cudapkgs_caps::lookup(*c).is_some_and(|arch| arch.jetson))
    {
        HostPlatform::Aarch64Server
    } else {
        HostPlatform::X86_64
    };
    let options = |cuda| CudaOptions {
        cuda,
        capabilities: Some(capabilities.to_vec()),
        forward_compat,
        platform,
    };
    options(DEFAULT_CUDA).resolve().or_else(|error| {
        options(newest_tabulated_cuda())
            .resolve()
            .map_err(|_| error)
    })
}

/// One file's targets against the expectation.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct FileCheck {
    pub path: String,
    pub matches: bool,
    pub missing_sass: Vec<String>,
    pub extra_sass: Vec<String>,
    pub missing_ptx: Vec<String>,
    pub extra_ptx: Vec<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct ExpectationJson {
    pub sass: Vec<String>,
    pub ptx: Vec<String>,
    pub files: Vec<FileCheck>,
    pub mismatched: usize,
    /// Some file holds device code and every one matches.
    pub pass: bool,
}

/// Checks every file with device code, and every named file (a named file without
/// device code holds none of the expected SASS).
pub(crate) fn check(report: &Report, expectation: &Expectation) -> ExpectationJson {
    let mut files = Vec::new();
    for file in &report.files {
        let cudapkgs_tree::Outcome::Done(result) = &file.outcome else {
            continue;
        };
        if !result.scan.has_device_code() && !file.source.named {
            continue;
        }
        let mut sass = BTreeSet::new();
        let mut ptx = BTreeSet::new();
        for entry in result.scan.entries() {
            let Some(capability) = entry.capability else {
                continue;
            };
            match entry.kind {
                EntryKind::Sass => {
                    sass.insert(capability);
                }
                // Code the driver or a device link compiles for that architecture.
                EntryKind::Ptx | EntryKind::RelocatablePtx | EntryKind::LtoIr => {
                    ptx.insert(capability);
                }
                EntryKind::Concatenated | EntryKind::Other(_) => {}
            }
        }
        let names = |set: BTreeSet<&Capability>, name: fn(Capability) -> String| {
            set.into_iter().map(|c| name(*c)).collect::<Vec<_>>()
        };
        let check = FileCheck {
            path: file.source.display.clone(),
            missing_sass: names(
                expectation.sass.difference(&sass).collect(),
                Capability::sm_name,
            ),
            extra_sass: names(
                sass.difference(&expectation.sass).collect(),
                Capability::sm_name,
            ),
            missing_ptx: names(
                expectation.ptx.difference(&ptx).collect(),
                Capability::compute_name,
            ),
            extra_ptx: names(
                ptx.difference(&expectation.ptx).collect(),
                Capability::compute_name,
            ),
            matches: false,
        };
        let matches = check.missing_sass.is_empty()
            && check.extra_sass.is_empty()
            && check.missing_ptx.is_empty()
            && check.extra_ptx.is_empty();
        files.push(FileCheck { matches, ..check });
    }
    let mismatched = files.iter().filter(|file| !file.matches).count();
    ExpectationJson {
        sass: expectation.sass.iter().map(|c| c.sm_name()).collect(),
        ptx: expectation.ptx.iter().map(|c| c.compute_name()).collect(),
        mismatched,
        pass: !files.is_empty() && mismatched == 0,
        files,
    }
}

pub(crate) fn human(check: &ExpectationJson) -> String {
    let mut out = String::new();
    let ptx = if check.ptx.is_empty() {
        "no PTX".to_owned()
    } else {
        format!("PTX {}", check.ptx.join(" "))
    };
    let _ = writeln!(out, "\nexpected: SASS {}, {ptx}", check.sass.join(" "));
    if check.files.is_empty() {
        let _ = writeln!(
            out,
            "  no file with device code: nothing holds the expected SASS"
        );
    }
    for file in &check.files {
        if file.matches {
            let _ = writeln!(out, "  ok        {}", file.path);
            continue;
        }
        let mut problems = Vec::new();
        let mut say = |what: &str, list: &[String]| {
            if !list.is_empty() {
                problems.push(format!("{what} {}", list.join(" ")));
            }
        };
        say("missing SASS", &file.missing_sass);
        say("unexpected SASS", &file.extra_sass);
        say("missing PTX", &file.missing_ptx);
        say("unexpected PTX", &file.extra_ptx);
        let _ = writeln!(out, "  mismatch  {}: {}", file.path, problems.join("; "));
    }
    out
}
