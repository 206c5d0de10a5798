//! What GPU code a package carries, and whether every kernel has an image the requested
//! GPUs can use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cudapkgs_fatbin::{EntryKind, Gpu, ScanOptions};

/// The device code of a package's outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetReport {
    /// Output → SASS architectures (`sm_90`) and PTX (`compute_90`) found in it.
    pub architectures: BTreeMap<&'static str, BTreeSet<String>>,
    /// Kernels of files that do not load on a requested GPU (kernels a file serving the
    /// GPU holds for other architectures only are not missing):
    /// (capability, file relative to the outputs, kernel).
    pub missing: Vec<(String, String, String)>,
    /// Kernels checked per requested capability.
    pub kernels_checked: usize,
}

impl TargetReport {
    /// Adds what the file at `relative` in `output` (its bytes) carries; files without
    /// device code add nothing.
    pub fn add_file(&mut self, output: &'static str, relative: &Path, bytes: &[u8], gpus: &[Gpu]) {
        if cudapkgs_fatbin::sniff(bytes).is_none() {
            return;
        }
        let options = ScanOptions {
            kernels: !gpus.is_empty(),
        };
        let Ok(scan) = cudapkgs_fatbin::scan(bytes, options) else {
            return;
        };
        let architectures: BTreeSet<String> = scan
            .entries()
            .filter(|e| matches!(e.kind, EntryKind::Sass | EntryKind::Ptx))
            .map(|e| e.arch.clone())
            .collect();
        if architectures.is_empty() {
            return;
        }
        self.architectures
            .entry(output)
            .or_default()
            .extend(architectures);
        for gpu in gpus {
            for verdict in cudapkgs_fatbin::file_verdicts(&scan, *gpu) {
                self.kernels_checked += 1;
                if verdict.outcome == cudapkgs_fatbin::KernelOutcome::NoImage {
                    self.missing.push((
                        gpu.capability.to_string(),
                        format!("{output}/{}", relative.display()),
                        verdict.kernel,
                    ));
                }
            }
        }
    }
}
