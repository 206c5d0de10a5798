//! Device code for exactly the requested GPUs. For each file with device code: the
//! requested capabilities none of its kernels has an image for (the driver would say
//! "no kernel image is available"), and its SASS and PTX for other GPUs that no requested
//! GPU would load, with their bytes.
//!
//! Code is for a requested GPU when its architecture is that GPU's capability (`sm_90a`
//! and `compute_90` are for 9.0), or when the driver would pick it for a requested GPU
//! (`sm_80` SASS serves an 8.6 GPU that has nothing closer): such code is not extra,
//! since removing it would take the GPU's image away.

use std::collections::HashSet;

use cudapkgs_caps::Capability;
use cudapkgs_fatbin::{
    ArchTotal, ArchTotals, EntryKind, FileReader, FileScan, Gpu, ScanOptions, file_verdicts,
    scan_with,
};

/// What one file's device code holds against the requested GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetFindings {
    /// Requested capabilities no kernel of the file has an image for.
    pub missing: Vec<Capability>,
    /// SASS and PTX for other GPUs, per architecture and kind, that no requested GPU
    /// loads; biggest first.
    pub unrequested: Vec<ArchTotal>,
}

/// Judges the device code of `file` (mapped as `bytes`), its contents read to know its
/// kernels.
pub fn judge_file(
    bytes: &[u8],
    file: &std::fs::File,
    requested: &[Capability],
) -> Result<TargetFindings, String> {
    if requested.is_empty() || !cudapkgs_fatbin::holds_device_code(bytes) {
        return Ok(TargetFindings::default());
    }
    let reader = FileReader::new(file).map_err(|e| e.to_string())?;
    let scan = scan_with(bytes, &reader, ScanOptions { kernels: true })
        .map_err(|error| format!("its device code could not be read: {error}"))?;
    Ok(judge(&scan, requested))
}

/// Judges a scan made with kernels.
pub fn judge(scan: &FileScan, requested: &[Capability]) -> TargetFindings {
    let mut findings = TargetFindings::default();
    if !scan.has_device_code() {
        return findings;
    }
    // Entries the driver would pick for some requested GPU.
    let mut chosen: HashSet<u64> = HashSet::new();
    for &capability in requested {
        let verdicts = file_verdicts(
            scan,
            Gpu {
                capability,
                driver_cuda: None,
            },
        );
        // A file whose loadable containers hold no kernel has nothing to run.
        if !verdicts.is_empty() && verdicts.iter().all(|verdict| verdict.image.is_none()) {
            findings.missing.push(capability);
        }
        chosen.extend(verdicts.iter().filter_map(|verdict| verdict.entry));
    }
    let for_requested = |entry_capability: Option<Capability>| {
        entry_capability.is_some_and(|image| {
            requested
                .iter()
                .any(|gpu| (gpu.major(), gpu.minor()) == (image.major(), image.minor()))
        })
    };
    findings.unrequested = scan
        .entries()
        .filter(|entry| matches!(entry.kind, EntryKind::Sass | EntryKind::Ptx))
        .filter(|entry| !for_requested(entry.capability) && !chosen.contains(&entry.offset))
        .collect::<ArchTotals>()
        .biggest_first();
    findings
}
