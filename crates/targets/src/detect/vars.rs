//! The user's own variables given a value by the build, in any language:
//! `export TORCH_CUDA_ARCH_LIST="7.0;8.0"`, `-DCMAKE_CUDA_ARCHITECTURES=80;90`,
//! `--repo_env=HERMETIC_CUDA_COMPUTE_CAPABILITIES=sm_80,compute_90`.

use crate::finding::{Fill, Finding, Kind, Slot};
use crate::syntax::{occurrences, word_starts};
use crate::target::{ItemParser, cmake_item, parse_list, tensorflow_item, torch_item};

struct Variable {
    name: &'static str,
    kind: Kind,
    separators: &'static [char],
    parse_item: ItemParser,
    fill: Fill,
}

const VARIABLES: &[Variable] = &[
    Variable {
        name: "TORCH_CUDA_ARCH_LIST",
        kind: Kind::TorchArchList,
        separators: &[';', ' '],
        parse_item: torch_item,
        fill: Fill::TorchArchList,
    },
    Variable {
        name: "CMAKE_CUDA_ARCHITECTURES",
        kind: Kind::CmakeArchitectures,
        separators: &[';'],
        parse_item: cmake_item,
        fill: Fill::CmakeArchitectures { quoted: false },
    },
    Variable {
        name: "CUDAARCHS",
        kind: Kind::CmakeArchitectures,
        separators: &[';'],
        parse_item: cmake_item,
        fill: Fill::CmakeArchitectures { quoted: false },
    },
    Variable {
        name: "TF_CUDA_COMPUTE_CAPABILITIES",
        kind: Kind::TensorflowCapabilities,
        separators: &[','],
        parse_item: tensorflow_item,
        fill: Fill::TensorflowList,
    },
    // XLA's and JAX's spelling of the same list.
    Variable {
        name: "HERMETIC_CUDA_COMPUTE_CAPABILITIES",
        kind: Kind::TensorflowCapabilities,
        separators: &[','],
        parse_item: tensorflow_item,
        fill: Fill::TensorflowList,
    },
    Variable {
        name: "cuda_compute_capabilities",
        kind: Kind::TensorflowCapabilities,
        separators: &[','],
        parse_item: tensorflow_item,
        fill: Fill::TensorflowList,
    },
];

pub(crate) fn detect(text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for variable in VARIABLES {
        for at in occurrences(text, variable.name) {
            // `-DCMAKE_CUDA_ARCHITECTURES=…` on a cmake command line.
            if !word_starts(text, at) && !text[..at].ends_with("-D") {
                continue;
            }
            findings.extend(assignment(text, at, variable));
        }
    }
    findings
}

fn assignment(text: &str, at: usize, variable: &Variable) -> Option<Finding> {
    let after_name = at + variable.name.len();
    let rest = &text[after_name..];
    let in_expansion = text[..at].ends_with("${");
    let operators: &[(&str, bool)] = if in_expansion {
        // ${X:-default}, ${X:=default}, ${X-default}
        &[(":-", false), (":=", false), ("-", false), ("=", false)]
    } else {
        &[("?=", false), (":=", true), ("+=", true), ("=", true)]
    };
    let spaced = rest.trim_start_matches([' ', '\t']);
    let (operator, assigns) = operators
        .iter()
        .copied()
        .find(|(operator, _)| spaced.starts_with(operator))?;
    let spaced = &spaced[operator.len()..];
    if spaced.starts_with('=') {
        return None;
    }
    let value_text = spaced.trim_start_matches([' ', '\t']);
    let value_start = text.len() - value_text.len();
    let (start, end) = if let Some(quote @ ('"' | '\'')) = value_text.chars().next() {
        let close = value_text[1..].find(quote)?;
        (value_start + 1, value_start + 1 + close)
    } else {
        {
            let stops: &[char] = if variable.separators.contains(&',') {
                &[' ', '\t', '\n', '"', '\'', ')', ']', '}', '\\']
            } else {
                &[' ', '\t', '\n', '"', '\'', ')', ']', '}', ',', '\\']
            };
            let len = value_text.find(stops).unwrap_or(value_text.len());
            (value_start, value_start + len)
        }
    };
    let forced = parse_list(&text[start..end], variable.separators, variable.parse_item)?;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let build_argument = text[line_start..at].trim_start().starts_with("ARG ");
    let (overrides, reason) = if !assigns || build_argument {
        (
            false,
            format!("a default: the user's {} replaces it", variable.name),
        )
    } else {
        (
            true,
            format!(
                "{} given a value by the build: the user's is replaced",
                variable.name
            ),
        )
    };
    Some(
        Finding::new(
            variable.kind,
            forced,
            vec![Slot {
                range: start..end,
                fill: variable.fill.clone(),
            }],
        )
        .at(at, at)
        .reason(overrides, reason),
    )
}
