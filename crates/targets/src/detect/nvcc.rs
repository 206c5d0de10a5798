//! nvcc's own flags written into a build: `-gencode arch=compute_80,code=sm_80` and
//! `-arch=sm_80`, in any language.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::finding::{Fill, Finding, Kind, Slot};
use crate::lang::{Language, Masked};
use crate::syntax::{
    append_receiver, cmake_command, occurrences, python_block, string_openers, word_starts,
};
use crate::target::{Forced, Target, arch_value, gencode_value};

const GENCODE_FLAGS: [&str; 2] = ["--generate-code", "-gencode"];

/// One flag (or flag value) found in the text.
#[derive(Debug, Clone)]
struct Place {
    /// Where the flag starts (`-gencode`, `-arch`, or the value when it stands alone).
    flag_start: usize,
    /// The value's bytes (`arch=compute_80,code=sm_80`, `sm_80`).
    value: Range<usize>,
    forced: Forced,
    kind: Kind,
    /// The string literal it fills alone, if it does.
    element: Option<Element>,
}

#[derive(Debug, Clone)]
struct Element {
    string: Range<usize>,
    string_index: usize,
    /// The previous string literal holds just `-gencode` (pairs like
    /// `"-gencode", "arch=…"`).
    after_flag_string: Option<Range<usize>>,
}

pub(crate) fn detect(text: &str, masked: &Masked, language: Language) -> Vec<Finding> {
    let mut places = gencode_places(&masked.text);
    places.extend(arch_places(&masked.text));
    places.sort_by_key(|place| place.value.start);
    for place in &mut places {
        place.element = element_of(masked, place);
    }

    let openers = string_openers(masked);
    let mut findings = Vec::new();
    let mut inline_run: Vec<Place> = Vec::new();
    // Elements grouped by what holds them: a list literal, an append receiver, a
    // CMake command.
    let mut groups: BTreeMap<Group, Vec<Place>> = BTreeMap::new();
    for place in places {
        match &place.element {
            None => {
                if let Some(last) = inline_run.last() {
                    if !continues_run(&masked.text, last, &place) {
                        findings.push(inline_finding(&std::mem::take(&mut inline_run)));
                    }
                }
                inline_run.push(place);
            }
            Some(element) => {
                let group = if language == Language::CMake {
                    Group::Command(
                        cmake_command(&masked.text, element.string.start)
                            .map_or(element.string.start, |(start, _)| start),
                    )
                } else {
                    match openers[element.string_index] {
                        Some((open, b'[')) if is_list_element(&masked.text, element) => {
                            Group::List(open)
                        }
                        Some((open, b'(')) => match append_receiver(&masked.text, open) {
                            Some(receiver) => Group::Receiver(receiver.to_owned()),
                            None => Group::Alone(element.string.start),
                        },
                        _ => Group::Alone(element.string.start),
                    }
                };
                groups.entry(group).or_default().push(place);
            }
        }
    }
    if !inline_run.is_empty() {
        findings.push(inline_finding(&inline_run));
    }
    for (group, places) in groups {
        findings.extend(element_findings(text, masked, &group, &places));
    }
    let reason = match language {
        Language::Python => {
            "nvcc flags of the build: PyTorch's extension builder drops TORCH_CUDA_ARCH_LIST when the flags name an arch"
        }
        Language::CMake => "nvcc flags of the build, used whatever CMAKE_CUDA_ARCHITECTURES says",
        _ => "nvcc flags fixed in the build file",
    };
    findings
        .into_iter()
        .map(|finding| finding.reason(true, reason))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    List(usize),
    Receiver(String),
    Command(usize),
    Alone(usize),
}

fn gencode_places(text: &str) -> Vec<Place> {
    let mut places = Vec::new();
    for at in occurrences(text, "arch=compute_") {
        if !word_starts(text, at) && !text[..at].ends_with(['=', ' ', '\t']) {
            continue;
        }
        let Some((targets, len)) = gencode_value(&text[at..]) else {
            continue;
        };
        let flag_start = GENCODE_FLAGS
            .iter()
            .find_map(|flag| {
                let before = &text[..at];
                let trimmed = before
                    .strip_suffix('=')
                    .unwrap_or_else(|| before.trim_end_matches([' ', '\t', '\\', '\n', '"', '\'']));
                trimmed
                    .strip_suffix(flag)
                    .filter(|rest| word_starts(text, rest.len()))
                    .map(str::len)
            })
            .filter(|&start| !text[start..at].contains(['"', '\'']))
            .unwrap_or(at);
        places.push(Place {
            flag_start,
            value: at..at + len,
            forced: Forced::Targets(targets),
            kind: Kind::NvccGencode,
            element: None,
        });
    }
    places
}

fn arch_places(text: &str) -> Vec<Place> {
    let mut places = Vec::new();
    for flag in ["--gpu-architecture", "-arch"] {
        for at in occurrences(text, flag) {
            if !word_starts(text, at) {
                continue;
            }
            let after = &text[at + flag.len()..];
            let Some(separator) = after.chars().next().filter(|c| matches!(c, '=' | ' ')) else {
                continue;
            };
            let value_start = at + flag.len() + separator.len_utf8();
            let rest = &text[value_start..];
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            let Some(forced) = arch_value(&rest[..len]) else {
                continue;
            };
            places.push(Place {
                flag_start: at,
                value: value_start..value_start + len,
                forced,
                kind: Kind::NvccArch,
                element: None,
            });
        }
    }
    places
}

/// The string literal a flag fills alone (`"-gencode=arch=…"`, `"arch=…"` after a
/// `"-gencode"` element), if it does.
fn element_of(masked: &Masked, place: &Place) -> Option<Element> {
    let string = masked.string_at(place.value.start)?;
    let content_text = masked.content(&string)?;
    let content_start = string.start + 1;
    let text = &masked.text;
    let flag_text = text.get(place.flag_start.max(content_start)..place.value.end)?;
    if content_text.trim() != flag_text.trim() || place.flag_start < content_start {
        return None;
    }
    let string_index = masked.strings.partition_point(|s| s.start < string.start);
    let after_flag_string = (place.flag_start == place.value.start)
        .then(|| string_index.checked_sub(1))
        .flatten()
        .map(|index| masked.strings[index].clone())
        .filter(|previous| {
            masked
                .content(previous)
                .is_some_and(|inner| GENCODE_FLAGS.contains(&inner))
                && text[previous.end..string.start]
                    .chars()
                    .all(|c| c == ',' || c.is_whitespace())
        });
    Some(Element {
        string,
        string_index,
        after_flag_string,
    })
}

/// Whether `next` continues the command-line words of `last`: only spaces, line
/// continuations and `-gencode` between them.
fn continues_run(text: &str, last: &Place, next: &Place) -> bool {
    let between = &text[last.value.end..next.flag_start];
    between
        .chars()
        .all(|c| c == ' ' || c == '\t' || c == '\\' || c == '\n')
        && between.matches('\n').count() <= between.matches('\\').count()
}

fn inline_finding(run: &[Place]) -> Finding {
    let first = &run[0];
    let last = &run[run.len() - 1];
    let kind = if run.iter().any(|place| place.kind == Kind::NvccGencode) {
        Kind::NvccGencode
    } else {
        Kind::NvccArch
    };
    Finding::new(
        kind,
        union(run),
        vec![Slot {
            range: first.flag_start..last.value.end,
            fill: Fill::NvccFlags,
        }],
    )
    .at(first.value.start, last.value.start)
}

fn union(places: &[Place]) -> Forced {
    if let Some(keyword) = places.iter().find_map(|place| match place.forced {
        Forced::Keyword(word) => Some(word),
        Forced::Targets(_) => None,
    }) {
        return Forced::Keyword(keyword);
    }
    let mut all = BTreeSet::<Target>::new();
    for place in places {
        if let Forced::Targets(targets) = &place.forced {
            all.extend(targets.iter().copied());
        }
    }
    Forced::Targets(all)
}

fn element_findings(text: &str, masked: &Masked, group: &Group, places: &[Place]) -> Vec<Finding> {
    let kind = if places.iter().any(|place| place.kind == Kind::NvccGencode) {
        Kind::NvccGencode
    } else {
        Kind::NvccArch
    };
    let slots: Vec<Slot> = match group {
        Group::Command(_) => places
            .iter()
            .enumerate()
            .map(|(index, place)| {
                let element = place.element.as_ref().expect("elements");
                let string = &element.string;
                // A `"-gencode"` argument before the value goes with it: the flags
                // written in their place each carry their own.
                let start = element
                    .after_flag_string
                    .as_ref()
                    .map_or(string.start, |flag| flag.start);
                Slot {
                    range: start..string.end,
                    fill: if index == 0 {
                        Fill::CmakeArguments {
                            separate: text[string.end..]
                                .chars()
                                .next()
                                .is_some_and(|c| !(c.is_whitespace() || c == ')')),
                        }
                    } else {
                        Fill::Nothing
                    },
                }
            })
            .collect(),
        Group::List(_) => list_slots(text, masked, places),
        Group::Alone(_) if !passed_as_value(&masked.text, places) => places
            .iter()
            .map(|place| Slot {
                range: value_range(place),
                fill: Fill::Manual {
                    reason: "the value is compared or computed with here, not passed as a flag",
                },
            })
            .collect(),
        Group::Receiver(_) | Group::Alone(_) => {
            let blocks: BTreeSet<Option<usize>> = places
                .iter()
                .map(|place| python_block(&masked.text, place.value.start))
                .collect();
            places
                .iter()
                .enumerate()
                .map(|(position, place)| Slot {
                    range: value_range(place),
                    fill: Fill::GencodeValue {
                        position,
                        same_block: blocks.len() == 1,
                        with_flag: place.kind == Kind::NvccArch,
                    },
                })
                .collect()
        }
    };
    vec![
        Finding::new(kind, union(places), slots)
            .at(places[0].value.start, places[places.len() - 1].value.start),
    ]
}

/// Whether a string (or its `"-gencode"` pair) is a whole element of its list:
/// `[`/`,` before it and `,`/`]` after it.
fn is_list_element(text: &str, element: &Element) -> bool {
    let start = element
        .after_flag_string
        .as_ref()
        .map_or(element.string.start, |flag| flag.start);
    let before = text[..start].trim_end();
    let after = text[element.string.end..].trim_start();
    (before.ends_with('[') || before.ends_with(','))
        && (after.starts_with(',') || after.starts_with(']'))
}

/// Whether each string is passed on as it is: an argument or the value assigned, not
/// an operand (`s != "arch=…"`).
fn passed_as_value(text: &str, places: &[Place]) -> bool {
    places.iter().all(|place| {
        let Some(element) = &place.element else {
            return false;
        };
        let before = text[..element.string.start].trim_end();
        let operator = ["==", "!=", "<=", ">="]
            .iter()
            .any(|op| before.ends_with(op));
        !operator && (before.ends_with('(') || before.ends_with(',') || before.ends_with('='))
    })
}

/// What a single-value slot replaces: the value, or for `-arch` the whole flag (it
/// becomes a `-gencode=` flag).
fn value_range(place: &Place) -> Range<usize> {
    match place.kind {
        Kind::NvccArch => place.flag_start..place.value.end,
        _ => place.value.clone(),
    }
}

/// Elements of one list literal: consecutive flag elements become one slot holding
/// every value.
fn list_slots(text: &str, masked: &Masked, places: &[Place]) -> Vec<Slot> {
    let mut slots: Vec<Slot> = Vec::new();
    for place in places {
        let element = place.element.as_ref().expect("elements");
        let start = element
            .after_flag_string
            .as_ref()
            .map_or(element.string.start, |flag| flag.start);
        let quote = text[element.string.start..].chars().next().unwrap_or('"');
        let pairs = element.after_flag_string.is_some();
        if let Some(last) = slots.last_mut() {
            let between = &masked.text[last.range.end..start];
            let same_form = last.fill == (Fill::GencodeElements { quote, pairs });
            if same_form && between.chars().all(|c| c == ',' || c.is_whitespace()) {
                last.range.end = element.string.end;
                continue;
            }
        }
        slots.push(Slot {
            range: start..element.string.end,
            fill: Fill::GencodeElements { quote, pairs },
        });
    }
    slots
}
