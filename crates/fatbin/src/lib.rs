//! Readers for CUDA device code inside host binaries.
//!
//! Zero-copy over `&[u8]`: fatbin containers and their entries (`container`), cubin
//! headers and kernel symbols (`cubin`), PTX headers (`ptx`), LZ4 and zstd contents
//! with checked sizes (`decompress`), discovery in ELF files, `.o` files, `ar` archives,
//! `.fatbin` files and bare cubins (`discover`), whole-file scans as owned records
//! (`scan`), and per-kernel verdicts for a GPU (`verdict`), all reading through
//! bounds-checked positions (`read`: a slice, or a file read with `pread`). The file
//! system is `cudapkgs-tree`'s job.
//!
//! Every size and offset in the input is untrusted: readers return `Error` with the
//! offset and what was expected, never panic, and never allocate by a header's word.

pub mod container;
pub mod cubin;
pub mod decompress;
pub mod discover;
mod error;
pub mod prune;
pub mod ptx;
mod read;
pub mod scan;
pub mod verdict;

pub use container::{Compression, Container, Entry, EntryFlags, EntryKind, containers};
pub use cubin::{CubinInfo, CubinType, demangle, parse_cubin};
pub use discover::{FatbinSection, Format, SectionKind, Unit, holds_device_code, sniff, units};
pub use error::Error;
pub use prune::{
    KeepPtx, PruneError, PrunePlan, PruneRequest, Removed, compressed_size, plan_prune,
};
pub use ptx::{PtxInfo, parse_ptx};
pub use read::{FileReader, ReadAt};
pub use scan::{
    ArchTotal, ArchTotals, ContainerScan, EntryInfo, FileScan, ScanOptions, UnitScan, all_entries,
    scan, scan_with,
};
pub use verdict::{
    ContainerVerdict, FileVerdict, Gpu, ImageMatch, KernelOutcome, KernelVerdict,
    container_verdict, file_verdict, file_verdicts,
};
