//! Where NVIDIA's redistributables live: manifest and archive URLs under a base URL
//! (NVIDIA's server by default; any HTTP mirror or `file://` folder in the same layout).

use std::str::FromStr;

use crate::error::Error;
use crate::fetch::{Fetcher, Request};
use crate::manifest::{Archive, Manifest};

/// NVIDIA's download server.
pub const NVIDIA_BASE_URL: &str = "https://developer.download.nvidia.com/compute";

/// A mirror of NVIDIA's layout: `<base>/<redist>/redist/redistrib_<version>.json`, with
/// archives under the same folder (TensorRT's under `<base>/machine-learning/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    base: String,
}

impl Mirror {
    pub fn new(base: &str) -> Mirror {
        Mirror {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The folder of `redist`'s manifests.
    pub fn folder(&self, redist: &str) -> String {
        if redist == "tensorrt" {
            format!("{}/machine-learning", self.base)
        } else {
            format!("{}/{redist}/redist", self.base)
        }
    }

    pub fn manifest_url(&self, redist: &str, version: &str) -> String {
        format!("{}/redistrib_{version}.json", self.folder(redist))
    }

    /// Downloads and parses `redist`'s manifest for `version`.
    pub fn manifest(
        &self,
        fetcher: &Fetcher,
        redist: &str,
        version: &str,
    ) -> Result<Manifest, Error> {
        let url = self.manifest_url(redist, version);
        fetcher
            .get_document(&url, "application/json", |text| Manifest::parse(text, &url))
            .map_err(|error| match error {
                Error::Absent { url } => Error::NoManifest {
                    url,
                    redist: redist.to_owned(),
                    release: version.to_owned(),
                },
                other => other,
            })
    }

    /// The releases whose manifests `redist`'s folder lists, oldest first by PEP 440's
    /// order: the folder's entries for a `file://` mirror, the links of its listing
    /// page (as NVIDIA's server and plain HTTP servers give) otherwise.
    pub fn releases(&self, fetcher: &Fetcher, redist: &str) -> Result<Vec<String>, Error> {
        let folder = self.folder(redist);
        let names: Vec<String> = if let Some(path) = folder.strip_prefix("file://") {
            let path = std::path::Path::new(path);
            std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        } else {
            let page = fetcher
                .get_document(&format!("{folder}/"), "text/html", |text| {
                    Ok(text.to_owned())
                })
                .map_err(|error| match error {
                    Error::Absent { url } => Error::NoReleaseFolder {
                        url,
                        redist: redist.to_owned(),
                    },
                    other => other,
                })?;
            page.split(['"', '\'', '<', '>', '/', ' '])
                .map(str::to_owned)
                .collect()
        };
        let mut releases: Vec<(pep440_rs::Version, String)> = names
            .iter()
            .filter_map(|name| manifest_release(name))
            .filter_map(|release| {
                pep440_rs::Version::from_str(release)
                    .ok()
                    .map(|version| (version, release.to_owned()))
            })
            .collect();
        releases.sort();
        releases.dedup();
        Ok(releases.into_iter().map(|(_, release)| release).collect())
    }

    /// The download of one archive of `redist`.
    pub fn request(&self, redist: &str, archive: &Archive) -> Request {
        Request {
            url: format!("{}/{}", self.folder(redist), archive.relative_path),
            sha256: archive.sha256.clone(),
            size: Some(archive.size),
        }
    }
}

/// `redistrib_12.9.1.json` → `12.9.1`.
fn manifest_release(name: &str) -> Option<&str> {
    let release = name.strip_prefix("redistrib_")?.strip_suffix(".json")?;
    (!release.is_empty()
        && release
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.'))
    .then_some(release)
}

/// The release of `releases` that `wanted` names: itself when listed, else the newest
/// whose version starts with it (`12.9` → `12.9.1`); pre-releases only when `prereleases`
/// or when named in full.
pub fn pick_release<'a>(
    releases: &'a [String],
    wanted: &str,
    prereleases: bool,
) -> Option<&'a str> {
    if let Some(exact) = releases.iter().find(|r| *r == wanted) {
        return Some(exact);
    }
    let prefix = format!("{wanted}.");
    releases
        .iter()
        .filter(|r| r.starts_with(&prefix))
        .filter(|r| {
            prereleases || pep440_rs::Version::from_str(r).is_ok_and(|v| !v.any_prerelease())
        })
        .filter_map(|r| pep440_rs::Version::from_str(r).ok().map(|v| (v, r)))
        .max()
        .map(|(_, r)| r.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_read_from_listings_and_picked_by_prefix() {
        assert_eq!(manifest_release("redistrib_12.9.1.json"), Some("12.9.1"));
        assert_eq!(manifest_release("redistrib_.json"), None);
        assert_eq!(manifest_release("redistrib_1/../x.json"), None);
        assert_eq!(manifest_release("index.html"), None);
        let releases: Vec<String> = ["12.8.1", "12.9.0", "12.9.1", "13.0.0", "13.1.0rc1"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(pick_release(&releases, "12.9", false), Some("12.9.1"));
        assert_eq!(pick_release(&releases, "12", false), Some("12.9.1"));
        assert_eq!(pick_release(&releases, "12.9.0", false), Some("12.9.0"));
        assert_eq!(pick_release(&releases, "13.1", false), None);
        assert_eq!(pick_release(&releases, "13.1", true), Some("13.1.0rc1"));
        assert_eq!(
            pick_release(&releases, "13.1.0rc1", false),
            Some("13.1.0rc1")
        );
        assert_eq!(
            pick_release(&releases, "1", false),
            None,
            "12.x does not start with 1."
        );
        assert_eq!(pick_release(&releases, "12.6", false), None);
    }
}
