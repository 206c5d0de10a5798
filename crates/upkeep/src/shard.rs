//! Shards: the jobs of a plan dealt out to N runners, each job to exactly one.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Shard `index` of `count` (both from 1), written `I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole plan.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// This shard's jobs: every `count`-th job of the plan, starting at the `index`-th.
    /// Dealing round the plan, rather than cutting it in runs, keeps shards within one
    /// job of each other and spreads each release's jobs over all of them.
    pub fn select<T: Clone>(self, jobs: &[T]) -> Vec<T> {
        jobs.iter()
            .skip(self.index - 1)
            .step_by(self.count)
            .cloned()
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(text: &str) -> Result<Shard, Error> {
        let bad = || {
            Error::Shard(format!(
                "shard `{text}`: expected I/N with 1 <= I <= N, like 1/4"
            ))
        };
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = index.trim().parse().map_err(|_| bad())?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_goes_to_exactly_one_shard_and_shards_stay_even() {
        for jobs in [0_usize, 1, 7, 256, 1001] {
            let plan: Vec<usize> = (0..jobs).collect();
            for count in [1_usize, 2, 3, 16, 300] {
                let shards: Vec<Vec<usize>> = (1..=count)
                    .map(|index| Shard { index, count }.select(&plan))
                    .collect();
                let mut all: Vec<usize> = shards.iter().flatten().copied().collect();
                all.sort_unstable();
                assert_eq!(all, plan, "{jobs} jobs in {count} shards");
                let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
                let (min, max) = (sizes.iter().min(), sizes.iter().max());
                assert!(
                    max.zip(min).is_none_or(|(max, min)| max - min <= 1),
                    "{sizes:?}"
                );
            }
        }
        assert_eq!(Shard::ALL.select(&[1, 2, 3]), [1, 2, 3]);
        assert_eq!(
            Shard { index: 2, count: 3 }.select(&[1, 2, 3, 4, 5]),
            [2, 5]
        );
    }

    #[test]
    fn shards_are_written_i_of_n() {
        assert_eq!(
            "2/5".parse::<Shard>().expect("valid"),
            Shard { index: 2, count: 5 }
        );
        assert_eq!(Shard { index: 2, count: 5 }.to_string(), "2/5");
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""] {
            let error = bad.parse::<Shard>().expect_err(bad).to_string();
            assert!(error.contains("expected I/N"), "{error}");
        }
    }
}
