//! Resolution: what a build request names (packages, a source, a CUDA release, a
//! system) → every package to build, each with what to download and why it is there.
//!
//! The set is the requested packages and what they require, so that `build cudnn`
//! brings cuBLAS and NVRTC: on PyPI the wheels' `Requires-Dist` within the release's
//! pins (`pypi`), for NVIDIA's manifests the release of each product (`nvidia`); on both,
//! the libraries the packages are known to load (`cudapkgs_redist::providers`). What
//! the builder still finds missing in the files is matched to the packages that
//! provide it ([`providers_for`]), so that one more round can bring them.

mod nvidia;
mod pypi;
mod spec;

use std::path::{Path, PathBuf};

use cudapkgs_redist::fetch::{Fetcher, Progress};
use cudapkgs_redist::requirement::{Environment, Requirement};

use crate::error::{Error, Missing};
use crate::prepare::Input;

pub use pypi::TOOLKIT;
pub use spec::{Spec, version_of_file};

/// What the user asks for.
#[derive(Debug, Clone)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "each is a choice the user makes"
)]
pub struct Request {
    pub packages: Vec<Spec>,
    pub source: Source,
    /// `13`, `12.6` or `12.9.1`.
    pub cuda: String,
    /// NVIDIA's system name (`linux-x86_64`).
    pub system: String,
    /// Pre-releases may be chosen (they are also when a specifier names one).
    pub prereleases: bool,
    /// Bring what the packages require (else only what is named).
    pub dependencies: bool,
    /// Every package of the CUDA release (NVIDIA's manifests).
    pub all: bool,
    /// Wheels whose metadata the index does not serve are downloaded to read their
    /// requirements (not for a dry run: their requirements stay unknown).
    pub download_for_metadata: bool,
    /// Downloads at once.
    pub jobs: usize,
}

/// Where packages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A simple index (PyPI, or the one pip is configured with).
    Pypi { index_url: String },
    /// NVIDIA's server or a mirror in its layout.
    Nvidia { base_url: String },
}

/// What a package is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A download, verified by its hash.
    Remote(cudapkgs_redist::fetch::Request),
    /// A file the user named.
    Local(PathBuf),
}

/// Why a package is in the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its wheel's `Requires-Dist`.
    Declared,
    /// The requirer's libraries need or load its libraries.
    Loads,
    /// The builder found a file needing a library it provides.
    Library,
}

/// A package that brought another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirer {
    pub package: String,
    pub why: Why,
}

/// One package to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The redist name (`libcublas`), or the wheel project when it has none.
    pub package: String,
    pub version: String,
    pub origin: Origin,
    /// The wheel's file name, `<product> <release>` for NVIDIA's archives, the file.
    pub from: String,
    /// Empty: asked for by the user.
    pub required_by: Vec<Requirer>,
    /// The licence NVIDIA's manifest names (`CUDA Toolkit`); a wheel's is read from its
    /// metadata when it is unpacked.
    pub licence: Option<String>,
}

/// The packages to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The CUDA release resolved (`12.6.3`; the major alone when nothing ties it).
    pub cuda: String,
    /// What gave the release's versions (`cuda-toolkit 12.6.3 on …`, a manifest URL).
    pub release_from: Option<String>,
    /// Requested first, then what they brought, in the order found.
    pub packages: Vec<Resolved>,
    /// Things worth saying that are not errors.
    pub notes: Vec<String>,
}

impl Resolution {
    /// The packages to build once their downloads are at `archives` (in the order of
    /// [`Resolution::downloads`]).
    pub fn inputs(&self, archives: &[PathBuf]) -> Vec<Input> {
        let mut downloaded = archives.iter();
        self.packages
            .iter()
            .filter_map(|resolved| {
                let licence = resolved.licence.clone();
                let (archive, sha256) = match &resolved.origin {
                    Origin::Remote(request) => {
                        (downloaded.next()?.clone(), Some(request.sha256.clone()))
                    }
                    Origin::Local(path) => (path.clone(), None),
                };
                Some(Input {
                    package: resolved.package.clone(),
                    version: resolved.version.clone(),
                    archive,
                    sha256,
                    licence,
                })
            })
            .collect()
    }

    /// What must be downloaded, in the order of the packages.
    pub fn downloads(&self) -> Vec<cudapkgs_redist::fetch::Request> {
        self.packages
            .iter()
            .filter_map(|r| match &r.origin {
                Origin::Remote(request) => Some(request.clone()),
                Origin::Local(_) => None,
            })
            .collect()
    }
}

/// Resolves `request`; `progress` sees the downloads made to read wheels' requirements.
pub fn resolve(
    fetcher: &Fetcher,
    request: &Request,
    progress: Progress<'_>,
) -> Result<Resolution, Error> {
    let mut resolution = match &request.source {
        Source::Pypi { index_url } => pypi::resolve(fetcher, request, index_url, progress)?,
        Source::Nvidia { base_url } => nvidia::resolve(fetcher, request, base_url)?,
    };
    // The user's own files first, as they were named, then the rest.
    resolution
        .packages
        .sort_by_key(|r| !r.required_by.is_empty());
    Ok(resolution)
}

/// The CUDA major of `13`, `12.6` or `12.9.1`.
pub fn cuda_major(cuda: &str) -> Result<u32, Error> {
    cuda.split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .filter(|_| cuda.split('.').all(|part| part.parse::<u64>().is_ok()))
        .ok_or_else(|| Error::Resolve {
            problem: format!(
                "invalid CUDA release `{cuda}`: expected a release like 12.9.1, 12.9 or 13"
            ),
            hint: None,
        })
}

/// A package and the requirements its wheel declares (`None` for an archive).
type Declared = (String, Option<Vec<Requirement>>);

/// The files the user named (`PACKAGE=FILE`), added to `resolution`; for each, the
/// requirements its wheel declares for the request's system.
fn local_packages(request: &Request, resolution: &mut Resolution) -> Result<Vec<Declared>, Error> {
    let environment = Environment::linux(&request.system);
    let mut local = Vec::new();
    for spec in &request.packages {
        let Some(file) = &spec.file else { continue };
        if !file.is_file() {
            return Err(Error::Resolve {
                problem: format!("{}={}: not a file", spec.name, file.display()),
                hint: None,
            });
        }
        let requirements = if file.extension().is_some_and(|e| e == "whl") {
            let metadata = cudapkgs_redist::pypi::wheel_metadata(file)?;
            let origin = file.display().to_string();
            Some(
                cudapkgs_redist::pypi::requires_dist(&metadata, &origin)?
                    .into_iter()
                    .filter(|r| r.applies(&environment))
                    .collect(),
            )
        } else {
            None
        };
        resolution.packages.push(Resolved {
            package: spec.name.clone(),
            version: version_of_file(file),
            origin: Origin::Local(file.clone()),
            from: file.display().to_string(),
            required_by: Vec::new(),
            licence: None,
        });
        local.push((spec.name.clone(), requirements));
    }
    Ok(local)
}

/// For libraries the builder found no package for, the packages of NVIDIA's releases
/// that provide them (`None` where none is known) for CUDA major `cuda_major`.
pub fn providers_for(missing: &[Missing], cuda_major: u32) -> Vec<Option<&'static str>> {
    missing
        .iter()
        .map(|m| cudapkgs_redist::providers::provider(&m.library, cuda_major))
        .collect()
}

/// Adds to `request` the providers of `missing` that `resolution` lacks; whether any
/// was added (if not, another round would find the same).
pub fn extend_for(request: &mut Request, resolution: &Resolution, missing: &[Missing]) -> bool {
    let Ok(major) = cuda_major(&request.cuda) else {
        return false;
    };
    let mut added = false;
    for provider in providers_for(missing, major).into_iter().flatten() {
        let known = resolution.packages.iter().any(|r| r.package == provider)
            || request.packages.iter().any(|s| s.name == provider);
        if !known {
            request.packages.push(Spec::named(provider));
            added = true;
        }
    }
    added
}

/// The index pip would use: `PIP_INDEX_URL`, else `index-url` of pip's configuration
/// files (global, then user, then `PIP_CONFIG_FILE`, later ones winning), else PyPI.
/// `variable` gives the environment's values (this crate reads no environment).
pub fn pip_index_url(variable: &dyn Fn(&str) -> Option<String>) -> String {
    if let Some(url) = variable("PIP_INDEX_URL") {
        return url;
    }
    let mut files = vec![PathBuf::from("/etc/pip.conf")];
    if let Some(home) = variable("HOME") {
        files.push(Path::new(&home).join(".pip/pip.conf"));
        let config = variable("XDG_CONFIG_HOME").unwrap_or_else(|| format!("{home}/.config"));
        files.push(Path::new(&config).join("pip/pip.conf"));
    }
    if let Some(file) = variable("PIP_CONFIG_FILE") {
        files.push(PathBuf::from(file));
    }
    files
        .iter()
        .rev()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .find_map(|text| ini_value(&text, &["global", "install", "download"], "index-url"))
        .unwrap_or_else(|| cudapkgs_redist::pypi::PYPI_INDEX_URL.to_owned())
}

/// `key` in one of `sections` of an INI text (pip spells keys with `-` or `_`).
fn ini_value(text: &str, sections: &[&str], key: &str) -> Option<String> {
    let mut in_section = false;
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = sections.contains(&name.trim());
        } else if let Some((k, v)) = line.split_once('=').filter(|_| in_section) {
            if k.trim().replace('_', "-") == key {
                found = Some(v.trim().to_owned());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_configuration_is_read_like_pip() {
        let text = "[global]\nindex_url = https://a/simple\n[install]\nindex-url = https://b/simple\n[other]\nindex-url = https://c\n";
        assert_eq!(
            ini_value(text, &["global", "install"], "index-url").as_deref(),
            Some("https://b/simple")
        );
        assert_eq!(
            ini_value("[other]\nindex-url = x\n", &["global"], "index-url"),
            None
        );
        let none = |_: &str| None;
        assert!(pip_index_url(&none).starts_with("https://"));
        let set =
            |name: &str| (name == "PIP_INDEX_URL").then(|| "http://127.0.0.1/simple".to_owned());
        assert_eq!(pip_index_url(&set), "http://127.0.0.1/simple");
    }

    #[test]
    fn cuda_releases_have_a_major() {
        assert_eq!(cuda_major("12.9.1").expect("major"), 12);
        assert_eq!(cuda_major("13").expect("major"), 13);
        for bad in ["", "x", "12.x", "12..1"] {
            assert!(cuda_major(bad).is_err(), "{bad}");
        }
    }
}
