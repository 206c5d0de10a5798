//! The `[upkeep]` table of `cudapkgs.toml`: which packages, releases, systems and
//! capability sets to build, where they come from, where successes are pushed and
//! where results are kept.

use std::path::{Path, PathBuf};

use cudapkgs_builder::resolve::Spec;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Where packages come from, as `cudapkgs build --source` names it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Pypi,
    Nvidia,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Pypi => "pypi",
            Source::Nvidia => "nvidia",
        }
    }
}

/// The binary cache successes are pushed to (`cudapkgs push`'s options).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheTarget {
    /// `file:///FOLDER`, `http(s)://…`, `s3://…`.
    pub to: String,
    pub secret_key_file: Option<PathBuf>,
    /// A cache only the pusher reads: every package may go there.
    #[serde(default)]
    pub private: bool,
    /// Packages whose licence allows this cache.
    #[serde(default)]
    pub redistributable: Vec<String>,
}

/// The `[upkeep]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SetConfig {
    /// `NAME`, `NAME==VERSION` (any PEP 440 specifiers), `NAME=FILE`, or `"all"` (every
    /// package of each release; NVIDIA's manifests only).
    pub packages: Vec<String>,
    /// CUDA releases as `build --cuda` takes them (`13`, `12.9`, `12.9.1`).
    #[serde(default = "default_releases")]
    pub cuda: Vec<String>,
    #[serde(default)]
    pub source: Source,
    /// The simple index for `source = "pypi"`.
    pub index_url: Option<String>,
    /// NVIDIA's server or a mirror for `source = "nvidia"`.
    pub base_url: Option<String>,
    /// NVIDIA's system names (`linux-x86_64`, `linux-sbsa`); empty: this machine's.
    #[serde(default)]
    pub systems: Vec<String>,
    /// Capability sets (`"8.6,9.0"`), one job each; empty: one job without GPU targets.
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub cache: Option<CacheTarget>,
    /// The results database.
    pub results: Option<PathBuf>,
    /// The folder of the job logs.
    pub logs: Option<PathBuf>,
    /// A policy file for `cudapkgs check`.
    pub policy: Option<PathBuf>,
    /// The share by which a closure may grow over the previous result before it counts
    /// as a regression (`0.1`: 10%).
    #[serde(default = "default_growth")]
    pub closure_growth: f64,
    /// The labels of filed issues; the first also finds the open ones.
    #[serde(default = "default_labels")]
    pub labels: Vec<String>,
}

fn default_releases() -> Vec<String> {
    vec!["13".to_owned()]
}

/// The folder of job logs when none is named: `upkeep-logs` beside the database.
pub fn default_logs(results: &Path) -> PathBuf {
    results
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("upkeep-logs")
}

/// The closure growth allowed when the table sets none: 10%.
pub fn default_growth() -> f64 {
    0.1
}

/// The labels of issues when the table sets none.
pub fn default_labels() -> Vec<String> {
    vec!["upkeep".to_owned()]
}

impl SetConfig {
    /// Checks what can be checked without a network, and makes the files it names
    /// (local archives, the policy, the key, the database and logs) relative to
    /// `folder`, the configuration file's.
    pub fn validated(mut self, folder: &Path) -> Result<SetConfig, Error> {
        let bad = |problem: String| Err(Error::Config(problem));
        if self.packages.is_empty() {
            return bad("`packages` is empty: name at least one package, or \"all\"".to_owned());
        }
        if self.cuda.is_empty() {
            return bad("`cuda` is empty: name at least one release".to_owned());
        }
        if !(self.closure_growth.is_finite() && self.closure_growth >= 0.0) {
            return bad(format!(
                "`closure-growth` must be a share of 0 or more (0.1 for 10%), not {}",
                self.closure_growth
            ));
        }
        if self.labels.is_empty() || self.labels.iter().any(|l| l.trim().is_empty()) {
            return bad("`labels` needs at least one label, none of them empty".to_owned());
        }
        for set in &self.capabilities {
            cudapkgs_caps::parse_capability_list(set)
                .map_err(|error| Error::Config(format!("`capabilities` \"{set}\": {error}")))?;
        }
        for package in &mut self.packages {
            if package == "all" {
                if self.source != Source::Nvidia {
                    return bad(
                        "\"all\" needs source = \"nvidia\": an index has no list of a release's packages"
                            .to_owned(),
                    );
                }
                continue;
            }
            let spec: Spec = package
                .parse()
                .map_err(|error| Error::Config(format!("`packages`: {error}")))?;
            if let Some(file) = spec.file.filter(|file| file.is_relative()) {
                *package = format!("{}={}", spec.name, folder.join(file).display());
            }
        }
        let relative = |path: &mut Option<PathBuf>| {
            if let Some(path) = path.as_mut().filter(|path| path.is_relative()) {
                *path = folder.join(&*path);
            }
        };
        relative(&mut self.results);
        relative(&mut self.logs);
        relative(&mut self.policy);
        if let Some(cache) = &mut self.cache {
            relative(&mut cache.secret_key_file);
        }
        Ok(self)
    }

    /// The results database: the table's (relative to `folder`), else `upkeep.sqlite`
    /// in `folder`.
    pub fn results_path(&self, folder: &Path) -> PathBuf {
        folder.join(
            self.results
                .as_deref()
                .unwrap_or(Path::new("upkeep.sqlite")),
        )
    }

    /// The folder of job logs: the table's, else `upkeep-logs` beside the database.
    pub fn logs_path(&self, results: &Path) -> PathBuf {
        self.logs.clone().unwrap_or_else(|| default_logs(results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SetConfig, Error> {
        let table: SetConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        table.validated(Path::new("/etc/set"))
    }

    #[test]
    fn defaults_and_relative_files() {
        let set = parse("packages = [\"libcublas\", \"libfoo=foo.tar.xz\", \"x=/abs/x.whl\"]\n")
            .expect("valid");
        assert_eq!(set.cuda, ["13"]);
        assert_eq!(set.source, Source::Pypi);
        assert_eq!(set.labels, ["upkeep"]);
        assert!((set.closure_growth - 0.1).abs() < f64::EPSILON);
        assert_eq!(
            set.packages,
            ["libcublas", "libfoo=/etc/set/foo.tar.xz", "x=/abs/x.whl"]
        );
        assert_eq!(
            set.results_path(Path::new("/etc/set")),
            Path::new("/etc/set/upkeep.sqlite")
        );
        assert_eq!(
            set.logs_path(Path::new("/var/u/r.sqlite")),
            Path::new("/var/u/upkeep-logs")
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let problem = |text: &str| parse(text).expect_err(text).to_string();
        assert!(problem("packages = []").contains("`packages` is empty"));
        assert!(problem("packages = [\"all\"]").contains("needs source = \"nvidia\""));
        assert!(problem("packages = [\"a\"]\ncapabilities = [\"9.9z\"]").contains("9.9z"));
        assert!(problem("packages = [\"a\"]\nclosure-growth = -1.0").contains("closure-growth"));
        assert!(problem("packages = [\"../x=y\"]").contains("expected a package name first"));
        assert!(problem("packages = [\"a\"]\nlabels = []").contains("`labels`"));
        assert!(problem("packages = [\"a\"]\nsystem = \"x\"").contains("unknown field"));
        parse("packages = [\"all\"]\nsource = \"nvidia\"").expect("all with nvidia");
    }
}
