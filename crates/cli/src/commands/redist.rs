//! `cudapkgs redist` and `cudapkgs split`: NVIDIA's manifests, cached downloads, and
//! packages split into outputs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cudapkgs_redist::fetch::{Fetcher, Request};
use cudapkgs_redist::manifest::{Manifest, SystemArchives};
use cudapkgs_redist::source::{Mirror, NVIDIA_BASE_URL};
use cudapkgs_redist::unpack::Limits;
use serde::Serialize;

use crate::cli::{RedistCommand, RedistSource, SplitArgs};
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;
use crate::settings::process_env;
use crate::units;

pub fn failure(error: &cudapkgs_redist::Error) -> CliError {
    let failed = CliError::new(error.to_string());
    match error {
        cudapkgs_redist::Error::TooLarge { .. } => failed.with_hint(format!(
            "if the file is genuine, raise the limit with {MAX_DOWNLOAD_VARIABLE} (bytes, or with K, M, G or T)"
        )),
        _ => failed,
    }
}

/// Bounds downloads of unknown size and the sizes an index may declare.
const MAX_DOWNLOAD_VARIABLE: &str = "CUDAPKGS_MAX_DOWNLOAD";

/// How long a server may take to answer a request (whole seconds).
const RESPONSE_TIMEOUT_VARIABLE: &str = "CUDAPKGS_RESPONSE_TIMEOUT";

/// The cache of `source`.
pub fn fetcher(source: &RedistSource) -> CliResult<Fetcher> {
    fetcher_at(source.cache.as_ref())
}

/// The cache: `--cache`, `$CUDAPKGS_CACHE`, `$XDG_CACHE_HOME/cudapkgs`, `~/.cache/cudapkgs`.
pub fn fetcher_at(cache: Option<&PathBuf>) -> CliResult<Fetcher> {
    let cache = cache
        .cloned()
        .or_else(|| process_env("CUDAPKGS_CACHE").map(PathBuf::from))
        .or_else(|| process_env("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("cudapkgs")))
        .or_else(|| process_env("HOME").map(|h| PathBuf::from(h).join(".cache/cudapkgs")))
        .ok_or_else(|| {
            CliError::new("no download cache: neither XDG_CACHE_HOME nor HOME is set")
                .with_hint("pass --cache or set CUDAPKGS_CACHE")
        })?;
    let mut fetcher = Fetcher::new(&cache);
    if let Some(text) = process_env(MAX_DOWNLOAD_VARIABLE) {
        fetcher.max_size = parse_byte_count(&text).ok_or_else(|| {
            CliError::new(format!(
                "environment variable {MAX_DOWNLOAD_VARIABLE}: `{text}` is not a byte count"
            ))
            .with_hint("write bytes, or a number with K, M, G or T (powers of 1024), like 20G")
        })?;
    }
    if let Some(text) = process_env(RESPONSE_TIMEOUT_VARIABLE) {
        let seconds = text.trim().parse::<u64>().ok().filter(|&s| s > 0);
        let seconds = seconds.ok_or_else(|| {
            CliError::new(format!(
                "environment variable {RESPONSE_TIMEOUT_VARIABLE}: `{text}` is not a number of seconds"
            ))
            .with_hint("write whole seconds above 0, like 120")
        })?;
        fetcher.set_response_timeout(std::time::Duration::from_secs(seconds));
    }
    Ok(fetcher)
}

/// `1000`, `500M`, `20G`, `1TiB`: powers of 1024 for the suffixes.
fn parse_byte_count(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

pub fn mirror(source: &RedistSource) -> Mirror {
    mirror_at(source.base_url.as_deref())
}

/// `--base-url`, else `$CUDAPKGS_REDIST_URL`, else NVIDIA's server.
pub fn mirror_at(base_url: Option<&str>) -> Mirror {
    Mirror::new(&mirror_url(base_url))
}

/// The base URL of [`mirror_at`].
pub fn mirror_url(base_url: Option<&str>) -> String {
    base_url
        .map(str::to_owned)
        .or_else(|| process_env("CUDAPKGS_REDIST_URL"))
        .unwrap_or_else(|| NVIDIA_BASE_URL.to_owned())
}

/// The index pip would use: `$PIP_INDEX_URL`, else pip's configuration, else PyPI.
pub fn pip_index_url() -> String {
    cudapkgs_builder::resolve::pip_index_url(&process_env)
}

/// NVIDIA's name for this machine's system.
pub fn this_system() -> &'static str {
    cudapkgs_builder::resolve::host_system()
}

pub fn load_manifest(source: &RedistSource, fetcher: &Fetcher) -> CliResult<Manifest> {
    mirror(source)
        .manifest(fetcher, &source.redist, &source.version)
        .map_err(|error| failure(&error))
}

/// A progress line on standard error while downloads run (only on a terminal).
pub struct ProgressLine {
    state: Mutex<ProgressState>,
    enabled: bool,
}

struct ProgressState {
    /// Bytes so far and total, per URL.
    files: HashMap<String, (u64, Option<u64>)>,
    shown: Instant,
}

impl ProgressLine {
    pub fn new(output: Output) -> ProgressLine {
        ProgressLine {
            state: Mutex::new(ProgressState {
                files: HashMap::new(),
                shown: Instant::now(),
            }),
            enabled: !output.quiet && !output.json && std::io::stderr().is_terminal(),
        }
    }

    pub fn update(&self, request: &Request, done: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().expect("no panics while held");
        state.files.insert(request.url.clone(), (done, total));
        if state.shown.elapsed() < Duration::from_millis(200) {
            return;
        }
        state.shown = Instant::now();
        let done: u64 = state.files.values().map(|(d, _)| d).sum();
        let total: u64 = state.files.values().filter_map(|(_, t)| *t).sum();
        eprint!(
            "\r  downloading {} file(s): {} of {}   ",
            state.files.len(),
            units::bytes(done),
            units::bytes(total)
        );
    }

    pub fn finish(&self) {
        if self.enabled
            && !self
                .state
                .lock()
                .expect("no panics while held")
                .files
                .is_empty()
        {
            eprintln!();
        }
    }
}

#[derive(Debug, Serialize)]
struct ListRow<'a> {
    package: &'a str,
    name: &'a str,
    version: &'a str,
    /// Archive size per CUDA variant (`""` when there are none).
    archives: Vec<(String, u64)>,
}

pub fn run(command: &RedistCommand, output: Output) -> CliResult<Exit> {
    match command {
        RedistCommand::List { source, system } => list(source, system.as_deref(), output),
        RedistCommand::Fetch {
            source,
            system,
            cuda_major,
            jobs,
            packages,
        } => fetch(
            source,
            system.as_deref(),
            *cuda_major,
            *jobs,
            packages,
            output,
        ),
        RedistCommand::Wheel {
            packages,
            cuda_major,
            index_url,
            system,
            cache,
            jobs,
            pre,
        } => {
            let index = index_url.clone().unwrap_or_else(pip_index_url);
            let fetcher = fetcher_at(cache.as_ref())?;
            let wanted = super::wheel::WheelRequest {
                index: &index,
                packages,
                cuda_major: *cuda_major,
                system: system.as_deref().unwrap_or_else(|| this_system()),
                prereleases: *pre,
                jobs: *jobs,
            };
            super::wheel::fetch_wheels(&fetcher, &wanted, output)
        }
    }
}

fn list(source: &RedistSource, system: Option<&str>, output: Output) -> CliResult<Exit> {
    let fetcher = fetcher(source)?;
    let manifest = load_manifest(source, &fetcher)?;
    let system = system.unwrap_or_else(|| this_system());
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
        "{} {} ({}) for {system}: {} packages\n",
        source.redist,
        manifest.release_label.as_deref().unwrap_or(&source.version),
        manifest.release_date.as_deref().unwrap_or("no date"),
        rows.len()
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
        let _ = writeln!(
            text,
            "  {:<28} {:<16} {}",
            row.package,
            row.version,
            sizes.join(", ")
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
    let fetcher = fetcher(source)?;
    let manifest = load_manifest(source, &fetcher)?;
    let system = system.unwrap_or_else(|| this_system());
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
                source.redist, source.version
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
    let progress = ProgressLine::new(output);
    let only: Vec<Request> = requests.iter().map(|(_, r)| r.clone()).collect();
    let results = fetcher.fetch_all(&only, jobs, &|r, d, t| progress.update(r, d, t));
    progress.finish();
    let mut text = String::new();
    let mut json = Vec::new();
    let mut failed = None;
    for ((key, _), result) in requests.iter().zip(results) {
        match result {
            Ok(path) => {
                let _ = writeln!(text, "{key}  {}", path.display());
                json.push(serde_json::json!({"package": key, "path": path}));
            }
            Err(error) => {
                output.error(format!("{key}: {error}"));
                failed.get_or_insert(error);
            }
        }
    }
    if let Some(error) = failed {
        return Err(failure(&error));
    }
    if output.json {
        Output::print_json(&json)?;
    } else {
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}

#[derive(Debug, Serialize)]
struct OutputReport<'a> {
    output: &'a str,
    files: usize,
    bytes: u64,
}

/// `cudapkgs split ARCHIVE|DIR --out DIR`.
pub fn split(args: &SplitArgs, output: Output) -> CliResult<Exit> {
    let done = cudapkgs_redist::package::split_package(
        &args.source,
        &args.out,
        args.allow_usr,
        Limits::default(),
    )
    .map_err(|error| failure(&error))?;
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
        Output::print_json(&serde_json::json!({"fixups": done.fixups, "outputs": reports}))?;
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
