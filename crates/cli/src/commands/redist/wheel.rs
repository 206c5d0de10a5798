//! `cudapkgs redist wheel`: NVIDIA's components from PyPI, the wheels named and nothing
//! they require.

use std::fmt::Write as _;

use cudapkgs_builder::resolve::{self, Origin, Source, Spec};
use cudapkgs_redist::fetch::Fetcher;
use serde::Serialize;

use crate::context::{redist_failure, resolve_failure};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::progress::Bars;

/// Where `redist wheel` looks and what it takes.
#[derive(Debug)]
pub struct WheelRequest<'a> {
    pub index: &'a str,
    pub packages: &'a [String],
    pub cuda_major: u32,
    pub system: &'a str,
    pub prereleases: bool,
    pub jobs: usize,
}

/// One wheel `redist wheel --json` downloaded; keys in the order of their names, as
/// they always were.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct WheelReport<'a> {
    /// The `PACKAGE[==VERSION]` asked for.
    package: &'a str,
    /// The wheel in the download cache, under its own file name.
    path: std::path::PathBuf,
    version: &'a str,
    /// The wheel's file name.
    wheel: &'a str,
}

/// The JSON document of `redist wheel`.
pub(super) fn schema() -> (&'static str, schemars::Schema) {
    ("redist-wheel", schema_of::<Vec<WheelReport>>())
}

/// Resolves each `PACKAGE[==VERSION]` to a wheel for the system, fetches them all.
pub fn fetch_wheels(fetcher: &Fetcher, wanted: &WheelRequest, output: Output) -> CliResult<Exit> {
    let specs: Vec<Spec> = wanted
        .packages
        .iter()
        .map(|spec| spec.parse::<Spec>().map_err(resolve_failure))
        .collect::<CliResult<_>>()?;
    if let Some(local) = specs.iter().find(|s| s.file.is_some()) {
        return Err(CliError::new(format!(
            "{}: redist wheel downloads from the index; PACKAGE=FILE is for build",
            local.name
        )));
    }
    let request = resolve::Request {
        packages: specs,
        source: Source::Pypi {
            index_url: wanted.index.to_owned(),
        },
        cuda: wanted.cuda_major.to_string(),
        system: wanted.system.to_owned(),
        prereleases: wanted.prereleases,
        dependencies: false,
        all: false,
        download_for_metadata: false,
        jobs: wanted.jobs,
    };
    let resolution =
        resolve::resolve(fetcher, &request, &cudapkgs_report::Silent).map_err(resolve_failure)?;
    for note in &resolution.notes {
        output.detail(note);
    }
    let requests = resolution.downloads();
    let progress = Bars::new(output);
    let results = fetcher.fetch_all(&requests, wanted.jobs, &progress);
    progress.finish();
    let mut text = String::new();
    let mut json = Vec::new();
    for ((spec, resolved), result) in wanted
        .packages
        .iter()
        .zip(&resolution.packages)
        .zip(results)
    {
        let in_cache = result.map_err(|error| redist_failure(&error).context(spec))?;
        // Under the wheel's own name, which pip needs; a file named by the user is itself.
        let path = match &resolved.origin {
            Origin::Remote(download) => fetcher
                .named(&download.sha256, &resolved.from)
                .map_err(|error| redist_failure(&error).context(spec))?,
            Origin::Local(_) => in_cache,
        };
        let _ = writeln!(text, "{}  {}", resolved.from, path.display());
        json.push(WheelReport {
            package: spec,
            path,
            version: &resolved.version,
            wheel: &resolved.from,
        });
    }
    if output.json {
        Output::print_json(&json)?;
    } else {
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}
