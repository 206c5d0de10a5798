//! Python builds: `TORCH_CUDA_ARCH_LIST` set by `setup.py`, and the project's own
//! lists (`os.getenv("FLASH_ATTN_CUDA_ARCHS", "80;90;100;120")`, `ARCHS = ["80"]`).

use std::collections::BTreeSet;
use std::ops::Range;

use crate::detect::cmake::names_a_list;
use crate::finding::{Fill, Finding, Kind, Slot, Spelling};
use crate::lang::Masked;
use crate::syntax::python_block;
use crate::target::{Forced, Target, list_item, parse_list, torch_item};

const TORCH: &str = "TORCH_CUDA_ARCH_LIST";

pub(crate) fn detect(masked: &Masked) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, string) in masked.strings.iter().enumerate() {
        let Some(name) = masked.content(string) else {
            continue;
        };
        if name == TORCH {
            findings.extend(
                environ_assignment(masked, index).or_else(|| default_argument(masked, index)),
            );
        } else if names_a_list(name) && is_identifier(name) {
            findings.extend(project_default(masked, index, name));
        }
    }
    findings.extend(list_assignments(masked));
    findings
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `os.environ["TORCH_CUDA_ARCH_LIST"] = "6.0;7.0"`: forced, unless an enclosing `if`
/// asks whether the user set it.
fn environ_assignment(masked: &Masked, index: usize) -> Option<Finding> {
    let text = masked.text.as_str();
    let name = &masked.strings[index];
    let rest = text[name.end..].trim_start();
    let rest = rest.strip_prefix(']')?.trim_start();
    if !rest.starts_with('=') || rest.starts_with("==") {
        return None;
    }
    let value = masked.strings.get(index + 1)?;
    let between = &text[name.end..value.start];
    if between.contains('\n') {
        return None;
    }
    let forced = parse_list(masked.content(value)?, &[';', ' '], torch_item)?;
    let guard = enclosing_headers(text, name.start)
        .into_iter()
        .find(|header| header.contains(TORCH));
    let (overrides, reason) = match guard {
        Some(header) => (
            false,
            format!(
                "a default, inside `{}`",
                header.trim().trim_end_matches(':')
            ),
        ),
        None => (
            true,
            "set by the build: the user's TORCH_CUDA_ARCH_LIST is replaced".to_owned(),
        ),
    };
    Some(
        torch_arch_list(forced, value)
            .at(name.start, name.start)
            .reason(overrides, reason),
    )
}

/// A TORCH_CUDA_ARCH_LIST value in the string literal at `value` (quotes included), to
/// be filled inside its quotes.
fn torch_arch_list(forced: Forced, value: &Range<usize>) -> Finding {
    Finding::new(
        Kind::TorchArchList,
        forced,
        vec![Slot {
            range: value.start + 1..value.end - 1,
            fill: Fill::TorchArchList,
        }],
    )
}

/// The string after `name` in a call like `os.getenv(name, "…")` or
/// `os.environ.setdefault(name, "…")`.
fn default_string(masked: &Masked, index: usize) -> Option<&Range<usize>> {
    let text = masked.text.as_str();
    let name = &masked.strings[index];
    let before = text[..name.start].trim_end().strip_suffix('(')?.trim_end();
    let method = before.rsplit(['.', ' ', '(', '=']).next().unwrap_or("");
    if !matches!(method, "getenv" | "get" | "setdefault") {
        return None;
    }
    let value = masked.strings.get(index + 1)?;
    (text[name.end..value.start].trim() == ",").then_some(value)
}

/// `os.getenv("TORCH_CUDA_ARCH_LIST", "8.0")`: a default the user's value replaces.
fn default_argument(masked: &Masked, index: usize) -> Option<Finding> {
    let value = default_string(masked, index)?;
    let forced = parse_list(masked.content(value)?, &[';', ' '], torch_item)?;
    Some(
        torch_arch_list(forced, value)
            .at(value.start, value.start)
            .reason(
                false,
                "a default: the user's TORCH_CUDA_ARCH_LIST replaces it",
            ),
    )
}

/// `os.getenv("FLASH_ATTN_CUDA_ARCHS", "80;90;100;120")`: the project's own variable.
fn project_default(masked: &Masked, index: usize, name: &str) -> Option<Finding> {
    let value = default_string(masked, index)?;
    let content = masked.content(value)?;
    let separator = [';', ',', ' ']
        .into_iter()
        .find(|separator| content.contains(*separator))
        .unwrap_or(';');
    let capabilities = capabilities(content.split(separator))?;
    let first = content
        .split(separator)
        .find(|item| !item.trim().is_empty())?;
    Some(
        Finding::new(
            Kind::ArchList,
            sass(&capabilities),
            vec![Slot {
                range: value.start + 1..value.end - 1,
                fill: Fill::CapabilityList {
                    spelling: Spelling::of(first.trim()),
                    quote: None,
                    separator: separator.to_string(),
                },
            }],
        )
        .at(value.start, value.start)
        .reason(
            true,
            format!("the project's own variable {name}, read instead of TORCH_CUDA_ARCH_LIST"),
        ),
    )
}

/// `SUPPORTED_ARCHS = ["8.0", "9.0"]` or `CUDA_ARCHS = "80;90"` at the start of a line,
/// for upper-case names.
fn list_assignments(masked: &Masked) -> Vec<Finding> {
    let text = masked.text.as_str();
    let mut findings = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        let Some((name, value)) = trimmed.split_once('=') else {
            continue;
        };
        let name = name
            .trim()
            .trim_end_matches(|c: char| c == ':' || c.is_whitespace());
        let name = name.split(':').next().unwrap_or(name).trim();
        // Constants only (`SUPPORTED_ARCHS`): a library's lower-case variables are its
        // own business, not build configuration.
        let constant = !name.bytes().any(|b| b.is_ascii_lowercase());
        if value.starts_with('=') || !is_identifier(name) || !names_a_list(name) || !constant {
            continue;
        }
        let value_start = line_start + (line.len() - value.len());
        // The strings are in order: find the line's by bisection, not by a pass over all.
        let from = masked.strings.partition_point(|s| s.start < value_start);
        let strings: Vec<&Range<usize>> = masked.strings[from..]
            .iter()
            .take_while(|s| s.end <= offset)
            .collect();
        let (Some(first), Some(last)) = (strings.first(), strings.last()) else {
            continue;
        };
        // Only strings, commas and brackets: a literal list, nothing computed.
        let mut rest = text[value_start..offset].to_owned();
        for string in strings.iter().rev() {
            rest.replace_range(string.start - value_start..string.end - value_start, "");
        }
        if !rest
            .chars()
            .all(|c| "[](),".contains(c) || c.is_whitespace())
        {
            continue;
        }
        // A string left open is no literal.
        let Some(items) = strings
            .iter()
            .map(|s| masked.content(s))
            .collect::<Option<Vec<&str>>>()
        else {
            continue;
        };
        let (fill, range, capabilities) = if let [only] = items.as_slice() {
            let separator = [';', ',', ' ']
                .into_iter()
                .find(|separator| only.contains(*separator))
                .unwrap_or(';');
            let Some(capabilities) = capabilities(only.split(separator)) else {
                continue;
            };
            let fill = Fill::CapabilityList {
                spelling: Spelling::of(only.split(separator).next().unwrap_or("").trim()),
                quote: None,
                separator: separator.to_string(),
            };
            (fill, first.start + 1..first.end - 1, capabilities)
        } else {
            let Some(capabilities) = capabilities(items.iter().copied()) else {
                continue;
            };
            let quote = text[first.start..].chars().next().unwrap_or('"');
            let fill = Fill::CapabilityList {
                spelling: Spelling::of(items[0]),
                quote: Some(quote),
                separator: ", ".to_owned(),
            };
            (fill, first.start..last.end, capabilities)
        };
        findings.push(
            Finding::new(
                Kind::ArchList,
                sass(&capabilities),
                vec![Slot { range, fill }],
            )
            .at(line_start + (line.len() - trimmed.len()), line_start)
            .reason(true, format!("the project's own list {name}")),
        );
    }
    findings
}

fn capabilities<'a>(
    items: impl Iterator<Item = &'a str>,
) -> Option<BTreeSet<cudapkgs_caps::Capability>> {
    let set = items
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(list_item)
        .collect::<Option<BTreeSet<_>>>()?;
    (!set.is_empty()).then_some(set)
}

fn sass(capabilities: &BTreeSet<cudapkgs_caps::Capability>) -> Forced {
    Forced::Targets(capabilities.iter().copied().map(Target::Sass).collect())
}

/// The header lines (`if …:`, `def …:`) a Python line runs under, innermost first.
fn enclosing_headers(text: &str, offset: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut headers = Vec::new();
    let mut position = offset;
    while let Some(line) = python_block(text, position) {
        headers.push(lines[line]);
        position = lines[..line].iter().map(|l| l.len() + 1).sum();
    }
    headers
}
