//! Meson: `cuda.nvcc_arch_flags(nvcc, '8.6', '9.0+PTX')` with a literal list.

use std::collections::BTreeSet;

use crate::finding::{Fill, Finding, Kind, Slot};
use crate::lang::Masked;
use crate::syntax::occurrences;
use crate::target::{Forced, torch_item};

pub(crate) fn detect(masked: &Masked) -> Vec<Finding> {
    let text = masked.text.as_str();
    let mut findings = Vec::new();
    for at in occurrences(text, "nvcc_arch_flags(") {
        let open = at + "nvcc_arch_flags".len();
        let Some(close) = crate::syntax::close_paren(text.as_bytes(), open) else {
            continue;
        };
        // The architectures follow the first argument (the compiler or its version);
        // keyword arguments (`detected:`) are not architectures.
        let strings: Vec<_> = masked
            .strings
            .iter()
            .filter(|s| s.start > open && s.end <= close)
            .filter(|s| {
                let before = &text[open + 1..s.start];
                before.contains(',') && !before.contains(':')
            })
            .collect();
        let (Some(first), Some(last)) = (strings.first(), strings.last()) else {
            continue;
        };
        let mut targets = BTreeSet::new();
        let parsed = strings.iter().all(|s| {
            masked
                .content(s)
                .and_then(|item| torch_item(item, &mut targets))
                .is_some()
        });
        if !parsed || targets.is_empty() {
            continue;
        }
        let quote = text[first.start..].chars().next().unwrap_or('\'');
        findings.push(
            Finding::new(
                Kind::MesonArchFlags,
                Forced::Targets(targets),
                vec![Slot {
                    range: first.start..last.end,
                    fill: Fill::MesonArguments { quote },
                }],
            )
            .at(at, at)
            .reason(true, "a literal list given to nvcc_arch_flags()"),
        );
    }
    findings
}
