//! The detectors, one per family of build syntax, and the scan of one file's text.

mod cmake;
mod meson;
mod nvcc;
mod python;
mod vars;

use crate::finding::Finding;
use crate::lang::{Language, Masked, line_of};

/// Every place in `text`, a file in `language`, that forces GPU targets, in the order
/// of the file.
pub fn scan_text(text: &str, language: Language) -> Vec<Finding> {
    let masked = Masked::new(text, language);
    let mut findings = nvcc::detect(text, &masked, language);
    findings.extend(vars::detect(&masked.text));
    match language {
        Language::CMake => findings.extend(cmake::detect(&masked)),
        Language::Python => findings.extend(python::detect(&masked)),
        Language::Meson => findings.extend(meson::detect(&masked)),
        Language::Make | Language::Bazel | Language::Shell | Language::Toml => {}
    }
    findings.sort_by_key(|finding| (finding.span.0, finding.kind));
    // Two detectors may see one place (a variable assigned inside a flag string): the
    // first keeps it.
    let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
    for finding in findings {
        let overlaps = kept.iter().any(|other| {
            other.slots.iter().any(|a| {
                finding
                    .slots
                    .iter()
                    .any(|b| a.range.start < b.range.end && b.range.start < a.range.end)
            })
        });
        if !overlaps {
            kept.push(finding);
        }
    }
    for finding in &mut kept {
        finding.line = line_of(text, finding.span.0);
        finding.end_line = line_of(text, finding.span.1).max(finding.line);
    }
    kept
}
