//! What GPU code a package carries, and whether every kernel has an image the requested
//! GPUs can use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cudapkgs_fatbin::{EntryKind, Gpu, ScanOptions};

use crate::error::Error;
use crate::prepare::files;

/// The device code of a package's outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetReport {
    /// Output → SASS architectures (`sm_90`) and PTX (`compute_90`) found in it.
    pub architectures: BTreeMap<&'static str, BTreeSet<String>>,
    /// Kernels with no usable image: (capability, file relative to the outputs, kernel).
    pub missing: Vec<(String, String, String)>,
    /// Kernels checked per requested capability.
    pub kernels_checked: usize,
}

/// Reads every binary of the outputs under `root`.
pub fn check_targets(
    root: &Path,
    outputs: &[&'static str],
    gpus: &[Gpu],
) -> Result<TargetReport, Error> {
    let mut report = TargetReport::default();
    for output in outputs {
        let base = root.join(output);
        for relative in files(&base)? {
            let path = base.join(&relative);
            if path.is_symlink() {
                continue;
            }
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            let mapped = cudapkgs_tree::Mapped::open(&file).map_err(|e| Error::io(&path, e))?;
            let bytes = mapped.bytes();
            if cudapkgs_fatbin::sniff(bytes).is_none() {
                continue;
            }
            let options = ScanOptions {
                kernels: !gpus.is_empty(),
            };
            let Ok(scan) = cudapkgs_fatbin::scan(bytes, options) else {
                continue;
            };
            let architectures: BTreeSet<String> = scan
                .entries()
                .filter(|e| matches!(e.kind, EntryKind::Sass | EntryKind::Ptx))
                .map(|e| e.arch.clone())
                .collect();
            if architectures.is_empty() {
                continue;
            }
            report
                .architectures
                .entry(output)
                .or_default()
                .extend(architectures);
            for gpu in gpus {
                for verdict in cudapkgs_fatbin::file_verdicts(&scan, *gpu) {
                    report.kernels_checked += 1;
                    if verdict.image.is_none() {
                        report.missing.push((
                            gpu.capability.to_string(),
                            format!("{output}/{}", relative.display()),
                            verdict.kernel,
                        ));
                    }
                }
            }
        }
    }
    Ok(report)
}
