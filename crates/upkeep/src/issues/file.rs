//! Filing: the newest result of every job against the tracker's open issues. A failure
//! without an open issue of its signature opens one; with one, the issue gets a comment
//! once per run; an open issue of a job that passes now, or fails otherwise, is closed.
//! What was done for a run is kept in the results database, so filing twice repeats
//! nothing.

use serde::Serialize;

use super::text::{self, LogLinks};
use super::{OpenIssue, Tracker};
use crate::error::Error;
use crate::regress::{Change, changes};
use crate::results::Results;

/// How issues are filed.
#[derive(Debug, Clone)]
pub struct Filing {
    pub labels: Vec<String>,
    /// Added to the labels of a job that passed before.
    pub regression_label: String,
    pub logs: LogLinks,
    pub allowed_growth: f64,
}

/// One thing done to an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Action {
    pub job: String,
    pub reference: String,
    pub signature: String,
}

/// What filing did.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Filed {
    pub opened: Vec<Action>,
    pub commented: Vec<Action>,
    pub closed: Vec<Action>,
}

/// Files the newest results of `results` with `tracker`.
pub fn file(
    results: &mut Results,
    tracker: &mut dyn Tracker,
    filing: &Filing,
) -> Result<Filed, Error> {
    let mut open = tracker.open_issues()?;
    let mut filed = Filed::default();
    for result in results.latest()? {
        let id = result.job.id();
        let Some(failure) = &result.failure else {
            for issue in take(&mut open, |i| i.job == id) {
                tracker.close(&issue.reference, &text::fixed(&result))?;
                filed.closed.push(action(&issue));
            }
            continue;
        };
        let signature = &failure.signature;
        let reference = if let Some(issue) = open.iter().find(|i| &i.signature == signature) {
            if results
                .acted(signature, &result.run, "commented")?
                .is_none()
                && results.acted(signature, &result.run, "opened")?.is_none()
            {
                tracker.comment(&issue.reference, &text::recurred(&result, &filing.logs))?;
                results.mark_acted(signature, &result.run, "commented", &issue.reference)?;
                filed.commented.push(action(issue));
            }
            issue.reference.clone()
        } else if let Some(reference) = results.acted(signature, &result.run, "opened")? {
            // Filed for this run already and closed since by someone: left as they left it.
            reference
        } else {
            let previous = results.previous(&result)?;
            let found = changes(previous.as_ref(), &result, filing.allowed_growth);
            let mut labels = filing.labels.clone();
            if found
                .iter()
                .any(|c| matches!(c, Change::NewlyFailing { .. }))
            {
                labels.push(filing.regression_label.clone());
            }
            let reference = tracker.open(
                &text::title(&result, failure),
                &text::body(&result, failure, &found, &filing.logs),
                &labels,
            )?;
            results.mark_acted(signature, &result.run, "opened", &reference)?;
            filed.opened.push(Action {
                job: id.clone(),
                reference: reference.clone(),
                signature: signature.clone(),
            });
            reference
        };
        for issue in take(&mut open, |i| i.job == id && &i.signature != signature) {
            tracker.close(&issue.reference, &text::superseded(&result, &reference))?;
            filed.closed.push(action(&issue));
        }
    }
    Ok(filed)
}

fn action(issue: &OpenIssue) -> Action {
    Action {
        job: issue.job.clone(),
        reference: issue.reference.clone(),
        signature: issue.signature.clone(),
    }
}

/// Removes and returns the issues that `matches`.
fn take(open: &mut Vec<OpenIssue>, matches: impl Fn(&OpenIssue) -> bool) -> Vec<OpenIssue> {
    let (taken, kept) = std::mem::take(open).into_iter().partition(|i| matches(i));
    *open = kept;
    taken
}
