//! What changed since a job's previous result: newly failing, fixed, a closure grown by
//! more than the set allows, requested capabilities no longer carried.

use serde::Serialize;

use crate::results::{JobResult, Outcome};

/// One change of a job's result.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// It passed last time and fails now.
    NewlyFailing { step: String },
    /// It failed last time and passes now.
    Fixed,
    /// The runtime closure grew by more than the allowed share.
    ClosureGrown { before: u64, after: u64 },
    /// Requested capabilities the outputs carried (SASS or PTX) and carry no longer.
    CapabilitiesMissing { capabilities: Vec<String> },
}

impl Change {
    /// Whether it is for the worse.
    pub fn is_regression(&self) -> bool {
        !matches!(self, Change::Fixed)
    }

    /// The change for people.
    pub fn describe(&self) -> String {
        match self {
            Change::NewlyFailing { step } => {
                format!("regression: passed before, fails at {step} now")
            }
            Change::Fixed => "fixed: failed before, passes now".to_owned(),
            Change::ClosureGrown { before, after } => format!(
                "regression: the runtime closure grew from {before} to {after} bytes (+{:.1}%)",
                growth(*before, *after) * 100.0
            ),
            Change::CapabilitiesMissing { capabilities } => format!(
                "regression: no device code for requested capabilities {} any more",
                capabilities.join(", ")
            ),
        }
    }
}

fn growth(before: u64, after: u64) -> f64 {
    #[allow(
        clippy::cast_precision_loss,
        reason = "a share for people and a threshold"
    )]
    let (before, after) = (before as f64, after as f64);
    if before == 0.0 {
        return if after > 0.0 { f64::INFINITY } else { 0.0 };
    }
    after / before - 1.0
}

/// The requested capabilities whose SASS or PTX the result's outputs carry.
fn carried(result: &JobResult) -> Vec<String> {
    cudapkgs_caps::parse_capability_list(&result.job.capabilities)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            result.architectures.contains(&c.sm_name())
                || result.architectures.contains(&c.compute_name())
        })
        .map(|c| c.to_string())
        .collect()
}

/// The changes from `previous` (the job's result before) to `current`; none for a
/// first result. `allowed_growth` is a share (0.1: 10%).
pub fn changes(
    previous: Option<&JobResult>,
    current: &JobResult,
    allowed_growth: f64,
) -> Vec<Change> {
    let Some(previous) = previous else {
        return Vec::new();
    };
    match (previous.outcome, current.outcome) {
        (Outcome::Passed, Outcome::Failed) => {
            let step = current
                .failure
                .as_ref()
                .map_or_else(|| "an unknown step".to_owned(), |f| f.step.clone());
            vec![Change::NewlyFailing { step }]
        }
        (Outcome::Failed, Outcome::Passed) => vec![Change::Fixed],
        (Outcome::Failed, Outcome::Failed) => Vec::new(),
        (Outcome::Passed, Outcome::Passed) => {
            let mut found = Vec::new();
            if let (Some(before), Some(after)) = (previous.closure_size, current.closure_size) {
                #[allow(clippy::cast_precision_loss, reason = "a threshold on bytes")]
                let beyond =
                    after > before && (after - before) as f64 > before as f64 * allowed_growth;
                if beyond {
                    found.push(Change::ClosureGrown { before, after });
                }
            }
            let now = carried(current);
            let lost: Vec<String> = carried(previous)
                .into_iter()
                .filter(|c| !now.contains(c))
                .collect();
            if !lost.is_empty() {
                found.push(Change::CapabilitiesMissing { capabilities: lost });
            }
            found
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::job::Job;
    use crate::results::Failure;

    fn result(outcome: Outcome, size: Option<u64>, architectures: &[&str]) -> JobResult {
        JobResult {
            job: Job::new("libfoo", "13", "linux-x86_64", "8.6,9.0").expect("job"),
            run: String::new(),
            inputs: String::new(),
            outcome,
            failure: (outcome == Outcome::Failed).then(|| Failure {
                step: "check".to_owned(),
                message: "header".to_owned(),
                missing: Vec::new(),
                signature: "s".to_owned(),
                log_tail: String::new(),
            }),
            log: "log".into(),
            duration_ms: 1,
            closure_size: size,
            store_paths: BTreeMap::new(),
            versions: BTreeMap::new(),
            architectures: architectures.iter().map(|&a| a.to_owned()).collect(),
            reused: false,
            time: 0,
        }
    }

    #[test]
    fn the_rules() {
        let passed = result(
            Outcome::Passed,
            Some(1000),
            &["sm_86", "sm_90", "compute_90"],
        );
        let failed = result(Outcome::Failed, None, &[]);
        assert_eq!(changes(None, &failed, 0.1), []);
        assert_eq!(
            changes(Some(&passed), &failed, 0.1),
            [Change::NewlyFailing {
                step: "check".to_owned()
            }]
        );
        assert_eq!(changes(Some(&failed), &passed, 0.1), [Change::Fixed]);
        assert_eq!(changes(Some(&failed), &failed, 0.1), []);
        assert_eq!(changes(Some(&passed), &passed, 0.1), []);
        // Within the allowed share, then beyond it.
        let grown = result(Outcome::Passed, Some(1100), &["sm_86", "sm_90"]);
        assert_eq!(changes(Some(&passed), &grown, 0.1), []);
        let grown = result(Outcome::Passed, Some(1101), &["sm_86", "compute_90"]);
        assert_eq!(
            changes(Some(&passed), &grown, 0.1),
            [Change::ClosureGrown {
                before: 1000,
                after: 1101
            }]
        );
        // PTX alone still carries 9.0; losing sm_86 loses 8.6.
        let lost = result(Outcome::Passed, Some(900), &["compute_90"]);
        assert_eq!(
            changes(Some(&passed), &lost, 0.1),
            [Change::CapabilitiesMissing {
                capabilities: vec!["8.6".to_owned()]
            }]
        );
        // Capabilities never carried are not lost.
        let never = result(Outcome::Passed, Some(1000), &[]);
        assert_eq!(changes(Some(&never), &never, 0.1), []);
        assert!(
            Change::ClosureGrown {
                before: 1000,
                after: 1101
            }
            .describe()
            .contains("+10.1%")
        );
        assert!(!Change::Fixed.is_regression());
    }
}
