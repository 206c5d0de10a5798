//! Rewriting the places that force targets so that they state the request: planned in
//! full from the original text, checked by scanning the result again, then written.

use std::ops::Range;

use crate::detect::Context;
use crate::finding::{Fill, Finding, Kind};
use crate::lang::Language;
use crate::target::Request;

/// One replacement in a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub replacement: String,
}

/// A place a rewrite leaves to a person, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manual {
    pub line: usize,
    pub kind: Kind,
    pub reason: String,
}

/// What a rewrite does to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    /// The findings rewritten.
    pub rewritten: Vec<Finding>,
    pub edits: Vec<Edit>,
    /// The findings that cannot be rewritten.
    pub manual: Vec<Manual>,
    /// The text with the edits applied.
    pub new_text: String,
    /// Findings still in conflict with the request after the edits (a detector reads
    /// the result differently than the rewrite meant): never expected, always reported.
    pub remaining: Vec<Finding>,
}

/// Plans the rewrite of every finding of `text` (a file of a tree whose other files
/// give `context`) that conflicts with `request`.
pub fn plan(text: &str, language: Language, request: &Request, context: &Context) -> FilePlan {
    let findings = crate::scan_text_in(text, language, context);
    let mut rewritten = Vec::new();
    let mut edits = Vec::new();
    let mut manual = Vec::new();
    for finding in findings
        .into_iter()
        .filter(|finding| finding.conflicts_with(request))
    {
        match finding_edits(&finding, request) {
            Ok(mut found) => {
                edits.append(&mut found);
                rewritten.push(finding);
            }
            Err(reason) => manual.push(Manual {
                line: finding.line,
                kind: finding.kind,
                reason,
            }),
        }
    }
    edits.sort_by_key(|edit| edit.range.start);
    let new_text = apply(text, &edits);
    let remaining = if edits.is_empty() {
        Vec::new()
    } else {
        crate::scan_text_in(&new_text, language, context)
            .into_iter()
            .filter(|finding| finding.conflicts_with(request))
            .filter(|finding| {
                !manual
                    .iter()
                    .any(|m| m.kind == finding.kind && m.line == finding.line)
            })
            .collect()
    };
    FilePlan {
        rewritten,
        edits,
        manual,
        new_text,
        remaining,
    }
}

/// The text with `edits` (sorted, disjoint) applied.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut position = 0;
    for edit in edits {
        out.push_str(&text[position..edit.range.start]);
        out.push_str(&edit.replacement);
        position = edit.range.end;
    }
    out.push_str(&text[position..]);
    out
}

fn finding_edits(finding: &Finding, request: &Request) -> Result<Vec<Edit>, String> {
    let slots = finding.slots.len();
    finding
        .slots
        .iter()
        .map(|slot| {
            Ok(Edit {
                range: slot.range.clone(),
                replacement: fill(&slot.fill, slots, request)?,
            })
        })
        .collect()
}

fn fill(fill: &Fill, slots: usize, request: &Request) -> Result<String, String> {
    let options = &request.options;
    Ok(match fill {
        Fill::NvccFlags | Fill::CmakeArguments { separate: false } => request.nvcc_flags(),
        Fill::CmakeArguments { separate: true } => format!("{} ", request.nvcc_flags()),
        Fill::GencodeValue {
            position,
            same_block,
            with_flag,
        } => {
            let values = request.gencode_values();
            let value = if values.len() == 1 {
                &values[0]
            } else if !same_block {
                return Err(format!(
                    "{} -gencode values are needed, but these flags are added under different conditions; edit by hand or request one capability",
                    values.len()
                ));
            } else if slots < values.len() {
                return Err(format!(
                    "{} -gencode values are needed, but the file has room for {slots}; edit by hand",
                    values.len()
                ));
            } else {
                &values[position % values.len()]
            };
            if *with_flag {
                format!("-gencode={value}")
            } else {
                value.clone()
            }
        }
        Fill::GencodeElements { quote, pairs } => options
            .nvcc_flags()
            .iter()
            .map(|flag| {
                let value = flag.strip_prefix("-gencode=").unwrap_or(flag);
                if *pairs {
                    format!("{quote}-gencode{quote}, {quote}{value}{quote}")
                } else {
                    format!("{quote}{flag}{quote}")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        Fill::Manual { reason } => return Err((*reason).to_owned()),
        Fill::Nothing => String::new(),
        Fill::CmakeArchitectures { quoted } => {
            let value = options.cmake_architectures();
            if *quoted {
                format!("\"{value}\"")
            } else {
                value
            }
        }
        Fill::TorchArchList => options.torch_arch_list(),
        Fill::TensorflowList => options.tensorflow_capabilities(),
        Fill::MesonArguments { quote } => options
            .torch_arch_list()
            .split(';')
            .map(|item| format!("{quote}{item}{quote}"))
            .collect::<Vec<_>>()
            .join(", "),
        Fill::CapabilityList {
            spelling,
            quote,
            separator,
        } => options
            .capabilities
            .iter()
            .map(|capability| {
                let item = spelling.write(*capability);
                match quote {
                    Some(quote) => format!("{quote}{item}{quote}"),
                    None => item,
                }
            })
            .collect::<Vec<_>>()
            .join(separator),
    })
}
