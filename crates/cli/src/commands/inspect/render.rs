//! `inspect` for people: entry tables for a few files, totals per architecture and the
//! heaviest files for trees, and the per-kernel verdict.

use std::fmt::Write as _;

use cudapkgs_fatbin::{EntryInfo, ImageMatch, KernelOutcome};
use cudapkgs_tree::Outcome;

use super::report::{FileResult, GpuTotals, Judgement, Report};
use crate::output::{FAILED, PASSED};
use crate::render::{count, demangle};
use crate::units::{bytes, share};

/// How many kernels without an image are listed per file before "… and N more".
const UNUSABLE_SHOWN: usize = 20;

/// `width`: the terminal's, which the entry tables' notes wrap within.
pub(crate) fn human(report: &Report, list_entries: bool, width: Option<usize>) -> String {
    let mut out = String::new();
    for file in &report.files {
        match &file.outcome {
            Outcome::Done(result) if result.scan.has_device_code() && list_entries => {
                entries(
                    &mut out,
                    &file.source.display,
                    file.source.size,
                    result,
                    width,
                );
            }
            Outcome::Done(result) if result.scan.has_device_code() => {}
            Outcome::Done(_) | Outcome::NoBinaries if file.source.named => {
                let _ = writeln!(out, "{}: no device code", file.source.display);
            }
            _ => {}
        }
    }
    if report.summary.files_with_device_code > 0 || !list_entries {
        totals(&mut out, report);
    }
    for (index, totals) in report.gpu_totals.iter().enumerate() {
        verdicts(&mut out, report, index, totals);
    }
    out
}

fn entries(out: &mut String, path: &str, size: u64, result: &FileResult, width: Option<usize>) {
    let scan = &result.scan;
    let device = scan.device_code_bytes();
    let _ = writeln!(
        out,
        "{path}: {} in {}, device code {} of {} ({})",
        count(scan.entries().count(), "entry", "entries"),
        count(scan.containers().count(), "container", "containers"),
        bytes(device),
        bytes(size),
        share(device, size)
    );
    let _ = writeln!(
        out,
        "  {:<10} {:<14} {:<12} {:<12} {:<5} {:<7} {:>10} {:>10}  notes",
        "offset", "section", "kind", "arch", "ver", "codec", "stored", "content"
    );
    for unit in &scan.units {
        if let Some(member) = &unit.member {
            if unit.containers.iter().all(|c| c.entries.is_empty()) {
                continue;
            }
            let _ = writeln!(out, "  member {member}:");
        }
        for entry in unit.containers.iter().flat_map(|c| c.entries.iter()) {
            let lead = format!(
                "  {:<10} {:<14} {:<12} {:<12} {:<5} {:<7} {:>10} {:>10}  ",
                format!("{:#x}", entry.offset),
                entry.section.name(),
                entry.kind.name(),
                entry.arch,
                entry.version,
                entry.compression.name(),
                bytes(entry.stored_size),
                bytes(entry.uncompressed_size),
            );
            let _ = writeln!(out, "{}", crate::table::row(&lead, &notes(entry), width));
        }
    }
    if result.extracted > 0 {
        let _ = writeln!(
            out,
            "  extracted {}",
            count(result.extracted, "entry", "entries")
        );
    }
    out.push('\n');
}

fn notes(entry: &EntryInfo) -> String {
    let mut notes = Vec::new();
    if entry.debug {
        notes.push("debug".to_owned());
    }
    if entry.relocatable {
        notes.push("relocatable".to_owned());
    }
    if let Some(identifier) = &entry.identifier {
        notes.push(format!("id={identifier}"));
    }
    if let Some(options) = entry
        .options
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        notes.push(format!("options={options}"));
    }
    if !entry.members.is_empty() {
        notes.push(format!("{} members", entry.members.len()));
    }
    if let Some(problem) = &entry.problem {
        notes.push(format!("problem: {problem}"));
    }
    notes.join(" ")
}

fn totals(out: &mut String, report: &Report) {
    let summary = &report.summary;
    let _ = writeln!(
        out,
        "{} with device code of {} scanned; device code {} of {} ({}) in {}",
        count(summary.files_with_device_code, "file", "files"),
        summary.files_scanned,
        bytes(summary.device_code_bytes),
        bytes(summary.file_bytes),
        share(summary.device_code_bytes, summary.file_bytes),
        count(summary.entries, "entry", "entries")
    );
    if summary.by_arch.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n  {:<14} {:<15} {:>8} {:>11} {:>11} {:>6}",
        "arch", "kind", "entries", "stored", "content", "share"
    );
    for total in &summary.by_arch {
        let _ = writeln!(
            out,
            "  {:<14} {:<15} {:>8} {:>11} {:>11} {:>6}",
            total.arch,
            total.kind.name(),
            total.entries,
            bytes(total.stored_bytes),
            bytes(total.content_bytes),
            share(total.stored_bytes, summary.device_code_bytes)
        );
    }
    if summary.files_with_device_code > 1 {
        let prefix = common_folder(summary.heaviest.iter().map(|heavy| heavy.path.as_str()));
        let under = if prefix.is_empty() {
            String::new()
        } else {
            format!(" under {prefix}")
        };
        let _ = writeln!(
            out,
            "\n  heaviest files{under} (device code, share of the file)"
        );
        for heavy in &summary.heaviest {
            let _ = writeln!(
                out,
                "  {:>11} {:>5}  {}",
                bytes(heavy.device_code_bytes),
                share(heavy.device_code_bytes, heavy.size),
                &heavy.path[prefix.len()..]
            );
        }
    }
}

/// The verdicts for the `index`th judged GPU, whose totals are `totals`.
fn verdicts(out: &mut String, report: &Report, index: usize, totals: &GpuTotals) {
    let gpu = totals.gpu.map(|c| c.to_string()).unwrap_or_default();
    let driver = totals.driver_cuda.map_or_else(
        || "a driver new enough for every PTX".to_owned(),
        |v| format!("a CUDA {v} driver"),
    );
    let _ = writeln!(out, "\nGPU {gpu} with {driver}:");
    for (file, result) in report.with_device_code() {
        let Some(judgement) = result.judged.get(index) else {
            continue;
        };
        if judgement.verdicts.is_empty() {
            continue;
        }
        let unusable: Vec<_> = judgement
            .verdicts
            .iter()
            .filter(|v| v.outcome == KernelOutcome::NoImage)
            .collect();
        let count = |image| {
            judgement
                .verdicts
                .iter()
                .filter(|v| v.image == Some(image))
                .count()
        };
        let mut parts = Vec::new();
        for (image, label) in [
            (ImageMatch::ExactSass, "exact SASS"),
            (ImageMatch::CompatibleSass, "compatible SASS"),
            (ImageMatch::PtxJit, "PTX JIT"),
        ] {
            let n = count(image);
            if n > 0 {
                parts.push(format!("{n} {label}"));
            }
        }
        let elsewhere = judgement
            .verdicts
            .iter()
            .filter(|v| v.outcome == KernelOutcome::OtherArchitecture)
            .count();
        if elsewhere > 0 {
            parts.push(format!(
                "{elsewhere} built for other architectures only ({}), which the library launches only there",
                other_architectures(judgement)
            ));
        }
        if !unusable.is_empty() {
            parts.push(format!("{} without a usable image", unusable.len()));
        }
        let mark = if unusable.is_empty() {
            format!("{PASSED}ok  {PASSED:#}")
        } else {
            format!("{FAILED}FAIL{FAILED:#}")
        };
        let _ = writeln!(
            out,
            "  {mark} {}: {} {}: {}",
            file.source.display,
            judgement.verdicts.len(),
            plural(judgement.verdicts.len(), "kernel", "kernels"),
            parts.join(", ")
        );
        for verdict in unusable.iter().take(UNUSABLE_SHOWN) {
            let _ = writeln!(
                out,
                "         {} (container {:#x}): {}",
                demangle(&verdict.kernel),
                verdict.container,
                if verdict.rejected.is_empty() {
                    "no entry".to_owned()
                } else {
                    verdict.rejected.join("; ")
                }
            );
        }
        if unusable.len() > UNUSABLE_SHOWN {
            let _ = writeln!(
                out,
                "         … and {} more (all of them with --json)",
                unusable.len() - UNUSABLE_SHOWN
            );
        }
    }
    let _ = writeln!(
        out,
        "{} of {} kernels have no usable image on {gpu}",
        totals.unusable, totals.kernels
    );
    if totals.other_architecture > 0 {
        let _ = writeln!(
            out,
            "{} {} built for other architectures only, in files that serve {gpu}: not failures",
            totals.other_architecture,
            plural(totals.other_architecture, "kernel is", "kernels are"),
        );
    }
}

/// The architectures of the containers that do not load on this GPU, or whose loaded
/// image lacks some kernel: `sm_75, sm_80, compute_120`.
fn other_architectures(judgement: &Judgement) -> String {
    const SHOWN: usize = 8;
    let mut archs: Vec<&str> = Vec::new();
    for container in &judgement.containers {
        for arch in &container.architectures {
            if Some(arch) != container.arch.as_ref() && !archs.contains(&arch.as_str()) {
                archs.push(arch);
            }
        }
    }
    // SASS before PTX, by capability: `sm_75, sm_80, sm_100a, compute_120`.
    archs.sort_by_key(|arch| {
        let ptx = arch.starts_with("compute_");
        let digits: String = arch.chars().filter(char::is_ascii_digit).collect();
        (
            ptx,
            digits.parse::<u32>().unwrap_or(u32::MAX),
            arch.to_owned(),
        )
    });
    let more = archs.len().saturating_sub(SHOWN);
    let mut text = archs[..archs.len().min(SHOWN)].join(", ");
    if more > 0 {
        let _ = write!(text, " and {more} more");
    }
    text
}

/// The longest folder (ending in `/`) that every path starts with.
fn common_folder<'a>(mut paths: impl Iterator<Item = &'a str>) -> &'a str {
    let Some(first) = paths.next() else { return "" };
    let mut len = first.rfind('/').map_or(0, |slash| slash + 1);
    for path in paths {
        while len > 0 && !path.starts_with(&first[..len]) {
            len = first[..len - 1].rfind('/').map_or(0, |slash| slash + 1);
        }
    }
    &first[..len]
}

fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_folders() {
        let paths = [
            "/v/site/torch/lib/a.so",
            "/v/site/nvidia/b.so",
            "/v/site/torch/c.so",
        ];
        assert_eq!(common_folder(paths.into_iter()), "/v/site/");
        assert_eq!(common_folder(["/v/a.so"].into_iter()), "/v/");
        assert_eq!(common_folder(["a.so", "/v/b.so"].into_iter()), "");
        assert_eq!(
            common_folder(["/v/site/ab.so", "/v/sitex/c.so"].into_iter()),
            "/v/"
        );
        assert_eq!(common_folder(std::iter::empty()), "");
    }
}
