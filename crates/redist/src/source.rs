//! Where NVIDIA's redistributables live: manifest and archive URLs under a base URL
//! (NVIDIA's server by default; any HTTP mirror or `file://` folder in the same layout).

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
        let text = fetcher.get_text(&url, "application/json").map_err(|error| match error {
            Error::Download { url, problem } if problem.contains("404") => Error::NotFound(format!(
                "{url}: no manifest for {redist} {version} (check the version, and --base-url)"
            )),
            other => other,
        })?;
        Manifest::parse(&text, &url)
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
