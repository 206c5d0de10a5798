//! Jobs: one package of the set built for one CUDA release, system and capability set.

use std::collections::BTreeSet;

use cudapkgs_builder::resolve::Spec;
use serde::{Deserialize, Serialize};

use crate::config::SetConfig;
use crate::error::Error;

/// One build of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Job {
    /// What `cudapkgs build` is given: `libcublas`, `libcublas==13.0.1`, `libfoo=FILE`.
    pub spec: String,
    /// The package's name.
    pub package: String,
    pub cuda: String,
    pub system: String,
    /// The requested capabilities, comma-separated as `flags` writes them; empty for none.
    pub capabilities: String,
}

impl Job {
    /// A job from its parts; the capability set is written in its canonical form (sorted,
    /// each once), so that `9.0,8.6` and `sm_86 sm_90` are one job.
    pub fn new(spec: &str, cuda: &str, system: &str, capabilities: &str) -> Result<Job, Error> {
        let parsed: Spec = spec
            .parse()
            .map_err(|error| Error::Config(format!("`packages`: {error}")))?;
        let mut capabilities = cudapkgs_caps::parse_capability_list(capabilities)
            .map_err(|error| Error::Config(format!("`capabilities`: {error}")))?;
        capabilities.sort_unstable();
        capabilities.dedup();
        let capabilities = capabilities
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(Job {
            spec: spec.to_owned(),
            package: parsed.name,
            cuda: cuda.to_owned(),
            system: system.to_owned(),
            capabilities,
        })
    }

    /// The package as the job names it: the spec, except that a local file is named by
    /// its package alone (the file may move; the job stays the same).
    pub fn subject(&self) -> &str {
        if self.is_local() {
            &self.package
        } else {
            &self.spec
        }
    }

    /// Whether the package is built from a file here.
    pub fn is_local(&self) -> bool {
        self.spec.len() > self.package.len()
            && self.spec[self.package.len()..].starts_with('=')
            && !self.spec[self.package.len()..].starts_with("==")
    }

    /// The job's stable identity: `libcublas/cuda-13/linux-x86_64/8.6,9.0` (`any` for
    /// no capability set). Results, issues and shards are keyed by it.
    pub fn id(&self) -> String {
        let capabilities = if self.capabilities.is_empty() {
            "any"
        } else {
            &self.capabilities
        };
        format!(
            "{}/cuda-{}/{}/{capabilities}",
            self.subject(),
            self.cuda,
            self.system
        )
    }

    /// The id as a file name: every character but letters, digits, `.`, `_` and `-`
    /// becomes `_`.
    pub fn file_name(&self) -> String {
        self.id()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// The packages of a release, for `"all"`.
pub trait Catalog {
    fn packages(&self, cuda: &str, system: &str) -> Result<Vec<String>, Error>;
}

/// A catalog for sets that do not ask for `"all"`.
#[derive(Debug)]
pub struct NoCatalog;

impl Catalog for NoCatalog {
    fn packages(&self, _: &str, _: &str) -> Result<Vec<String>, Error> {
        Err(Error::Catalog(
            "\"all\" needs the release's package list, which is not available here".to_owned(),
        ))
    }
}

/// Every job of the set, release by release, then system, capability set and package in
/// the table's order; `this_system` stands in when the table names no system.
pub fn plan(set: &SetConfig, this_system: &str, catalog: &dyn Catalog) -> Result<Vec<Job>, Error> {
    let systems = if set.systems.is_empty() {
        vec![this_system.to_owned()]
    } else {
        set.systems.clone()
    };
    let capability_sets = if set.capabilities.is_empty() {
        vec![String::new()]
    } else {
        set.capabilities.clone()
    };
    let mut jobs = Vec::new();
    let mut seen = BTreeSet::new();
    for cuda in &set.cuda {
        for system in &systems {
            let mut specs = Vec::new();
            for package in &set.packages {
                if package == "all" {
                    specs.extend(catalog.packages(cuda, system)?);
                } else {
                    specs.push(package.clone());
                }
            }
            for capabilities in &capability_sets {
                for spec in &specs {
                    let job = Job::new(spec, cuda, system, capabilities)?;
                    // A package both named and in "all" is one job.
                    if seen.insert(job.id()) {
                        jobs.push(job);
                    }
                }
            }
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    struct Listed;

    impl Catalog for Listed {
        fn packages(&self, cuda: &str, _: &str) -> Result<Vec<String>, Error> {
            Ok(vec![format!("cuda_cudart"), format!("libcublas_{cuda}")])
        }
    }

    fn set(text: &str) -> SetConfig {
        let table: SetConfig = toml::from_str(text).expect("table");
        table.validated(Path::new("/set")).expect("valid")
    }

    #[test]
    fn jobs_are_the_product_of_releases_systems_sets_and_packages() {
        let set = set(r#"
            packages = ["libcublas", "libfoo=foo.tar.xz", "cuda_nvrtc==13.0.48"]
            cuda = ["12.9", "13"]
            systems = ["linux-x86_64", "linux-sbsa"]
            capabilities = ["9.0, 8.6", "sm_120"]
        "#);
        let jobs = plan(&set, "unused", &NoCatalog).expect("plan");
        assert_eq!(jobs.len(), 3 * 2 * 2 * 2);
        let ids: Vec<String> = jobs.iter().take(4).map(Job::id).collect();
        assert_eq!(
            ids,
            [
                "libcublas/cuda-12.9/linux-x86_64/8.6,9.0",
                "libfoo/cuda-12.9/linux-x86_64/8.6,9.0",
                "cuda_nvrtc==13.0.48/cuda-12.9/linux-x86_64/8.6,9.0",
                "libcublas/cuda-12.9/linux-x86_64/12.0",
            ]
        );
        assert_eq!(jobs[1].spec, "libfoo=/set/foo.tar.xz");
        assert!(jobs[1].is_local() && !jobs[2].is_local() && !jobs[0].is_local());
        assert_eq!(
            jobs[2].file_name(),
            "cuda_nvrtc__13.0.48_cuda-12.9_linux-x86_64_8.6_9.0"
        );
        let unique: BTreeSet<String> = jobs.iter().map(Job::id).collect();
        assert_eq!(unique.len(), jobs.len());
    }

    #[test]
    fn all_expands_per_release_and_named_packages_are_one_job() {
        let set = set(r#"
            packages = ["all", "cuda_cudart"]
            source = "nvidia"
            cuda = ["12.9.1", "13.0.2"]
        "#);
        let ids: Vec<String> = plan(&set, "linux-x86_64", &Listed)
            .expect("plan")
            .iter()
            .map(Job::id)
            .collect();
        assert_eq!(
            ids,
            [
                "cuda_cudart/cuda-12.9.1/linux-x86_64/any",
                "libcublas_12.9.1/cuda-12.9.1/linux-x86_64/any",
                "cuda_cudart/cuda-13.0.2/linux-x86_64/any",
                "libcublas_13.0.2/cuda-13.0.2/linux-x86_64/any",
            ]
        );
        assert!(plan(&set, "linux-x86_64", &NoCatalog).is_err());
    }
}
