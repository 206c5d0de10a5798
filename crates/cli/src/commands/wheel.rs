//! `cudapkgs redist wheel`: NVIDIA's components from PyPI.

use std::fmt::Write as _;

use cudapkgs_redist::fetch::{Fetcher, Request};
use cudapkgs_redist::pypi;

use super::redist::{ProgressLine, failure};
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;

/// `NAME==VERSION` → (`NAME`, `Some(VERSION)`); `NAME` → (`NAME`, `None`).
pub fn parse_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once("==") {
        Some((name, version)) => (name, Some(version)),
        None => (spec, None),
    }
}

/// The wheel for `system` of a redist package (through the name table) or a wheel
/// project, of `version` or the newest; the error lists the versions that have one.
pub fn resolve_wheel(
    fetcher: &Fetcher,
    index: &str,
    name: &str,
    version: Option<&str>,
    cuda_major: u32,
    system: &str,
) -> CliResult<pypi::Wheel> {
    let project = pypi::wheel_name(name, cuda_major).unwrap_or_else(|| name.to_owned());
    let wheels = pypi::wheels(fetcher, index, &project).map_err(|error| failure(&error))?;
    let wheel = pypi::pick(&wheels, version, system).ok_or_else(|| {
        let versions: Vec<&str> = wheels
            .iter()
            .filter(|w| w.fits(system))
            .map(|w| w.version.as_str())
            .collect();
        CliError::new(format!(
            "{project}: no wheel{} for {system} in {index}",
            version
                .map(|v| format!(" of version {v}"))
                .unwrap_or_default()
        ))
        .with_hint(if versions.is_empty() {
            "no version has a wheel for this system".to_owned()
        } else {
            format!("versions with a wheel: {}", versions.join(", "))
        })
    })?;
    Ok(wheel.clone())
}

/// Resolves each `PACKAGE[==VERSION]` to a wheel for `system`, fetches them all.
pub fn fetch_wheels(
    fetcher: &Fetcher,
    index: &str,
    packages: &[String],
    cuda_major: u32,
    system: &str,
    jobs: usize,
    output: Output,
) -> CliResult<Exit> {
    let mut chosen = Vec::new();
    for spec in packages {
        let (name, version) = parse_spec(spec);
        let wheel = resolve_wheel(fetcher, index, name, version, cuda_major, system)?;
        chosen.push((spec.clone(), wheel));
    }
    let requests: Vec<Request> = chosen.iter().map(|(_, w)| w.request()).collect();
    let progress = ProgressLine::new(output);
    let results = fetcher.fetch_all(&requests, jobs, &|r, d, t| progress.update(r, d, t));
    progress.finish();
    let mut text = String::new();
    let mut json = Vec::new();
    for ((spec, wheel), result) in chosen.iter().zip(results) {
        let path = result.map_err(|error| failure(&error).context(spec))?;
        let _ = writeln!(text, "{}  {}", wheel.filename, path.display());
        json.push(serde_json::json!({
            "package": spec,
            "wheel": wheel.filename,
            "version": wheel.version,
            "path": path,
        }));
    }
    if output.json {
        Output::print_json(&json)?;
    } else {
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}
