//! `cudapkgs prune`: drop the device code no requested GPU can use.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cudapkgs_caps::Capability;
use cudapkgs_fatbin::{
    EntryKind, Format, KeepPtx, PruneError, PruneRequest, Removed, compressed_size, plan_prune,
    sniff,
};
use cudapkgs_report::{Phase, Task};
use cudapkgs_tree::{self as tree, Mapped, Outcome, Walk, copy_tree, rewrite_file};
use serde::Serialize;

use crate::cli::{KeepPtxArg, PruneArgs, TextOrJson};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::progress::{Bars, label_of};
use crate::render::count;
use crate::settings::{Config, EnvLookup, capabilities_of, driver_release, targets, tell_sources};
use crate::units::{bytes, share};

/// One file's pruning.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct FileReport {
    path: String,
    changed: bool,
    removed_bytes: u64,
    removed: Vec<Removed>,
    /// Kernels built only for other GPUs than those requested, whose entries go.
    kernels_without_image: u64,
    apparent_size: u64,
    allocated_before: u64,
    allocated_after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    zstd_before: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zstd_after: Option<u64>,
}

#[derive(Debug, Serialize, Default, schemars::JsonSchema)]
struct Summary {
    files_pruned: usize,
    removed_bytes: u64,
    kernels_without_image: u64,
    apparent_size: u64,
    allocated_before: u64,
    allocated_after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    zstd_before: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zstd_after: Option<u64>,
    removed: Vec<Removed>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Report<'a> {
    capabilities: &'a [Capability],
    keep_ptx: KeepPtx,
    dry_run: bool,
    files: Vec<&'a FileReport>,
    /// Files left untouched because pruning would break a kernel.
    refused: Vec<(&'a str, &'a str)>,
    /// Files left untouched because they could not be read or rewritten.
    unreadable: Vec<(&'a str, &'a str)>,
    summary: Summary,
}

/// Why a file was not pruned.
#[derive(Debug)]
enum Failure {
    WouldBreak(String),
    Unreadable(String),
}

fn holds_containers(magic: &[u8]) -> bool {
    matches!(
        sniff(magic),
        Some(Format::Elf | Format::Archive | Format::Fatbin)
    )
}

/// The JSON document of `prune`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("prune", schema_of::<Report>())]
}

pub fn run(
    args: &PruneArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    let targets = targets(args.capabilities.as_deref(), &args.gpus, env, config)?;
    let (driver_cuda, release) = driver_release(args.driver_cuda, &targets, env, config)?;
    tell_sources(
        output,
        &[("cuda", &release.source), ("capabilities", &targets.source)],
    );
    let capabilities = capabilities_of(&targets, release.value)?;
    if capabilities.is_empty() {
        return Err(CliError::new("no capabilities to keep").with_hint(
            "pass --capabilities LIST or --gpu NAME (or set CUDAPKGS_GPU, or [cuda] gpus in cudapkgs.toml)",
        ));
    }
    let request = PruneRequest {
        capabilities: capabilities.clone(),
        keep_ptx: match args.keep_ptx {
            KeepPtxArg::Auto => KeepPtx::Auto,
            KeepPtxArg::All => KeepPtx::All,
            KeepPtxArg::None => KeepPtx::None,
        },
        driver_cuda,
    };
    let targets = match &args.out {
        Some(output) => {
            let [source] = args.paths.as_slice() else {
                return Err(CliError::new("--out takes exactly one PATH")
                    .with_hint("prune one tree at a time"));
            };
            copy_tree(source, output).map_err(|error| {
                CliError::new(format!(
                    "cannot copy {} to {}",
                    source.display(),
                    output.display()
                ))
                .caused_by(&error)
            })?;
            vec![output.clone()]
        }
        None => args.paths.clone(),
    };
    let walk = Walk {
        wants: holds_containers,
        zips: false,
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let progress = Bars::new(output);
    let task = Task::start(&progress, Phase::Prune, &label_of(&targets), None);
    let visited = tree::visit(&targets, walk, threads, |source, input| {
        task.advance(1);
        Ok(prune_file(
            Path::new(&source.display),
            input.bytes,
            &request,
            args,
        ))
    });
    drop(task);

    let mut reports = Vec::new();
    let mut refused = Vec::new();
    let mut unreadable = Vec::new();
    for file in &visited {
        match &file.outcome {
            Outcome::Done(Ok(Some(report))) => reports.push(report),
            Outcome::Done(Ok(None)) | Outcome::NoBinaries => {}
            Outcome::Done(Err(Failure::WouldBreak(message))) => {
                refused.push((file.source.display.as_str(), message.as_str()));
            }
            Outcome::Done(Err(Failure::Unreadable(message))) | Outcome::Failed(message) => {
                unreadable.push((file.source.display.as_str(), message.as_str()));
            }
        }
    }
    let summary = summarize(&reports, args.compressed_size);
    let report = Report {
        capabilities: &capabilities,
        keep_ptx: request.keep_ptx,
        dry_run: args.dry_run,
        files: reports.iter().copied().filter(|r| r.changed).collect(),
        refused: refused.clone(),
        unreadable: unreadable.clone(),
        summary,
    };
    if output.json || args.format == TextOrJson::Json {
        Output::print_json(&report)?;
    } else {
        Output::print(&human(&report))?;
    }
    for (path, message) in &refused {
        output.warn(format!("{path}: {message} (left untouched)"));
    }
    for (path, message) in &unreadable {
        output.error(format!("{path}: {message} (left untouched)"));
    }
    Ok(if !unreadable.is_empty() {
        Exit::Usage
    } else if !refused.is_empty() {
        Exit::Problems
    } else {
        Exit::Success
    })
}

/// Prunes one file; `None` when it holds no device code.
fn prune_file(
    path: &Path,
    data: &[u8],
    request: &PruneRequest,
    args: &PruneArgs,
) -> Result<Option<FileReport>, Failure> {
    let plan = match plan_prune(data, request) {
        Ok(plan) => plan,
        Err(error @ PruneError::WouldBreak { .. }) => {
            return Err(Failure::WouldBreak(format!(
                "{error}; keep PTX (--keep-ptx auto) or add the capability"
            )));
        }
        Err(error @ PruneError::Unserved { .. }) => {
            return Err(Failure::WouldBreak(error.to_string()));
        }
        Err(PruneError::Read(cudapkgs_fatbin::Error::NotRecognized(_))) => return Ok(None),
        Err(error) => return Err(Failure::Unreadable(error.to_string())),
    };
    let unreadable = |error: io::Error| Failure::Unreadable(error.to_string());
    let before = std::fs::metadata(path).map_err(unreadable)?;
    let zstd_before = args
        .compressed_size
        .then(|| compressed_size(data))
        .transpose()
        .map_err(unreadable)?;
    if plan.changed() && !args.dry_run {
        rewrite_file(path, &plan.rewrite)
            .map_err(|error| Failure::Unreadable(format!("cannot rewrite: {error}")))?;
    }
    let after = std::fs::metadata(path).map_err(unreadable)?;
    let zstd_after = if args.compressed_size {
        if plan.changed() && !args.dry_run {
            let file = std::fs::File::open(path).map_err(unreadable)?;
            let mapped = Mapped::open(&file).map_err(unreadable)?;
            Some(compressed_size(mapped.bytes()).map_err(unreadable)?)
        } else {
            zstd_before
        }
    } else {
        None
    };
    Ok(Some(FileReport {
        path: path.display().to_string(),
        changed: plan.changed(),
        removed_bytes: plan.removed_bytes,
        removed: plan.removed,
        kernels_without_image: plan.kernels_without_image,
        apparent_size: after.len(),
        allocated_before: before.blocks() * 512,
        allocated_after: after.blocks() * 512,
        zstd_before,
        zstd_after,
    }))
}

fn summarize(reports: &[&FileReport], compressed: bool) -> Summary {
    let mut by_arch: BTreeMap<(EntryKind, String), Removed> = BTreeMap::new();
    let mut summary = Summary::default();
    for report in reports {
        summary.files_pruned += usize::from(report.changed);
        summary.removed_bytes += report.removed_bytes;
        summary.kernels_without_image += report.kernels_without_image;
        summary.apparent_size += report.apparent_size;
        summary.allocated_before += report.allocated_before;
        summary.allocated_after += report.allocated_after;
        for removed in &report.removed {
            let total = by_arch
                .entry((removed.kind, removed.arch.clone()))
                .or_insert_with(|| Removed {
                    arch: removed.arch.clone(),
                    kind: removed.kind,
                    entries: 0,
                    bytes: 0,
                });
            total.entries += removed.entries;
            total.bytes += removed.bytes;
        }
    }
    if compressed {
        summary.zstd_before = Some(reports.iter().filter_map(|r| r.zstd_before).sum());
        summary.zstd_after = Some(reports.iter().filter_map(|r| r.zstd_after).sum());
    }
    summary.removed = by_arch.into_values().collect();
    summary
        .removed
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.arch.cmp(&b.arch)));
    summary
}

fn human(report: &Report<'_>) -> String {
    let mut out = String::new();
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for file in &report.files {
        let archs: Vec<String> = file
            .removed
            .iter()
            .map(|r| format!("{} {}", r.arch, bytes(r.bytes)))
            .collect();
        let _ = writeln!(
            out,
            "{}: {verb} {} ({} of the file): {}",
            file.path,
            bytes(file.removed_bytes),
            share(file.removed_bytes, file.apparent_size),
            archs.join(", ")
        );
    }
    let summary = &report.summary;
    let capabilities: Vec<String> = report
        .capabilities
        .iter()
        .map(ToString::to_string)
        .collect();
    let refused = match report.refused.len() {
        0 => String::new(),
        count => format!(", {count} refused and left untouched"),
    };
    let _ = writeln!(
        out,
        "\nkeeping {} (PTX: {}): {} pruned{refused}, {verb} {} of {}",
        capabilities.join(" "),
        report.keep_ptx,
        count(summary.files_pruned, "file", "files"),
        bytes(summary.removed_bytes),
        bytes(summary.apparent_size),
    );
    if summary.kernels_without_image > 0 {
        let _ = writeln!(
            out,
            "{} kernels have images for other GPUs only (libraries launch such kernels on their own architecture): their code {}",
            summary.kernels_without_image,
            if report.dry_run {
                "would be removed"
            } else {
                "was removed"
            }
        );
    }
    if !report.dry_run {
        let _ = writeln!(
            out,
            "allocated on disk: {} → {}",
            bytes(summary.allocated_before),
            bytes(summary.allocated_after)
        );
    }
    if let (Some(before), Some(after)) = (summary.zstd_before, summary.zstd_after) {
        let _ = writeln!(out, "zstd-compressed: {} → {}", bytes(before), bytes(after));
    }
    if !summary.removed.is_empty() {
        let _ = writeln!(
            out,
            "\n  {:<14} {:<8} {:>8} {:>11}",
            "arch", "kind", "entries", "bytes"
        );
        for removed in &summary.removed {
            let _ = writeln!(
                out,
                "  {:<14} {:<8} {:>8} {:>11}",
                removed.arch,
                removed.kind.name(),
                removed.entries,
                bytes(removed.bytes)
            );
        }
    }
    out
}
