//! The JSON documents of `build`: what was built, the plan of `--dry-run`, and the
//! libraries no package provides. Keys in the order of their names, as they always were.

use std::collections::{BTreeMap, BTreeSet};

use cudapkgs_builder::Missing;
use cudapkgs_builder::realise::Built;
use cudapkgs_builder::resolve::Resolved;
use schemars::JsonSchema;
use serde::Serialize;

use crate::output::schema_of;

/// One package `build --json` built (or took from a build record).
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct BuiltReport<'a> {
    /// Output → SASS architectures (`sm_90`) and PTX (`compute_90`) found in it.
    architectures: &'a BTreeMap<&'static str, BTreeSet<String>>,
    /// Packages of the set whose libraries it needs.
    depends_on: &'a [String],
    /// Kernels checked per requested capability.
    kernels_checked: usize,
    /// Kernels of files that do not load on a requested GPU.
    kernels_without_image: usize,
    licence: Option<&'a str>,
    /// Output → store path.
    outputs: BTreeMap<&'a str, &'a str>,
    package: &'a str,
    /// What pruning removed, per output.
    pruned: BTreeMap<&'a str, PrunedReport<'a>>,
    /// Roots this build took from another path.
    repointed: Vec<RepointedReport<'a>>,
    /// The packages of the set that need this one.
    required_by: Vec<&'a str>,
    /// Taken from a build record: nothing was unpacked or added.
    reused: bool,
    version: &'a str,
}

#[derive(Debug, Serialize, JsonSchema)]
struct PrunedReport<'a> {
    files: usize,
    /// Files left whole: `[file, why]`.
    refused: &'a [(String, String)],
    removed_bytes: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
struct RepointedReport<'a> {
    root: &'a str,
    /// The path the root held before.
    was: &'a str,
}

impl<'a> BuiltReport<'a> {
    /// `built` as `build --json` shows it, with the packages of `resolved` needing it.
    pub(super) fn of(built: &'a Built, resolved: Option<&'a Resolved>) -> Self {
        BuiltReport {
            architectures: &built.targets.architectures,
            depends_on: &built.depends_on,
            kernels_checked: built.targets.kernels_checked,
            kernels_without_image: built.targets.missing.len(),
            licence: built.licence.as_deref(),
            outputs: built
                .outputs
                .iter()
                .map(|(name, path)| (name.as_str(), path.as_str()))
                .collect(),
            package: &built.package,
            pruned: built
                .pruned
                .iter()
                .map(|(name, done)| {
                    let report = PrunedReport {
                        files: done.files,
                        refused: &done.refused,
                        removed_bytes: done.removed_bytes,
                    };
                    (name.as_str(), report)
                })
                .collect(),
            repointed: built
                .repointed
                .iter()
                .map(|(root, was)| RepointedReport { root, was })
                .collect(),
            required_by: resolved
                .map(|r| r.required_by.iter().map(|by| by.package.as_str()).collect())
                .unwrap_or_default(),
            reused: built.reused,
            version: &built.version,
        }
    }
}

/// One package `build --dry-run --json` would build.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct PlannedReport<'a> {
    /// Its archive or wheel is in the download cache already.
    pub(super) cached: bool,
    pub(super) package: &'a str,
    /// The packages of the set that need this one (empty: asked for).
    pub(super) required_by: Vec<&'a str>,
    /// The URL or the local file it is built from.
    pub(super) source: String,
    pub(super) version: &'a str,
}

/// `build --json` when files need libraries no package of the set provides (exit 1).
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct UnresolvedReport<'a> {
    pub(super) unresolved: Vec<MissingReport<'a>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct MissingReport<'a> {
    /// `<output>/<path in the output>`.
    file: &'a str,
    library: &'a str,
    package: &'a str,
    /// The package that provides the library, when one is known.
    provider: Option<&'static str>,
}

impl<'a> MissingReport<'a> {
    pub(super) fn of(missing: &'a Missing, provider: Option<&'static str>) -> Self {
        MissingReport {
            file: &missing.file,
            library: &missing.library,
            package: &missing.package,
            provider,
        }
    }
}

/// The JSON documents of `build`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("build", schema_of::<Vec<BuiltReport>>()),
        ("build-plan", schema_of::<Vec<PlannedReport>>()),
        ("build-unresolved", schema_of::<UnresolvedReport>()),
    ]
}
