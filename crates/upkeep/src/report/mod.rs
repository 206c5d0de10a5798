//! The state of the set from the results database: per release and package, the newest
//! outcome, the failing step, the last success and the closure sizes over time.

pub mod html;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::Error;
use crate::regress::{Change, changes};
use crate::results::{JobResult, Outcome, Results};

/// Closure sizes kept per cell for its trend.
const TREND: usize = 20;

/// One job's place on the dashboard.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Cell {
    pub job: String,
    pub outcome: Outcome,
    pub step: Option<String>,
    /// The failure's headline: its missing libraries or its first line.
    pub problem: Option<String>,
    /// When the newest result ended (ms since 1970).
    pub time: i64,
    pub last_success: Option<i64>,
    /// Closure sizes of the successes, oldest first (the last few).
    pub sizes: Vec<u64>,
    pub changes: Vec<Change>,
    pub log: String,
}

/// A package (with its system and capability set) across releases.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Row {
    pub package: String,
    pub system: String,
    pub capabilities: String,
    /// Release → cell.
    pub cells: BTreeMap<String, Cell>,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Dashboard {
    pub releases: Vec<String>,
    pub rows: Vec<Row>,
    pub passed: usize,
    pub failed: usize,
    pub regressions: usize,
}

/// The dashboard of `results`: the newest result of each job, with its history.
pub fn dashboard(results: &Results, allowed_growth: f64) -> Result<Dashboard, Error> {
    let mut releases = BTreeSet::new();
    let mut rows: BTreeMap<(String, String, String), Row> = BTreeMap::new();
    let (mut passed, mut failed, mut regressions) = (0, 0, 0);
    for latest in results.latest()? {
        let history = results.history(&latest.job.id())?;
        let previous = results.previous(&latest)?;
        let found = changes(previous.as_ref(), &latest, allowed_growth);
        regressions += found.iter().filter(|c| c.is_regression()).count();
        match latest.outcome {
            Outcome::Passed => passed += 1,
            Outcome::Failed => failed += 1,
        }
        let successes: Vec<&JobResult> = history
            .iter()
            .filter(|r| r.outcome == Outcome::Passed)
            .collect();
        let mut sizes: Vec<u64> = successes.iter().filter_map(|r| r.closure_size).collect();
        sizes.drain(..sizes.len().saturating_sub(TREND));
        let job = &latest.job;
        releases.insert(job.cuda.clone());
        let key = (
            job.subject().to_owned(),
            job.system.clone(),
            job.capabilities.clone(),
        );
        let row = rows.entry(key).or_insert_with(|| Row {
            package: job.subject().to_owned(),
            system: job.system.clone(),
            capabilities: job.capabilities.clone(),
            cells: BTreeMap::new(),
        });
        row.cells.insert(
            job.cuda.clone(),
            Cell {
                job: job.id(),
                outcome: latest.outcome,
                step: latest.failure.as_ref().map(|f| f.step.clone()),
                problem: latest.failure.as_ref().map(|f| {
                    if f.missing.is_empty() {
                        f.message.lines().next().unwrap_or("").to_owned()
                    } else {
                        format!("needs {}", f.missing.join(", "))
                    }
                }),
                time: latest.time,
                last_success: successes.last().map(|r| r.time),
                sizes,
                changes: found,
                log: latest.log.display().to_string(),
            },
        );
    }
    Ok(Dashboard {
        releases: releases.into_iter().collect(),
        rows: rows.into_values().collect(),
        passed,
        failed,
        regressions,
    })
}

/// `2025-06-01 12:34 UTC` for milliseconds since 1970.
pub fn utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_767_225_599_000), "2025-12-31 23:59 UTC");
    }
}
