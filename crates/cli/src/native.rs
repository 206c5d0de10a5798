//! `--gpu native`: the local GPUs' capabilities and their driver's CUDA version, asked
//! of the driver once per run.

use std::path::Path;
use std::sync::OnceLock;

use cudapkgs_caps::CudaVersion;
use cudapkgs_gpu::{Driver, DriverReport, DriverSearch, GpuError};

use crate::error::{CliError, CliResult};

/// The name that stands for the local GPUs.
const NATIVE: &str = "native";

/// The driver found by the default search (or in `folder`), opened, with its report;
/// the error says where it was looked for.
pub fn open_driver(folder: Option<&Path>) -> CliResult<(Driver, DriverReport)> {
    let search = DriverSearch {
        folder: folder.map(Path::to_owned),
        root: None,
    };
    let found = search.find().map_err(|error| {
        CliError::from_error(&error)
            .with_hint("install the NVIDIA driver, or name its folder with --driver-dir")
    })?;
    let driver = Driver::open(&found.library).map_err(|error| match error {
        GpuError::Stub(_) => CliError::from_error(&error).with_hint(
            "a stub folder is on the way to the driver: name the real one with --driver-dir",
        ),
        other => CliError::from_error(&other),
    })?;
    let report = DriverReport::of(&driver).map_err(|error| CliError::from_error(&error))?;
    Ok((driver, report))
}

/// What the local driver reports, or why there is none: (message, hint).
fn local() -> &'static Result<DriverReport, (String, Option<String>)> {
    static LOCAL: OnceLock<Result<DriverReport, (String, Option<String>)>> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let (driver, report) = open_driver(None).map_err(|error| {
            (
                error.message,
                Some("install the NVIDIA driver, or name the GPUs instead: --gpu H100".to_owned()),
            )
        })?;
        // Kept loaded for the process: unloading the driver after cuInit can crash at
        // exit.
        std::mem::forget(driver);
        if report.devices.is_empty() {
            return Err((
                format!(
                    "--gpu native: the driver at {} sees no GPU",
                    report.library.display()
                ),
                Some("name the GPUs instead: --gpu H100".to_owned()),
            ));
        }
        Ok(report)
    })
}

/// Whether the default driver search finds a driver that sees a GPU.
pub fn gpus_present() -> bool {
    local().is_ok()
}

fn local_report() -> CliResult<&'static DriverReport> {
    local().as_ref().map_err(|(message, hint)| {
        let error = CliError::new(message.clone());
        match hint {
            Some(hint) => error.with_hint(hint.clone()),
            None => error,
        }
    })
}

pub fn is_native(name: &str) -> bool {
    name.eq_ignore_ascii_case(NATIVE)
}

/// `names` with `native` replaced by the local GPUs' capabilities (`9.0`), each once.
pub fn expand(names: &[String]) -> CliResult<Vec<String>> {
    if !names.iter().any(|name| is_native(name)) {
        return Ok(names.to_vec());
    }
    let report = local_report()?;
    let mut expanded = Vec::new();
    for name in names {
        let added: Vec<String> = if is_native(name) {
            report
                .devices
                .iter()
                .map(|device| device.capability.to_string())
                .collect()
        } else {
            vec![name.clone()]
        };
        for name in added {
            if !expanded.contains(&name) {
                expanded.push(name);
            }
        }
    }
    Ok(expanded)
}

/// The local driver's CUDA version when `names` asks for the local GPUs: the
/// `--driver-cuda` that goes with them.
pub fn driver_cuda(names: &[String]) -> CliResult<Option<CudaVersion>> {
    if !names.iter().any(|name| is_native(name)) {
        return Ok(None);
    }
    let cuda = local_report()?.cuda;
    Ok(Some(CudaVersion::new(
        u8::try_from(cuda.major).unwrap_or(u8::MAX),
        u8::try_from(cuda.minor).unwrap_or(u8::MAX),
    )))
}
