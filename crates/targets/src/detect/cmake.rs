//! CMake: `CMAKE_CUDA_ARCHITECTURES` set by the project, `CUDA_ARCHITECTURES`
//! properties, and the project's own lists of architectures.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::finding::{Fill, Finding, Kind, Slot, Spelling};
use crate::lang::Masked;
use crate::syntax::close_paren;
use crate::target::{Forced, cmake_item, list_item, parse_list};

/// One command: `name(arguments)`.
#[derive(Debug)]
struct Command<'a> {
    name: String,
    start: usize,
    args: Vec<Argument<'a>>,
}

#[derive(Debug)]
struct Argument<'a> {
    /// The bytes of the argument, quotes included.
    range: Range<usize>,
    /// Its value, quotes removed.
    value: &'a str,
    quoted: bool,
}

/// The conditions a command runs under.
#[derive(Debug, Clone)]
struct Branch {
    condition: String,
    /// In the `else()` part of its `if()`.
    negated: bool,
}

pub(crate) fn detect(masked: &Masked) -> Vec<Finding> {
    let text = masked.text.as_str();
    let mut findings = Vec::new();
    let mut branches: Vec<Branch> = Vec::new();
    // Lists by name: the finding of their `set()`, extended by `list(APPEND)`.
    let mut lists: BTreeMap<String, usize> = BTreeMap::new();
    let mut property_uses: BTreeMap<String, Vec<usize>> = BTreeMap::new();

    let mut functions: Vec<String> = Vec::new();
    for command in commands(text) {
        let first = command.args.first().map(|arg| arg.value);
        let before = findings.len();
        if follow(&mut branches, &command) {
            continue;
        }
        match command.name.as_str() {
            "function" | "macro" => functions.push(first.unwrap_or("").to_ascii_lowercase()),
            "endfunction" | "endmacro" => {
                functions.pop();
            }
            "set" if first == Some("CMAKE_CUDA_ARCHITECTURES") => {
                findings.extend(architectures(&command, &branches));
            }
            "set" if first.is_some_and(names_a_list) => {
                let name = first.expect("checked").to_owned();
                if let Some(finding) = project_list(&command, &name, &branches) {
                    lists.insert(name, findings.len());
                    findings.push(finding);
                }
            }
            "list" if first == Some("APPEND") => {
                let Some(name) = command.args.get(1).map(|arg| arg.value) else {
                    continue;
                };
                if let Some(&index) = lists.get(name) {
                    append_to_list(&mut findings[index], &command, text);
                }
            }
            "set_target_properties" | "set_property" => {
                if let Some((finding, uses)) = property(&command) {
                    findings.extend(finding);
                    for name in uses {
                        property_uses.entry(name).or_default().push(command.start);
                    }
                }
            }
            _ => {}
        }
        for finding in &mut findings[before..] {
            finding.function.clone_from(&functions.last().cloned());
        }
    }
    for (name, index) in &lists {
        if let Some(uses) = property_uses.get(name) {
            let finding = &mut findings[*index];
            finding.reason = format!(
                "{}; used as the CUDA_ARCHITECTURES of {} {}",
                finding.reason,
                uses.len(),
                if uses.len() == 1 { "target" } else { "targets" }
            );
        }
    }
    findings
}

/// Every call of a command in the file (functions and macros included), with the line
/// and whether a `CMAKE_CUDA_ARCHITECTURES` guard encloses it.
pub(crate) fn calls(masked: &Masked) -> Vec<(String, usize, bool)> {
    let text = masked.text.as_str();
    let mut branches: Vec<Branch> = Vec::new();
    let mut calls = Vec::new();
    for command in commands(text) {
        if !follow(&mut branches, &command) {
            calls.push((
                command.name.clone(),
                crate::lang::line_of(text, command.start),
                guarded(&branches, "CMAKE_CUDA_ARCHITECTURES").is_some(),
            ));
        }
    }
    calls
}

/// Names of lists that hold architectures: `CUDA_ARCHS`, `CUDA_SUPPORTED_ARCHS`,
/// `COMPUTE_CAPABILITY`, `GPU_TARGETS`.
pub(crate) fn names_a_list(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    (upper.contains("ARCH") || upper.contains("CAPABILIT") || upper.ends_with("_SMS"))
        && !matches!(
            upper.as_str(),
            "CMAKE_CUDA_ARCHITECTURES" | "CMAKE_SYSTEM_PROCESSOR" | "CMAKE_OSX_ARCHITECTURES"
        )
        && !upper.starts_with("CMAKE_")
}

/// Follows `if`/`elseif`/`else`/`endif`; true when `command` was one of them.
fn follow(branches: &mut Vec<Branch>, command: &Command<'_>) -> bool {
    match command.name.as_str() {
        "if" => branches.push(Branch {
            condition: condition(command),
            negated: false,
        }),
        "elseif" => {
            if let Some(branch) = branches.last_mut() {
                *branch = Branch {
                    condition: condition(command),
                    negated: false,
                };
            }
        }
        "else" => {
            if let Some(branch) = branches.last_mut() {
                branch.negated = true;
            }
        }
        "endif" => {
            branches.pop();
        }
        _ => return false,
    }
    true
}

fn condition(command: &Command<'_>) -> String {
    command
        .args
        .iter()
        .map(|arg| {
            if arg.quoted {
                format!("\"{}\"", arg.value)
            } else {
                arg.value.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the branches make `variable` a default: inside `if(NOT DEFINED X)`,
/// `if(NOT X)`, `if("${X}" STREQUAL "")`, or the `else()` of `if(DEFINED X)`.
fn guarded(branches: &[Branch], variable: &str) -> Option<String> {
    branches.iter().find_map(|branch| {
        let condition = &branch.condition;
        if !condition.contains(variable) {
            return None;
        }
        let negative = condition.starts_with("NOT ") || condition.contains("STREQUAL \"\"");
        (negative != branch.negated).then(|| {
            let keyword = if branch.negated { "else of " } else { "" };
            format!("a default, inside {keyword}if({condition})")
        })
    })
}

fn values_of<'a>(args: &'a [Argument<'a>]) -> &'a [Argument<'a>] {
    let end = args
        .iter()
        .position(|arg| !arg.quoted && matches!(arg.value, "CACHE" | "PARENT_SCOPE" | "FORCE"))
        .unwrap_or(args.len());
    &args[..end]
}

fn joined(values: &[Argument<'_>]) -> Option<String> {
    let text: Vec<&str> = values.iter().map(|arg| arg.value).collect();
    let text = text.join(";");
    (!text.contains("${") && !text.contains("$<")).then_some(text)
}

fn architectures(command: &Command<'_>, branches: &[Branch]) -> Option<Finding> {
    let values = values_of(&command.args[1..]);
    let forced = parse_list(&joined(values)?, &[';', ' '], cmake_item)?;
    let range = values.first()?.range.start..values.last()?.range.end;
    let rest: Vec<&str> = command.args[1 + values.len()..]
        .iter()
        .map(|arg| arg.value)
        .collect();
    let cache = rest.contains(&"CACHE");
    let forced_cache = rest.contains(&"FORCE");
    let (overrides, reason) = if cache && !forced_cache {
        (
            false,
            "a cache default: -DCMAKE_CUDA_ARCHITECTURES replaces it".to_owned(),
        )
    } else if let Some(guard) = guarded(branches, "CMAKE_CUDA_ARCHITECTURES") {
        (false, guard)
    } else {
        (
            true,
            "set by the project: -DCMAKE_CUDA_ARCHITECTURES and CUDAARCHS are ignored".to_owned(),
        )
    };
    let slot = Slot {
        range,
        fill: Fill::CmakeArchitectures { quoted: true },
    };
    Some(
        Finding::new(Kind::CmakeArchitectures, forced, vec![slot])
            .at(command.start, command.start)
            .reason(overrides, reason),
    )
}

fn project_list(command: &Command<'_>, name: &str, branches: &[Branch]) -> Option<Finding> {
    let values = values_of(&command.args[1..]);
    let (forced, slot) = list_slot(values)?;
    let upper_bound = name.to_ascii_uppercase().contains("SUPPORTED");
    let (overrides, reason) = if let Some(guard) = guarded(branches, name) {
        (false, format!("{guard} (the project's own list {name})"))
    } else if upper_bound {
        (
            false,
            format!(
                "the project's list {name} of what it supports: requested capabilities outside it are dropped"
            ),
        )
    } else {
        (
            true,
            format!("the project's own list {name}: CMAKE_CUDA_ARCHITECTURES does not change it"),
        )
    };
    let mut finding = Finding::new(Kind::ArchList, forced, vec![slot])
        .at(command.start, command.start)
        .reason(overrides, reason);
    finding.upper_bound = upper_bound;
    Some(finding)
}

/// The capabilities of a list's arguments and the slot that rewrites them in the same
/// spelling, quoting and separator.
fn list_slot(values: &[Argument<'_>]) -> Option<(Forced, Slot)> {
    let text = joined(values)?;
    let items: Vec<&str> = text.split([';', ' ']).filter(|i| !i.is_empty()).collect();
    let capabilities = items
        .iter()
        .map(|item| list_item(item))
        .collect::<Option<std::collections::BTreeSet<_>>>()?;
    if capabilities.is_empty() {
        return None;
    }
    let forced = Forced::Targets(
        capabilities
            .iter()
            .copied()
            .map(crate::target::Target::Sass)
            .collect(),
    );
    let first = values.first()?;
    let separate_arguments = values.len() > 1;
    let slot = Slot {
        range: first.range.start..values.last()?.range.end,
        fill: Fill::CapabilityList {
            spelling: Spelling::of(items[0]),
            quote: first.quoted.then_some('"'),
            separator: if separate_arguments { " " } else { ";" }.to_owned(),
        },
    };
    Some((forced, slot))
}

fn append_to_list(finding: &mut Finding, command: &Command<'_>, text: &str) {
    let values = &command.args[2..];
    let Some((Forced::Targets(added), slot)) = list_slot(values) else {
        return;
    };
    if let Forced::Targets(targets) = &mut finding.forced {
        targets.extend(added);
    }
    // The space before the values goes too: `list(APPEND CUDA_ARCHS)`.
    let start = slot.range.start - spaces_before(text, slot.range.start);
    finding.slots.push(Slot {
        range: start..slot.range.end,
        fill: Fill::Nothing,
    });
    finding.span.1 = command.start;
}

fn spaces_before(text: &str, at: usize) -> usize {
    text[..at].len() - text[..at].trim_end_matches([' ', '\t']).len()
}

/// `CUDA_ARCHITECTURES` given to targets: a literal list is a finding; a `${LIST}`
/// names a list whose finding tells the story. Returns the finding and the lists used.
fn property(command: &Command<'_>) -> Option<(Option<Finding>, Vec<String>)> {
    let position = command
        .args
        .iter()
        .position(|arg| !arg.quoted && arg.value == "CUDA_ARCHITECTURES")?;
    let values: &[Argument<'_>] = if command.name == "set_property" {
        &command.args[position + 1..]
    } else {
        command.args.get(position + 1..position + 2)?
    };
    let text: Vec<&str> = values.iter().map(|arg| arg.value).collect();
    let text = text.join(";");
    if text.contains("CMAKE_CUDA_ARCHITECTURES") {
        return None;
    }
    if text.contains("${") {
        let names = text
            .split("${")
            .skip(1)
            .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
            .collect();
        return Some((None, names));
    }
    let forced = parse_list(&text, &[';', ' '], cmake_item)?;
    let slot = Slot {
        range: values.first()?.range.start..values.last()?.range.end,
        fill: Fill::CmakeArchitectures { quoted: true },
    };
    let finding = Finding::new(Kind::CmakeProperty, forced, vec![slot])
        .at(command.start, command.start)
        .reason(
            true,
            "a target property: CMAKE_CUDA_ARCHITECTURES and CUDAARCHS are ignored",
        );
    Some((Some(finding), Vec::new()))
}

/// The commands of a CMake file, in order.
fn commands(text: &str) -> Vec<Command<'_>> {
    let bytes = text.as_bytes();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !(at_word && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_')) {
            i += 1;
            continue;
        }
        let name_end = i + bytes[i..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .unwrap_or(bytes.len() - i);
        let open = name_end
            + bytes[name_end..]
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t'))
                .unwrap_or(bytes.len() - name_end);
        if bytes.get(open) != Some(&b'(') {
            i = name_end.max(i + 1);
            continue;
        }
        let Some(close) = close_paren(bytes, open) else {
            break;
        };
        commands.push(Command {
            name: text[i..name_end].to_ascii_lowercase(),
            start: i,
            args: arguments(text, open + 1, close),
        });
        i = close + 1;
    }
    commands
}

/// The arguments between `start` and `end`: quoted, or unquoted words (nested
/// parentheses kept in one word).
fn arguments(text: &str, start: usize, end: usize) -> Vec<Argument<'_>> {
    let bytes = text.as_bytes();
    let mut args = Vec::new();
    let mut i = start;
    while i < end {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < end && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let close = j.min(end);
            args.push(Argument {
                range: i..(close + 1).min(end),
                value: &text[i + 1..close],
                quoted: true,
            });
            i = close + 1;
            continue;
        }
        let mut j = i;
        let mut depth = 0usize;
        while j < end && (depth > 0 || !bytes[j].is_ascii_whitespace()) {
            match bytes[j] {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            j += 1;
        }
        args.push(Argument {
            range: i..j,
            value: &text[i..j],
            quoted: false,
        });
        i = j;
    }
    args
}
