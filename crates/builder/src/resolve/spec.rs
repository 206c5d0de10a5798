//! What the user names on the command line: `PACKAGE`, `PACKAGE==VERSION` (or any PEP
//! 440 specifiers: `libcublas>=12.6,<12.9`), or `PACKAGE=FILE` for an archive or wheel
//! already here; and the version a file's name carries.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::VersionSpecifiers;

use crate::error::Error;

/// One package asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// A redist name (`libcublas`) or a wheel project (`nvidia-cublas-cu12`).
    pub name: String,
    /// Empty: any version.
    pub versions: VersionSpecifiers,
    /// `PACKAGE=FILE`: built from this file instead of a source.
    pub file: Option<PathBuf>,
}

impl Spec {
    /// Any version of `name`.
    pub fn named(name: &str) -> Spec {
        Spec {
            name: name.to_owned(),
            versions: VersionSpecifiers::empty(),
            file: None,
        }
    }
}

impl FromStr for Spec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Spec, Error> {
        let bad = |problem: String| Error::Resolve {
            problem: format!("`{text}`: {problem}"),
            hint: Some(
                "write PACKAGE, PACKAGE==VERSION (or other PEP 440 specifiers), or PACKAGE=FILE"
                    .to_owned(),
            ),
        };
        let end = text.find(['=', '<', '>', '!', '~']).unwrap_or(text.len());
        let (name, rest) = text.split_at(end);
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || !name.chars().all(valid) {
            return Err(bad("expected a package name first".to_owned()));
        }
        if let Some(file) = rest.strip_prefix('=').filter(|f| !f.starts_with('=')) {
            if file.is_empty() {
                return Err(bad("no file after `=`".to_owned()));
            }
            return Ok(Spec {
                name: name.to_owned(),
                versions: VersionSpecifiers::empty(),
                file: Some(PathBuf::from(file)),
            });
        }
        let versions = if rest.is_empty() {
            VersionSpecifiers::empty()
        } else {
            VersionSpecifiers::from_str(rest)
                .map_err(|e| bad(format!("not PEP 440 version specifiers: {e}")))?
        };
        Ok(Spec {
            name: name.to_owned(),
            versions,
            file: None,
        })
    }
}

/// The version a file's name gives: a wheel's (`name-VERSION-…whl`), or NVIDIA's
/// `<package>-<system>-<version>[_cudaN]-archive.<ext>`; `local` otherwise.
pub fn version_of_file(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(stem) = name.strip_suffix(".whl") {
        if let Some(version) = stem.split('-').nth(1) {
            return version.to_owned();
        }
    }
    name.split_once("-archive.")
        .and_then(|(stem, _)| stem.rsplit('-').next())
        .map(|version| {
            // `2.3.1.0_cuda12`: the variant is not part of the version.
            version.split("_cuda").next().unwrap_or(version).to_owned()
        })
        .filter(|version| !version.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_names_versions_and_files() {
        let spec: Spec = "libcublas".parse().expect("spec");
        assert_eq!(spec, Spec::named("libcublas"));
        let spec: Spec = "libcublas==12.6.4.1".parse().expect("spec");
        assert_eq!(spec.versions.to_string(), "==12.6.4.1");
        let spec: Spec = "cudnn>=9.10,<9.20".parse().expect("spec");
        assert_eq!(spec.versions.len(), 2);
        let spec: Spec = "libcublas=dl/x.whl".parse().expect("spec");
        assert_eq!(spec.file.as_deref(), Some(Path::new("dl/x.whl")));
        assert_eq!(spec.name, "libcublas");
        for bad in ["==1.0", "libcublas==", "libcublas>>1", "lib cublas", "x="] {
            let error = bad.parse::<Spec>().expect_err(bad);
            assert!(
                error.to_string().starts_with(&format!("`{bad}`: ")),
                "{error}"
            );
        }
    }

    #[test]
    fn versions_come_from_file_names() {
        let cases = [
            (
                "nvidia_cublas-13.10.0.20-py3-none-manylinux_2_27_x86_64.whl",
                "13.10.0.20",
            ),
            ("cuda_cudart-linux-x86_64-13.0.96-archive.tar.xz", "13.0.96"),
            (
                "libcutensor-linux-x86_64-2.3.1.0_cuda12-archive.tar.xz",
                "2.3.1.0",
            ),
            ("mine.tar.gz", "local"),
        ];
        for (name, version) in cases {
            assert_eq!(version_of_file(Path::new(name)), version, "{name}");
        }
    }
}
