//! Job matrices for CI engines: one entry per shard, each running `upkeep run --shard`
//! into a database of its own, which a last step merges.

use serde_json::{Value, json};

use crate::error::Error;
use crate::shard::Shard;

/// GitHub Actions refuses a matrix of more than 256 jobs.
pub const GITHUB_MAX_JOBS: usize = 256;

/// The shards of a plan of `jobs` jobs asked to spread over `wanted` runners: never more
/// shards than jobs (an empty shard would start a runner for nothing), at least one.
pub fn shards(jobs: usize, wanted: usize) -> Result<Vec<Shard>, Error> {
    if wanted == 0 {
        return Err(Error::NoShards);
    }
    let count = wanted.min(jobs).max(1);
    Ok((1..=count).map(|index| Shard { index, count }).collect())
}

/// The results database a shard writes, which the merge step collects.
pub fn shard_results(shard: Shard) -> String {
    format!("upkeep-shard-{}-of-{}.sqlite", shard.index, shard.count)
}

/// `{"include": [{"shard": "1/2", "results": …}, …]}`, for
/// `strategy.matrix: ${{ fromJSON(…) }}`.
pub fn github(shards: &[Shard]) -> Result<Value, Error> {
    if shards.len() > GITHUB_MAX_JOBS {
        return Err(Error::Shard(format!(
            "GitHub Actions allows at most {GITHUB_MAX_JOBS} jobs in a matrix, and {} shards were asked for",
            shards.len()
        )));
    }
    let include: Vec<Value> = shards
        .iter()
        .map(|shard| json!({"shard": shard.to_string(), "results": shard_results(*shard)}))
        .collect();
    Ok(json!({ "include": include }))
}

/// A Buildkite pipeline (`buildkite-agent pipeline upload` reads JSON): a step per
/// shard keeping its database and logs as artifacts, a wait, and one step that merges
/// the databases and files the issues once. `program` begins every command (the
/// executable, with `--config FILE` where the set is not in `./cudapkgs.toml`).
pub fn buildkite(shards: &[Shard], program: &str) -> Value {
    let mut steps: Vec<Value> = shards
        .iter()
        .map(|shard| {
            let results = shard_results(*shard);
            json!({
                "label": format!("upkeep {shard}"),
                "key": format!("upkeep-shard-{}", shard.index),
                "command": format!("{program} upkeep run --shard {shard} --results {results}"),
                "artifact_paths": [results, "upkeep-logs/**/*"],
                "soft_fail": [{"exit_status": 1}],
            })
        })
        .collect();
    steps.push(json!({"wait": null, "continue_on_failure": true}));
    steps.push(json!({
        "label": "upkeep: merge and file issues",
        "key": "upkeep-merge",
        "command": format!(
            "buildkite-agent artifact download 'upkeep-shard-*.sqlite' . && {program} upkeep merge --into upkeep.sqlite upkeep-shard-*.sqlite && {program} upkeep issues --results upkeep.sqlite --github-repo \"$$UPKEEP_REPOSITORY\" && {program} upkeep report --results upkeep.sqlite --html upkeep.html"
        ),
        "artifact_paths": ["upkeep.sqlite", "upkeep.html"],
    }));
    json!({ "steps": steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_shards_than_jobs_and_github_caps_the_matrix() {
        assert_eq!(shards(3, 8).expect("valid").len(), 3);
        assert_eq!(shards(0, 8).expect("valid"), [Shard::ALL]);
        assert!(shards(5, 0).is_err());
        let many = shards(1000, 300).expect("valid");
        let error = github(&many).expect_err("too many").to_string();
        assert!(error.contains("at most 256"), "{error}");
        let matrix = github(&shards(10, 2).expect("valid")).expect("valid");
        assert_eq!(
            matrix,
            json!({"include": [
                {"shard": "1/2", "results": "upkeep-shard-1-of-2.sqlite"},
                {"shard": "2/2", "results": "upkeep-shard-2-of-2.sqlite"},
            ]})
        );
    }

    #[test]
    fn buildkite_runs_each_shard_then_merges_once() {
        let pipeline = buildkite(&shards(10, 2).expect("valid"), "cudapkgs");
        let steps = pipeline["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 4);
        assert_eq!(
            steps[1]["command"],
            "cudapkgs upkeep run --shard 2/2 --results upkeep-shard-2-of-2.sqlite"
        );
        assert!(steps[2]["wait"].is_null() && steps[2].get("wait").is_some());
        let merge = steps[3]["command"].as_str().expect("command");
        assert_eq!(merge.matches("upkeep issues").count(), 1, "{merge}");
    }
}
