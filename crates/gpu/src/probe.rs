//! The ground truth for a verdict: load a container on the GPU as the runtime would
//! and look up every kernel it declares, then compare with what the verdict predicted.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cudapkgs_fatbin::{ContainerVerdict, KernelVerdict};
use serde::{Deserialize, Serialize};

use crate::driver::Context;
use crate::error::GpuError;

/// One container to load: where it is and the kernels it declares.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerProbe {
    pub file: PathBuf,
    pub offset: u64,
    pub size: u64,
    pub kernels: Vec<String>,
}

/// What the driver did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// `None` when loaded; the driver's error name otherwise
    /// (`CUDA_ERROR_NO_BINARY_FOR_GPU`).
    pub load_error: Option<String>,
    /// Declared kernels the loaded module lacks.
    pub missing: Vec<String>,
    pub seconds: f64,
}

fn read_range(path: &Path, offset: u64, size: u64) -> Result<Vec<u8>, GpuError> {
    let read = |error| GpuError::Read {
        path: path.to_owned(),
        source: error,
    };
    let mut file = std::fs::File::open(path).map_err(read)?;
    file.seek(SeekFrom::Start(offset)).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(size).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 != size {
        return Err(GpuError::Wrong(format!(
            "{}: the container at {offset:#x} ends past the file",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Loads the container and looks up its kernels; PTX is compiled at the lowest
/// optimisation level, which decides nothing of what the check looks at.
pub fn probe(context: &Context<'_>, container: &ContainerProbe) -> Result<ProbeResult, GpuError> {
    let image = read_range(&container.file, container.offset, container.size)?;
    let started = Instant::now();
    let result = match context.load_quickly(&image) {
        Err(code) => ProbeResult {
            load_error: Some(code.name),
            missing: Vec::new(),
            seconds: 0.0,
        },
        Ok(module) => {
            let mut missing = Vec::new();
            for kernel in &container.kernels {
                match module.function(kernel) {
                    Ok(Some(_)) => {}
                    Ok(None) => missing.push(kernel.clone()),
                    Err(code) => {
                        return Err(GpuError::Cuda {
                            call: "cuModuleGetFunction",
                            code: code.code,
                            name: code.name,
                        });
                    }
                }
            }
            ProbeResult {
                load_error: None,
                missing,
                seconds: 0.0,
            }
        }
    };
    Ok(ProbeResult {
        seconds: started.elapsed().as_secs_f64(),
        ..result
    })
}

/// Where the driver and the verdict differ: each one is a bug in the verdict rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    pub file: PathBuf,
    pub container: u64,
    /// `None` for the container's load itself.
    pub kernel: Option<String>,
    pub predicted: String,
    pub observed: String,
}

/// Compares one container's probe with its verdict and its kernels' verdicts.
pub fn compare(
    file: &Path,
    verdict: &ContainerVerdict,
    kernels: &[&KernelVerdict],
    result: &ProbeResult,
) -> Vec<Disagreement> {
    let disagreement = |kernel: Option<&str>, predicted: String, observed: String| Disagreement {
        file: file.to_owned(),
        container: verdict.container,
        kernel: kernel.map(str::to_owned),
        predicted,
        observed,
    };
    match (&verdict.image, &result.load_error) {
        (Some(image), Some(error)) => {
            let arch = verdict.arch.as_deref().unwrap_or("?");
            return vec![disagreement(
                None,
                format!("loads {arch} ({image})"),
                format!("does not load: {error}"),
            )];
        }
        (None, None) => {
            return vec![disagreement(
                None,
                format!("does not load ({})", verdict.rejected.join("; ")),
                "loads".to_owned(),
            )];
        }
        (None, Some(_)) => return Vec::new(),
        (Some(_), None) => {}
    }
    kernels
        .iter()
        .filter_map(|kernel| {
            let found = !result.missing.contains(&kernel.kernel);
            match (kernel.image.is_some(), found) {
                (true, false) => Some(disagreement(
                    Some(&kernel.kernel),
                    format!("in {}", kernel.arch.as_deref().unwrap_or("?")),
                    "not in the loaded module".to_owned(),
                )),
                (false, true) => Some(disagreement(
                    Some(&kernel.kernel),
                    "not in the loaded module".to_owned(),
                    "found".to_owned(),
                )),
                _ => None,
            }
        })
        .collect()
}
