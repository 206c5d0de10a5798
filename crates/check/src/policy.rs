//! What a runtime closure may hold: the rules, which of them apply, the denied names,
//! the GPUs its device code is for and where the driver is.

use std::path::{Path, PathBuf};

use cudapkgs_caps::Capability;
use serde::Deserialize;

use crate::Error;

/// One thing a runtime closure should not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A package the policy names (`--deny magma`).
    Denied,
    /// A whole CUDA toolkit (a path that holds `nvcc`): the monolith that pulls every
    /// library and the compiler into a runtime closure.
    Toolkit,
    /// A static library (`.a`): needed only to link.
    StaticLibrary,
    /// A header under `include/`: needed only to compile.
    Header,
    /// A link-time stand-in in a `stubs` folder: loading it at run time breaks programs
    /// (a stub `libcuda.so` fails every call).
    StubLibrary,
    /// A runpath entry naming a `stubs` folder.
    StubRunpath,
    /// A needed library found nowhere the loader looks (driver libraries aside).
    Unresolved,
    /// A file that uses the NVIDIA driver (needs or loads `libcuda.so.1`) and cannot find
    /// the driver's folder.
    Driver,
    /// A file with device code where no kernel has an image a requested GPU would load.
    MissingTarget,
    /// Device code (SASS or PTX) for a GPU not requested that no requested GPU loads.
    UnrequestedTarget,
}

impl Rule {
    pub const ALL: [Rule; 10] = [
        Rule::Denied,
        Rule::Toolkit,
        Rule::StaticLibrary,
        Rule::Header,
        Rule::StubLibrary,
        Rule::StubRunpath,
        Rule::Unresolved,
        Rule::Driver,
        Rule::MissingTarget,
        Rule::UnrequestedTarget,
    ];

    /// The rule's name in policies, flags and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Denied => "denied",
            Rule::Toolkit => "toolkit",
            Rule::StaticLibrary => "static-library",
            Rule::Header => "header",
            Rule::StubLibrary => "stub-library",
            Rule::StubRunpath => "stub-runpath",
            Rule::Unresolved => "unresolved",
            Rule::Driver => "driver",
            Rule::MissingTarget => "missing-target",
            Rule::UnrequestedTarget => "unrequested-target",
        }
    }

    /// What a violation of the rule is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Denied => "a denied package",
            Rule::Toolkit => "a whole CUDA toolkit (it holds nvcc)",
            Rule::StaticLibrary => "a static library",
            Rule::Header => "a header",
            Rule::StubLibrary => "a stub library",
            Rule::StubRunpath => "a runpath that names a stubs folder",
            Rule::Unresolved => "a needed library found nowhere",
            Rule::Driver => "a driver user that cannot find the driver folder",
            Rule::MissingTarget => "no image for a requested GPU",
            Rule::UnrequestedTarget => "device code for a GPU not requested",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }
}

/// The rules that apply and what they compare with (by default: every rule, no name
/// denied, device code not judged, NixOS's driver folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Package names (`magma` denies `magma`, `magma-2.9` and `magma-lib`).
    pub deny: Vec<String>,
    /// Rules switched off.
    pub allow: Vec<Rule>,
    /// The GPUs device code must be for, exactly; none: device code is not judged.
    pub capabilities: Vec<Capability>,
    /// The folder files that use the driver must find it in (an absolute path).
    pub driver_dir: PathBuf,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            deny: Vec::new(),
            allow: Vec::new(),
            capabilities: Vec::new(),
            driver_dir: PathBuf::from(cudapkgs_elf::auto::DEFAULT_DRIVER_DIR),
        }
    }
}

/// A policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyFile {
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    capabilities: Vec<String>,
    driver_dir: Option<PathBuf>,
}

impl Policy {
    /// Reads a policy file: `deny = ["magma"]`, `allow = ["header"]`, `capabilities =
    /// ["8.6", "9.0"]`, `driver-dir = "/usr/lib/x86_64-linux-gnu"`.
    pub fn parse(text: &str, origin: &Path) -> Result<Policy, Error> {
        let bad = |problem: String| Error::Policy {
            path: origin.to_owned(),
            problem,
        };
        let file: PolicyFile = toml::from_str(text).map_err(|source| Error::PolicySyntax {
            path: origin.to_owned(),
            source,
        })?;
        let mut policy = Policy::default();
        for name in file.deny {
            policy.deny_name(&name).map_err(|e| bad(e.to_string()))?;
        }
        for name in &file.allow {
            policy.allow_rule(name).map_err(|e| bad(e.to_string()))?;
        }
        for text in &file.capabilities {
            let capability = text
                .parse::<Capability>()
                .map_err(|e| bad(format!("capabilities: {e}")))?;
            policy.capabilities.push(capability);
        }
        // A capability no GPU has would find every file missing its image.
        cudapkgs_caps::check_known(&policy.capabilities)
            .map_err(|e| bad(format!("capabilities: {e}")))?;
        if let Some(dir) = file.driver_dir {
            if let Some(problem) = cudapkgs_elf::auto::driver_dir_problem(&dir) {
                return Err(bad(format!("driver-dir `{}` {problem}", dir.display())));
            }
            policy.driver_dir = dir;
        }
        Ok(policy)
    }

    /// Denies the package `name`.
    pub fn deny_name(&mut self, name: &str) -> Result<(), Error> {
        if name.is_empty() || name.contains('/') {
            return Err(Error::BadName(name.to_owned()));
        }
        self.deny.push(name.to_owned());
        Ok(())
    }

    /// Switches the rule `name` off.
    pub fn allow_rule(&mut self, name: &str) -> Result<(), Error> {
        let rule = Rule::from_name(name).ok_or_else(|| Error::UnknownRule(name.to_owned()))?;
        self.allow.push(rule);
        Ok(())
    }

    pub fn applies(&self, rule: Rule) -> bool {
        !self.allow.contains(&rule)
    }

    /// The denied name that `package` (a store path's name without its version) is.
    pub fn denies(&self, package: &str) -> Option<&str> {
        self.deny.iter().map(String::as_str).find(|denied| {
            package == *denied
                || package
                    .strip_prefix(denied)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
    }

    /// The denied name that the Python distribution `distribution` is, both spelt as
    /// PEP 503 compares them (lower case, runs of `-_.` as one `-`).
    pub fn denies_distribution(&self, distribution: &str) -> Option<&str> {
        let wanted = cudapkgs_redist::pypi::normalize(distribution);
        self.deny
            .iter()
            .map(String::as_str)
            .find(|denied| cudapkgs_redist::pypi::normalize(denied) == wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_name_rules_and_packages() {
        let policy = Policy::parse(
            "deny = [\"magma\"]\nallow = [\"header\"]\n",
            Path::new("p.toml"),
        )
        .expect("parses");
        assert_eq!(policy.denies("magma"), Some("magma"));
        assert_eq!(policy.denies("magma-lib"), Some("magma"));
        assert_eq!(policy.denies("magmatic"), None);
        let wheels = Policy::parse("deny = [\"NVIDIA_Cuda.Runtime\"]\n", Path::new("p.toml"))
            .expect("parses");
        assert!(wheels.denies_distribution("nvidia-cuda-runtime").is_some());
        assert!(
            wheels
                .denies_distribution("nvidia_cuda_runtime_cu12")
                .is_none()
        );
        assert!(!policy.applies(Rule::Header) && policy.applies(Rule::StaticLibrary));
        let error = Policy::parse("allow = [\"headers\"]\n", Path::new("p.toml"))
            .expect_err("unknown rule");
        assert!(error.to_string().contains("p.toml"), "{error}");
        assert!(error.to_string().contains("`headers`"), "{error}");
        // A file that is no policy names the file; TOML's reading of it is the cause.
        let error = Policy::parse("denied = []\n", Path::new("p.toml")).expect_err("unknown key");
        assert_eq!(error.to_string(), "p.toml: not a policy file");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            cause
                .as_deref()
                .is_some_and(|cause| cause.contains("denied")),
            "{cause:?}"
        );
        let targets = Policy::parse(
            "capabilities = [\"8.6\", \"sm_90a\"]\ndriver-dir = \"/opt/driver\"\n",
            Path::new("p.toml"),
        )
        .expect("parses");
        let shown: Vec<String> = targets
            .capabilities
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["8.6", "9.0a"]);
        assert_eq!(targets.driver_dir, Path::new("/opt/driver"));
        for bad in ["capabilities = [\"8.8\"]\n", "driver-dir = \"lib\"\n"] {
            let error = Policy::parse(bad, Path::new("p.toml")).expect_err(bad);
            assert!(error.to_string().starts_with("p.toml: "), "{error}");
        }
    }
}
