//! What a file holds of CUDA device code, per architecture: its fatbin headers only.

use cudapkgs_fatbin::{ArchTotal, ArchTotals, EntryKind, FileReader, ScanOptions, scan_with};

/// A file's device code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceCode {
    /// Bytes per architecture and kind, biggest first; empty for none.
    pub by_arch: Vec<ArchTotal>,
    /// Why the device code could not be read, when it could not.
    pub problem: Option<String>,
}

impl DeviceCode {
    /// Reads the device code of `file`, whose bytes (mapped) are `bytes`. A file whose
    /// device code cannot be read is still a file: the problem is kept, not raised.
    pub fn read(bytes: &[u8], file: &std::fs::File) -> std::io::Result<DeviceCode> {
        if !cudapkgs_fatbin::holds_device_code(bytes) {
            return Ok(DeviceCode::default());
        }
        let reader = FileReader::new(file)?;
        Ok(match scan_with(bytes, &reader, ScanOptions::default()) {
            Ok(scan) => DeviceCode {
                by_arch: scan.entries().collect::<ArchTotals>().biggest_first(),
                problem: None,
            },
            Err(error) => DeviceCode {
                by_arch: Vec::new(),
                problem: Some(format!("its device code could not be read: {error}")),
            },
        })
    }

    pub fn bytes(&self) -> u64 {
        self.by_arch.iter().map(|total| total.stored_bytes).sum()
    }
}

/// `sm_86`; kinds other than SASS and PTX (whose architectures already tell them apart)
/// are named: `sm_90 (lto-ir)`.
pub fn label(total: &ArchTotal) -> String {
    match total.kind {
        EntryKind::Sass | EntryKind::Ptx => total.arch.clone(),
        kind => format!("{} ({})", total.arch, kind.name()),
    }
}
