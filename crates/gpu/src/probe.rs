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
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerProbe {
    pub file: PathBuf,
    pub offset: u64,
    pub size: u64,
    pub kernels: Vec<String>,
}

/// What the driver did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeResult {
    /// `None` when loaded; the driver's error name otherwise
    /// (`CUDA_ERROR_NO_BINARY_FOR_GPU`), with the JIT compiler's log if any.
    pub load_error: Option<String>,
    /// The driver's code for `load_error`.
    #[serde(default)]
    pub load_code: Option<i32>,
    /// The probe itself failed (the file could not be read, a lookup failed): the
    /// driver said nothing about the image.
    #[serde(default)]
    pub error: Option<String>,
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
            load_code: Some(code.code),
            error: None,
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
                load_code: None,
                error: None,
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

/// The driver's answers about the image itself; any other failure (out of memory, no
/// JIT compiler in a sandbox) says nothing about what the verdict predicts.
const IMAGE_ANSWERS: [i32; 4] = [
    200, // CUDA_ERROR_INVALID_IMAGE
    209, // CUDA_ERROR_NO_BINARY_FOR_GPU
    218, // CUDA_ERROR_INVALID_PTX
    222, // CUDA_ERROR_UNSUPPORTED_PTX_VERSION
];

impl ProbeResult {
    /// What went wrong that is no answer about the image: the probe's own failure or a
    /// driver failure of another kind.
    pub fn trouble(&self) -> Option<String> {
        if let Some(error) = &self.error {
            return Some(error.clone());
        }
        match (self.load_code, &self.load_error) {
            (Some(code), Some(name)) if !IMAGE_ANSWERS.contains(&code) => Some(name.clone()),
            _ => None,
        }
    }
}

/// Where the driver and the verdict differ: each one is a bug in the verdict rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use cudapkgs_fatbin::{ImageMatch, KernelOutcome};

    fn container(image: Option<ImageMatch>) -> ContainerVerdict {
        ContainerVerdict {
            container: 0x40,
            image,
            arch: image.map(|_| "sm_90".to_owned()),
            entry: image.map(|_| 0x50),
            rejected: if image.is_none() {
                vec!["sm_80: SASS does not run on 9.0".to_owned()]
            } else {
                Vec::new()
            },
            architectures: vec!["sm_80".to_owned(), "sm_90".to_owned()],
        }
    }

    fn kernel(name: &str, image: Option<ImageMatch>) -> KernelVerdict {
        KernelVerdict {
            kernel: name.to_owned(),
            container: 0x40,
            image,
            arch: image.map(|_| "sm_90".to_owned()),
            entry: image.map(|_| 0x50),
            rejected: Vec::new(),
            outcome: if image.is_some() {
                KernelOutcome::Runs
            } else {
                KernelOutcome::OtherArchitecture
            },
        }
    }

    fn result(load_error: Option<&str>, missing: &[&str]) -> ProbeResult {
        ProbeResult {
            load_error: load_error.map(str::to_owned),
            load_code: load_error.map(|name| if name.contains("NO_BINARY") { 209 } else { 200 }),
            error: None,
            missing: missing.iter().map(|&m| m.to_owned()).collect(),
            seconds: 0.0,
        }
    }

    #[test]
    fn the_driver_agreeing_with_the_verdict_is_no_disagreement() {
        let sass = Some(ImageMatch::ExactSass);
        let (a, b) = (kernel("a", sass), kernel("b", None));
        let file = Path::new("lib.so");
        assert!(compare(file, &container(sass), &[&a, &b], &result(None, &["b"])).is_empty());
        let no_binary = result(Some("CUDA_ERROR_NO_BINARY_FOR_GPU"), &[]);
        assert!(compare(file, &container(None), &[&b], &no_binary).is_empty());
    }

    #[test]
    fn every_difference_is_named_with_both_sides() {
        let sass = Some(ImageMatch::ExactSass);
        let (a, b) = (kernel("a", sass), kernel("b", None));
        let file = Path::new("lib.so");
        // The verdict expected a load the driver refused.
        let refused = compare(
            file,
            &container(sass),
            &[&a],
            &result(Some("CUDA_ERROR_INVALID_IMAGE"), &[]),
        );
        // Out of memory answers nothing about the image.
        let oom = ProbeResult {
            load_code: Some(2),
            ..result(Some("CUDA_ERROR_OUT_OF_MEMORY"), &[])
        };
        assert_eq!(oom.trouble().as_deref(), Some("CUDA_ERROR_OUT_OF_MEMORY"));
        assert_eq!(
            result(Some("CUDA_ERROR_NO_BINARY_FOR_GPU"), &[]).trouble(),
            None
        );
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].kernel, None);
        assert_eq!(refused[0].predicted, "loads sm_90 (exact SASS)");
        assert_eq!(
            refused[0].observed,
            "does not load: CUDA_ERROR_INVALID_IMAGE"
        );
        // The verdict expected no load, and the driver loaded it.
        let loaded = compare(file, &container(None), &[&b], &result(None, &[]));
        assert_eq!(loaded[0].observed, "loads");
        assert!(loaded[0].predicted.contains("SASS does not run on 9.0"));
        // Kernels: one expected and missing, one unexpected and found.
        let kernels = compare(file, &container(sass), &[&a, &b], &result(None, &["a"]));
        let named: Vec<(Option<&str>, &str)> = kernels
            .iter()
            .map(|d| (d.kernel.as_deref(), d.observed.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                (Some("a"), "not in the loaded module"),
                (Some("b"), "found")
            ]
        );
    }
}
