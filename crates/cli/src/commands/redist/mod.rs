//! `cudapkgs redist` and `cudapkgs split`: NVIDIA's manifests, cached downloads, and
//! packages split into outputs.

mod wheel;

use std::fmt::Write as _;

use cudapkgs_redist::fetch::Request;
use cudapkgs_redist::manifest::{SystemArchives, host_system};
use cudapkgs_redist::unpack::Limits;
use cudapkgs_report::{Phase, Task};
use serde::Serialize;

use crate::cli::{RedistCommand, RedistSource, SplitArgs};
use crate::context::{fetcher, fetcher_at, load_manifest, mirror, offline_setting, redist_failure};
use crate::error::{CliError, CliResult, Exit, one_line};
use crate::output::{Output, schema_of};
use crate::progress::Bars;
use crate::units;

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct ListRow<'a> {
    package: &'a str,
    name: &'a str,
    version: &'a str,
    /// Archive size per CUDA variant (`""` when there are none).
    archives: Vec<(String, u64)>,
}

/// One archive `redist fetch --json` downloaded (or found in the cache).
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct FetchedReport<'a> {
    package: &'a str,
    path: std::path::PathBuf,
}

/// `split --json`, its keys (and each output's) in the order of their names, as they
/// always were.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct SplitReport<'a> {
    /// What was fixed on the way (a pkg-config file rewritten), as `-v` shows it.
    fixups: &'a [String],
    outputs: &'a [OutputReport<'a>],
}

/// The JSON documents of `redist list`, `fetch` and `wheel`, and of `split`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("redist-list", schema_of::<Vec<ListRow>>()),
        ("redist-fetch", schema_of::<Vec<FetchedReport>>()),
        wheel::schema(),
        ("split", schema_of::<SplitReport>()),
    ]
}

pub fn run(command: &RedistCommand, output: Output) -> CliResult<Exit> {
    match command {
        RedistCommand::List { source, system } => list(source, system.as_deref(), output),
        RedistCommand::Fetch {
            source,
            system,
            cuda,
            jobs,
            packages,
        } => {
            let (config, _) = crate::settings::loaded();
            let release = crate::settings::release_setting(
                cuda.as_ref(),
                &crate::settings::process_env,
                config,
            )?;
            if let Some(release) = &release {
                crate::settings::tell_sources(output, &[("cuda", &release.source)]);
            }
            fetch(
                source,
                system.as_deref(),
                release.map(|release| u32::from(release.value.version().major())),
                *jobs,
                packages,
                output,
            )
        }
        RedistCommand::Wheel {
            packages,
            cuda,
            index_url,
            system,
            cache,
            jobs,
            pre,
            offline,
        } => {
            let (config, _) = crate::settings::loaded();
            let index = crate::settings::index_url(
                index_url.as_deref(),
                &crate::settings::process_env,
                config,
            )?;
            let release = crate::settings::build_release(
                cuda.as_ref(),
                &crate::settings::process_env,
                config,
            )?;
            crate::settings::tell_sources(
                output,
                &[("index url", &index.source), ("cuda", &release.source)],
            );
            let index = index.value;
            let mut fetcher = fetcher_at(cache.as_ref())?;
            fetcher.offline = offline_setting(*offline, output)?;
            let wanted = wheel::WheelRequest {
                index: &index,
                packages,
                cuda_major: u32::from(release.value.version().major()),
                system: system.as_deref().unwrap_or_else(|| host_system()),
                prereleases: *pre,
                jobs: *jobs,
            };
            wheel::fetch_wheels(&fetcher, &wanted, output)
        }
    }
}

fn list(source: &RedistSource, system: Option<&str>, output: Output) -> CliResult<Exit> {
    let fetcher = fetcher(source, output)?;
    let manifest = load_manifest(source, &fetcher)?;
    let system = system.unwrap_or_else(|| host_system());
    let rows: Vec<ListRow> = manifest
        .packages
        .values()
        .filter_map(|package| {
            let archives = match package.systems.get(system)? {
                SystemArchives::Single(archive) => vec![(String::new(), archive.size)],
                SystemArchives::PerCuda(variants) => variants
                    .iter()
                    .map(|(variant, archive)| (variant.clone(), archive.size))
                    .collect(),
            };
            Some(ListRow {
                package: &package.key,
                name: &package.name,
                version: &package.version,
                archives,
            })
        })
        .collect();
    if output.json {
        Output::print_json(&rows)?;
        return Ok(Exit::Success);
    }
    let mut text = format!(
        "{} {} ({}) for {system}: {}\n",
        source.redist,
        manifest.release_label.as_deref().unwrap_or(&source.release),
        manifest.release_date.as_deref().unwrap_or("no date"),
        crate::render::count(rows.len(), "package", "packages")
    );
    let total: u64 = rows
        .iter()
        .flat_map(|r| r.archives.iter().map(|a| a.1))
        .sum();
    for row in &rows {
        let sizes: Vec<String> = row
            .archives
            .iter()
            .map(|(variant, size)| {
                if variant.is_empty() {
                    units::bytes(*size)
                } else {
                    format!("{variant} {}", units::bytes(*size))
                }
            })
            .collect();
        let lead = format!("  {:<28} {:<16} ", row.package, row.version);
        let _ = writeln!(
            text,
            "{}",
            crate::table::list_row(&lead, &sizes, output.width)
        );
    }
    let _ = writeln!(text, "  {:<28} {:<16} {}", "total", "", units::bytes(total));
    Output::print(&text)?;
    Ok(Exit::Success)
}

fn fetch(
    source: &RedistSource,
    system: Option<&str>,
    cuda_major: Option<u32>,
    jobs: usize,
    packages: &[String],
    output: Output,
) -> CliResult<Exit> {
    let fetcher = fetcher(source, output)?;
    let manifest = load_manifest(source, &fetcher)?;
    let system = system.unwrap_or_else(|| host_system());
    let keys: Vec<&String> = if packages.is_empty() {
        manifest.packages.keys().collect()
    } else {
        packages.iter().collect()
    };
    let mirror = mirror(source);
    let mut requests = Vec::new();
    for key in &keys {
        let package = manifest.packages.get(*key).ok_or_else(|| {
            CliError::new(format!(
                "{} {} has no package `{key}`",
                source.redist, source.release
            ))
            .with_hint("`cudapkgs redist list` shows the packages")
        })?;
        match package.archive(system, cuda_major) {
            Some(archive) => {
                requests.push(((*key).clone(), mirror.request(&source.redist, archive)));
            }
            None if packages.is_empty() => {}
            None => {
                return Err(CliError::new(format!(
                    "{key} {} has no archive for {system}{}",
                    package.version,
                    cuda_major
                        .map(|m| format!(" and CUDA {m}"))
                        .unwrap_or_default()
                )));
            }
        }
    }
    let progress = Bars::new(output);
    let only: Vec<Request> = requests.iter().map(|(_, r)| r.clone()).collect();
    let results = fetcher.fetch_all(&only, jobs, &progress);
    progress.finish();
    let mut text = String::new();
    let mut json = Vec::new();
    let mut failed = None;
    for ((key, _), result) in requests.iter().zip(results) {
        match result {
            Ok(path) => {
                let _ = writeln!(text, "{key}  {}", path.display());
                json.push(FetchedReport { package: key, path });
            }
            Err(error) => {
                output.error(format!("{key}: {}", one_line(&error)));
                failed.get_or_insert(error);
            }
        }
    }
    if let Some(error) = failed {
        return Err(redist_failure(&error));
    }
    if output.json {
        Output::print_json(&json)?;
    } else {
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct OutputReport<'a> {
    bytes: u64,
    files: usize,
    output: &'a str,
}

/// `cudapkgs split ARCHIVE|DIR --out DIR`.
pub fn split(args: &SplitArgs, output: Output) -> CliResult<Exit> {
    let progress = Bars::new(output);
    let task = Task::start(
        &progress,
        Phase::Unpack,
        &args.source.display().to_string(),
        None,
    );
    let done = cudapkgs_redist::package::split_package(
        &args.source,
        &args.out,
        args.allow_usr,
        Limits::default(),
    )
    .map_err(|error| match error {
        cudapkgs_redist::Error::UsrReference { .. } => redist_failure(&error)
            .with_hint("pass --allow-usr if the package is meant to use the system's /usr/"),
        other => redist_failure(&other),
    })?;
    drop(task);
    for fixup in &done.fixups {
        output.detail(fixup);
    }
    let reports: Vec<OutputReport> = done
        .outputs
        .iter()
        .map(|o| OutputReport {
            output: o.name,
            files: o.files.len(),
            bytes: o.bytes,
        })
        .collect();
    if output.json {
        Output::print_json(&SplitReport {
            fixups: &done.fixups,
            outputs: &reports,
        })?;
    } else {
        let mut text = String::new();
        for r in &reports {
            let _ = writeln!(
                text,
                "{:<8} {:>6} files {:>10}  {}",
                r.output,
                r.files,
                units::bytes(r.bytes),
                args.out.join(r.output).display()
            );
        }
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}
