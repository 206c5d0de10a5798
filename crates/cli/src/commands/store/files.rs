//! The JSON documents of `closure` and `why` on folders and files; their keys in the
//! order of their names, as they always were.

use std::path::{Path, PathBuf};

use cudapkgs_check::files::TreeClosure;
use cudapkgs_fatbin::ArchTotal;
use schemars::JsonSchema;
use serde::Serialize;

/// `closure ./FOLDER… --json`: every file with its owner and device code, the same per
/// distribution and for the whole closure, duplicates and unreached files.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct TreeClosureReport<'a> {
    by_distribution: Vec<DistributionReport<'a>>,
    /// The closure's device code per architecture and kind, biggest first.
    device_code: &'a [ArchTotal],
    /// Libraries found at more than one place.
    duplicates: Vec<DuplicateReport<'a>>,
    /// Every file of the closure, biggest first.
    files: Vec<ClosureFileReport<'a>>,
    /// The treemap page written, with `--html`.
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    /// Files of the closure that more than one distribution lists.
    shared: Vec<SharedReport<'a>>,
    total_bytes: u64,
    /// ELF files under the folders given that nothing here loads.
    unreached: &'a [PathBuf],
}

#[derive(Debug, Serialize, JsonSchema)]
struct ClosureFileReport<'a> {
    bytes: u64,
    device_code: &'a [ArchTotal],
    /// Why the device code could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    device_code_problem: Option<&'a str>,
    /// The package that owns the file, if one does.
    distribution: Option<&'a str>,
    path: &'a Path,
}

#[derive(Debug, Serialize, JsonSchema)]
struct DistributionReport<'a> {
    bytes: u64,
    device_code: &'a [ArchTotal],
    /// Null for the files no package owns.
    distribution: Option<&'a str>,
    files: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
struct DuplicateReport<'a> {
    library: &'a str,
    places: &'a [PathBuf],
}

#[derive(Debug, Serialize, JsonSchema)]
struct SharedReport<'a> {
    distributions: &'a [String],
    file: &'a Path,
}

impl<'a> TreeClosureReport<'a> {
    /// The document of `closure`, with the treemap page written when there is one.
    pub(super) fn of(closure: &'a TreeClosure, html: Option<&Path>) -> Self {
        TreeClosureReport {
            by_distribution: closure
                .by_distribution
                .iter()
                .map(|d| DistributionReport {
                    bytes: d.bytes,
                    device_code: &d.device_code,
                    distribution: d.name.as_deref(),
                    files: d.files,
                })
                .collect(),
            device_code: &closure.device_code,
            duplicates: closure
                .duplicates
                .iter()
                .map(|(library, places)| DuplicateReport { library, places })
                .collect(),
            files: closure
                .files
                .iter()
                .map(|file| ClosureFileReport {
                    bytes: file.bytes,
                    device_code: &file.device_code.by_arch,
                    device_code_problem: file.device_code.problem.as_deref(),
                    distribution: file.distribution.as_deref(),
                    path: &file.path,
                })
                .collect(),
            html: html.map(|page| page.display().to_string()),
            shared: closure
                .shared
                .iter()
                .map(|(file, distributions)| SharedReport {
                    distributions,
                    file,
                })
                .collect(),
            total_bytes: closure.total_bytes(),
            unreached: &closure.unreached,
        }
    }
}

/// `why ./FILE DEP --json`: the chain, or null when DEP is not in the file's closure.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct WhyFilesReport<'a> {
    pub(super) chain: Option<Vec<FileHopReport<'a>>>,
}

/// One hop: `file` loads `loads`, found at `next`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct FileHopReport<'a> {
    /// Loaded at run time by name (`dlopen`), not needed at start.
    pub(super) at_run_time: bool,
    pub(super) file: &'a Path,
    pub(super) loads: &'a str,
    pub(super) next: &'a Path,
}
