//! `cudapkgs features`: per package and system of a release, the outputs, GPU
//! architectures, provided and needed libraries, read from the archives themselves.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cudapkgs_builder::features::{FeaturesJson, of_archive};
use cudapkgs_redist::fetch::Request;
use cudapkgs_redist::manifest::{Archive, Manifest, SystemArchives};
use cudapkgs_redist::parallel;
use serde::Serialize;

use crate::cli::FeaturesArgs;
use crate::context::{build_failure, fetcher, load_manifest, mirror, redist_failure};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::progress::Bars;

/// One archive to read: package, system, CUDA variant (empty when none).
struct Job {
    package: String,
    system: String,
    variant: String,
    request: Request,
}

/// `features --json`: package → system → its features, or per CUDA variant
/// (`cuda12`) where the archives differ by CUDA release.
type Document<'a> = BTreeMap<&'a str, BTreeMap<&'a str, SystemFeatures<'a>>>;

/// A package's features on one system.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
enum SystemFeatures<'a> {
    /// One archive for every CUDA release.
    Single(FeaturesJson<'a>),
    /// An archive per CUDA variant.
    PerCuda(BTreeMap<&'a str, FeaturesJson<'a>>),
}

/// The JSON document of `features`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("features", schema_of::<Document>())]
}

pub fn run(args: &FeaturesArgs, output: Output) -> CliResult<Exit> {
    let fetcher = fetcher(&args.source, output)?;
    let manifest = load_manifest(&args.source, &fetcher)?;
    if let Some(missing) = args
        .packages
        .iter()
        .find(|p| !manifest.packages.contains_key(*p))
    {
        return Err(CliError::new(format!(
            "{} {} has no package `{missing}`",
            args.source.redist, args.source.release
        )));
    }
    let jobs = plan(args, &manifest);
    let progress = Bars::new(output);
    let requests: Vec<Request> = jobs.iter().map(|j| j.request.clone()).collect();
    let archives = fetcher.fetch_all(&requests, args.jobs, &progress);
    progress.finish();
    let mut paths = Vec::new();
    for (job, archive) in jobs.iter().zip(archives) {
        paths.push(archive.map_err(|error| redist_failure(&error).context(&job.package))?);
    }
    let results = parallel::map(&paths, args.jobs, |path| of_archive(path));
    let mut all = Vec::new();
    for (job, result) in jobs.iter().zip(results) {
        let features = result.map_err(|error| {
            build_failure(error).context(format!("{} {}", job.package, job.system))
        })?;
        all.push(features);
    }
    let mut document: Document = BTreeMap::new();
    let mut text = String::new();
    for (job, features) in jobs.iter().zip(&all) {
        let _ = writeln!(
            text,
            "{} {}{}: outputs {}; {} GPU architectures; provides {}; needs {}",
            job.package,
            job.system,
            if job.variant.is_empty() {
                String::new()
            } else {
                format!(" {}", job.variant)
            },
            features
                .outputs
                .iter()
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            features.cuda_architectures.len(),
            list_or_none(&features.provided_libs),
            list_or_none(&features.needed_libs),
        );
        let entry = document.entry(&job.package).or_default();
        if job.variant.is_empty() {
            entry.insert(&job.system, SystemFeatures::Single(features.to_json()));
        } else {
            let slot = entry
                .entry(&job.system)
                .or_insert_with(|| SystemFeatures::PerCuda(BTreeMap::new()));
            if let SystemFeatures::PerCuda(variants) = slot {
                variants.insert(&job.variant, features.to_json());
            }
        }
    }
    if output.json {
        Output::print_json(&document)?;
    } else {
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}

/// Every archive to read: the packages asked for (or all), on the systems asked for (or
/// every Linux one), each CUDA variant.
fn plan(args: &FeaturesArgs, manifest: &Manifest) -> Vec<Job> {
    let mirror = mirror(&args.source);
    let mut jobs = Vec::new();
    for package in manifest.packages.values() {
        if !args.packages.is_empty() && !args.packages.contains(&package.key) {
            continue;
        }
        for (system, archives) in &package.systems {
            let wanted = match &args.system {
                Some(only) => only == system,
                None => system.starts_with("linux-"),
            };
            if !wanted {
                continue;
            }
            let variants: Vec<(String, &Archive)> = match archives {
                SystemArchives::Single(archive) => vec![(String::new(), archive)],
                SystemArchives::PerCuda(map) => map.iter().map(|(v, a)| (v.clone(), a)).collect(),
            };
            for (variant, archive) in variants {
                jobs.push(Job {
                    package: package.key.clone(),
                    system: system.clone(),
                    variant,
                    request: mirror.request(&args.source.redist, archive),
                });
            }
        }
    }
    jobs
}

fn list_or_none(items: &std::collections::BTreeSet<String>) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}
