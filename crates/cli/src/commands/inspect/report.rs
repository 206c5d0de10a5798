//! The results of an inspection, their totals, and the stable JSON document.

use cudapkgs_caps::{Capability, CudaVersion};
use cudapkgs_fatbin::{
    ArchTotal, ArchTotals, ContainerVerdict, FileScan, Format, Gpu, ImageMatch, KernelOutcome,
    KernelVerdict, UnitScan,
};
use cudapkgs_tree::{Outcome, Visited};
use serde::Serialize;

use crate::error::Exit;

/// What the per-file work produced.
#[derive(Debug)]
pub(crate) struct FileResult {
    pub scan: FileScan,
    /// One per judged GPU, in the order of [`Report::gpus`].
    pub judged: Vec<Judgement>,
    pub extracted: usize,
}

/// A file judged for one GPU.
#[derive(Debug, Default)]
pub(crate) struct Judgement {
    pub verdicts: Vec<KernelVerdict>,
    /// The image each container loads.
    pub containers: Vec<ContainerVerdict>,
}

/// Everything `inspect` found, with its totals.
#[derive(Debug)]
pub(crate) struct Report {
    pub files: Vec<Visited<FileResult>>,
    /// The GPUs every kernel is judged for (`--gpu`, `--capabilities`).
    pub gpus: Vec<Gpu>,
    pub summary: Summary,
    /// One per judged GPU.
    pub gpu_totals: Vec<GpuTotals>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Heavy {
    pub path: String,
    pub size: u64,
    pub device_code_bytes: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub(crate) struct Summary {
    pub files_scanned: usize,
    pub files_with_device_code: usize,
    pub file_bytes: u64,
    pub device_code_bytes: u64,
    pub entries: u64,
    pub by_arch: Vec<ArchTotal>,
    pub heaviest: Vec<Heavy>,
}

#[derive(Debug, Clone, Serialize, Default, schemars::JsonSchema)]
pub(crate) struct GpuTotals {
    pub gpu: Option<Capability>,
    pub driver_cuda: Option<CudaVersion>,
    pub kernels: usize,
    pub exact_sass: usize,
    pub compatible_sass: usize,
    pub ptx_jit: usize,
    /// Kernels built for other architectures only, in files that serve this GPU.
    pub other_architecture: usize,
    /// Kernels of files none of whose containers loads on this GPU.
    pub unusable: usize,
    /// Files none of whose containers loads on this GPU.
    pub files_failing: usize,
}

/// A kernel's verdict, with the GPU it is for.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct KernelJson<'a> {
    gpu: Capability,
    #[serde(flatten)]
    verdict: &'a KernelVerdict,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct FileJson<'a> {
    path: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Format>,
    device_code_bytes: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    units: &'a [UnitScan],
    #[serde(skip_serializing_if = "Option::is_none")]
    kernels: Option<Vec<KernelJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extracted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ReportJson<'a> {
    files: Vec<FileJson<'a>>,
    summary: Summary,
    /// One per judged GPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    verdicts: Vec<GpuTotals>,
    /// With `--expect-capabilities`: each binary's targets against the expected ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expectation: Option<super::expect::ExpectationJson>,
}

impl Report {
    pub fn new(files: Vec<Visited<FileResult>>, gpus: Vec<Gpu>, top: usize) -> Self {
        let summary = summarize(&files, top);
        let gpu_totals = gpus
            .iter()
            .enumerate()
            .map(|(index, gpu)| count_verdicts(&files, index, *gpu))
            .collect();
        Report {
            files,
            gpus,
            summary,
            gpu_totals,
        }
    }

    /// Files whose scan found device code.
    pub fn with_device_code(&self) -> impl Iterator<Item = (&Visited<FileResult>, &FileResult)> {
        with_device_code(&self.files)
    }

    pub fn files_with_device_code(&self) -> usize {
        self.with_device_code().count()
    }

    /// Files that could not be read or parsed.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().filter_map(|file| match &file.outcome {
            Outcome::Failed(message) => Some((file.source.display.as_str(), message.as_str())),
            _ => None,
        })
    }

    pub fn exit(&self) -> Exit {
        if self.failures().next().is_some() {
            Exit::Usage
        } else if self.gpu_totals.iter().any(|totals| totals.unusable > 0) {
            Exit::Problems
        } else {
            Exit::Success
        }
    }

    /// Files shown in JSON: those with device code, every named file, every failure.
    pub fn json(&self) -> ReportJson<'_> {
        let files = self
            .files
            .iter()
            .filter_map(|file| {
                let base = FileJson {
                    path: &file.source.display,
                    size: file.source.size,
                    format: None,
                    device_code_bytes: 0,
                    units: &[],
                    kernels: None,
                    extracted: None,
                    error: None,
                };
                match &file.outcome {
                    Outcome::Done(result) if result.scan.has_device_code() || file.source.named => {
                        Some(FileJson {
                            format: Some(result.scan.format),
                            device_code_bytes: result.scan.device_code_bytes(),
                            units: &result.scan.units,
                            kernels: (!self.gpus.is_empty())
                                .then(|| kernels_json(&self.gpus, result)),
                            extracted: (result.extracted > 0).then_some(result.extracted),
                            ..base
                        })
                    }
                    Outcome::Done(_) => None,
                    Outcome::NoBinaries => Some(base),
                    Outcome::Failed(message) => Some(FileJson {
                        error: Some(message),
                        ..base
                    }),
                }
            })
            .collect();
        ReportJson {
            files,
            summary: self.summary.clone(),
            verdicts: self.gpu_totals.clone(),
            expectation: None,
        }
    }
}

fn with_device_code(
    files: &[Visited<FileResult>],
) -> impl Iterator<Item = (&Visited<FileResult>, &FileResult)> {
    files.iter().filter_map(|file| match &file.outcome {
        Outcome::Done(result) if result.scan.has_device_code() => Some((file, result)),
        _ => None,
    })
}

fn summarize(files: &[Visited<FileResult>], top: usize) -> Summary {
    let mut by_arch = ArchTotals::default();
    let mut summary = Summary {
        files_scanned: files
            .iter()
            .filter(|file| matches!(file.outcome, Outcome::Done(_)))
            .count(),
        files_with_device_code: 0,
        file_bytes: 0,
        device_code_bytes: 0,
        entries: 0,
        by_arch: Vec::new(),
        heaviest: Vec::new(),
    };
    summary.file_bytes = files
        .iter()
        .filter(|file| matches!(file.outcome, Outcome::Done(_)))
        .map(|file| file.source.size)
        .sum();
    for (file, result) in with_device_code(files) {
        summary.files_with_device_code += 1;
        summary.device_code_bytes += result.scan.device_code_bytes();
        summary.heaviest.push(Heavy {
            path: file.source.display.clone(),
            size: file.source.size,
            device_code_bytes: result.scan.device_code_bytes(),
        });
        for entry in result.scan.entries() {
            summary.entries += 1;
            by_arch.add(entry);
        }
    }
    summary.by_arch = by_arch.biggest_first();
    summary.heaviest.sort_by(|a, b| {
        b.device_code_bytes
            .cmp(&a.device_code_bytes)
            .then(a.path.cmp(&b.path))
    });
    summary.heaviest.truncate(top);
    summary
}

/// Every kernel's verdict for each GPU in turn.
fn kernels_json<'a>(gpus: &[Gpu], result: &'a FileResult) -> Vec<KernelJson<'a>> {
    gpus.iter()
        .zip(&result.judged)
        .flat_map(|(gpu, judgement)| {
            judgement.verdicts.iter().map(|verdict| KernelJson {
                gpu: gpu.capability,
                verdict,
            })
        })
        .collect()
}

/// The totals of the `index`th judged GPU.
fn count_verdicts(files: &[Visited<FileResult>], index: usize, gpu: Gpu) -> GpuTotals {
    let mut totals = GpuTotals {
        gpu: Some(gpu.capability),
        driver_cuda: gpu.driver_cuda,
        ..GpuTotals::default()
    };
    for (_, result) in with_device_code(files) {
        let Some(judgement) = result.judged.get(index) else {
            continue;
        };
        if judgement
            .verdicts
            .iter()
            .any(|v| v.outcome == KernelOutcome::NoImage)
        {
            totals.files_failing += 1;
        }
        for verdict in &judgement.verdicts {
            totals.kernels += 1;
            match (verdict.image, verdict.outcome) {
                (Some(ImageMatch::ExactSass), _) => totals.exact_sass += 1,
                (Some(ImageMatch::CompatibleSass), _) => totals.compatible_sass += 1,
                (Some(ImageMatch::PtxJit), _) => totals.ptx_jit += 1,
                (None, KernelOutcome::NoImage) => totals.unusable += 1,
                (None, _) => totals.other_architecture += 1,
            }
        }
    }
    totals
}
