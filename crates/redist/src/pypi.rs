//! PyPI as a second source of NVIDIA's components: the redist package ↔ wheel name table,
//! wheels listed by a simple index in its JSON form (PEP 691) with the index's SHA-256
//! checked by the download, the choice of a wheel by PEP 440 rules, and the
//! `Requires-Dist` of a wheel's core metadata (from the index's metadata file, PEP 658,
//! or from the wheel itself).

use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use serde_json::Value;

use crate::error::Error;
use crate::fetch::{Fetcher, Request};
use crate::requirement::Requirement;

/// PyPI's simple index.
pub const PYPI_INDEX_URL: &str = "https://pypi.org/simple";

/// Redist package → wheel name stem. CUDA 12's wheels add `-cu12`; CUDA 13's toolkit
/// wheels have no suffix; the libraries released apart from the toolkit (cuDNN, NCCL,
/// cuSPARSELt, cuTENSOR, cuDSS) name the major in both.
const WHEELS: &[(&str, &str)] = &[
    ("cuda_cccl", "nvidia-cuda-cccl"),
    ("cuda_crt", "nvidia-cuda-crt"),
    ("cuda_cudart", "nvidia-cuda-runtime"),
    ("cuda_cuobjdump", "nvidia-cuda-cuobjdump"),
    ("cuda_cupti", "nvidia-cuda-cupti"),
    ("cuda_cuxxfilt", "nvidia-cuda-cuxxfilt"),
    ("cuda_nvcc", "nvidia-cuda-nvcc"),
    ("cuda_nvdisasm", "nvidia-cuda-nvdisasm"),
    ("cuda_nvml_dev", "nvidia-nvml-dev"),
    ("cuda_nvrtc", "nvidia-cuda-nvrtc"),
    ("cuda_nvtx", "nvidia-nvtx"),
    ("cuda_opencl", "nvidia-cuda-opencl"),
    ("cuda_profiler_api", "nvidia-cuda-profiler-api"),
    ("cuda_sanitizer_api", "nvidia-cuda-sanitizer-api"),
    ("libcublas", "nvidia-cublas"),
    ("libcufft", "nvidia-cufft"),
    ("libcufile", "nvidia-cufile"),
    ("libcurand", "nvidia-curand"),
    ("libcusolver", "nvidia-cusolver"),
    ("libcusparse", "nvidia-cusparse"),
    ("libnpp", "nvidia-npp"),
    ("libnvfatbin", "nvidia-nvfatbin"),
    ("libnvjitlink", "nvidia-nvjitlink"),
    ("libnvjpeg", "nvidia-nvjpeg"),
    ("libnvvm", "nvidia-nvvm"),
    ("cudnn", "nvidia-cudnn"),
    ("nccl", "nvidia-nccl"),
    ("libcusparse_lt", "nvidia-cusparselt"),
    ("libcutensor", "cutensor"),
    ("libcudss", "nvidia-cudss"),
    // The name this table used before NVIDIA's manifest key.
    ("cusparselt", "nvidia-cusparselt"),
];

/// Released apart from the toolkit: their wheels always carry `-cu<major>`.
const ALWAYS_SUFFIXED: &[&str] = &[
    "cudnn",
    "nccl",
    "libcusparse_lt",
    "cusparselt",
    "libcutensor",
    "libcudss",
];

/// The wheel project of a redist package for CUDA major `cuda_major`.
pub fn wheel_name(package: &str, cuda_major: u32) -> Option<String> {
    let stem = WHEELS.iter().find(|(p, _)| *p == package)?.1;
    Some(if cuda_major <= 12 || ALWAYS_SUFFIXED.contains(&package) {
        format!("{stem}-cu{cuda_major}")
    } else {
        stem.to_owned()
    })
}

/// The redist package a wheel project stands for (`nvidia-cublas-cu12` → `libcublas`).
pub fn package_of_wheel(project: &str) -> Option<&'static str> {
    let normalized = normalize(project);
    let stem = match normalized.rsplit_once("-cu") {
        Some((stem, major)) if !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) => {
            stem.to_owned()
        }
        _ => normalized,
    };
    WHEELS.iter().find(|(_, w)| *w == stem).map(|(p, _)| *p)
}

/// The CUDA major a wheel project is built for, when its name says (`-cu12`).
pub fn cuda_major_of_wheel(project: &str) -> Option<u32> {
    let normalized = normalize(project);
    let (_, major) = normalized.rsplit_once("-cu")?;
    major.parse().ok()
}

/// PEP 503 normalisation: lower case, runs of `-_.` as one `-`.
pub fn normalize(project: &str) -> String {
    let mut out = String::with_capacity(project.len());
    for c in project.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// One wheel file of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    pub filename: String,
    /// As the file name writes it.
    pub version: String,
    /// The same, read by PEP 440's rules (ordering, pre-releases).
    pub pep440: Version,
    /// Platform tags (`manylinux_2_27_x86_64`, …).
    pub platforms: Vec<String>,
    pub url: String,
    pub sha256: String,
    pub size: Option<u64>,
    /// The SHA-256 of the core metadata file the index serves beside the wheel
    /// (`<url>.metadata`, PEP 658 and 714), when it offers one with a hash.
    pub metadata_sha256: Option<String>,
}

impl Wheel {
    /// Whether the file name names the project `normalized` (a name `normalize` gave).
    pub fn is_of(&self, normalized: &str) -> bool {
        self.filename
            .split('-')
            .next()
            .is_some_and(|name| normalize(name) == normalized)
    }

    pub fn request(&self) -> Request {
        Request {
            url: self.url.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
        }
    }

    /// The download of the wheel's core metadata alone, verified by its own hash.
    pub fn metadata_request(&self) -> Option<Request> {
        Some(Request {
            url: format!("{}.metadata", self.url),
            sha256: self.metadata_sha256.clone()?,
            size: None,
        })
    }

    /// Whether it installs on Linux for NVIDIA's system name (`linux-x86_64`, `linux-sbsa`).
    pub fn fits(&self, system: &str) -> bool {
        let arch = match system {
            "linux-x86_64" => "x86_64",
            "linux-sbsa" | "linux-aarch64" => "aarch64",
            _ => return false,
        };
        self.platforms.iter().any(|p| {
            (p.starts_with("manylinux") || p == &format!("linux_{arch}")) && p.ends_with(arch)
        })
    }
}

/// The wheels of `project` listed by the index at `index_url`, yanked ones and those of
/// other projects (named so by their file names, as pip skips them) left out.
pub fn wheels(fetcher: &Fetcher, index_url: &str, project: &str) -> Result<Vec<Wheel>, Error> {
    let project_name = normalize(project);
    let page = format!("{}/{project_name}/", index_url.trim_end_matches('/'));
    fetcher
        .get_document(&page, "application/vnd.pypi.simple.v1+json", |text| {
            parse_project_page(text, &page)
        })
        .map(|wheels| {
            wheels
                .into_iter()
                .filter(|wheel| wheel.is_of(&project_name))
                .collect()
        })
        .map_err(|error| match error {
            Error::Absent { .. } => {
                Error::NotFound(format!("{page}: the index has no project `{project}`"))
            }
            other => other,
        })
}

/// Reads a PEP 691 project page; `page` resolves relative file URLs. Every wheel kept
/// has a plain file name, a SHA-256 of 64 hex digits (the cache key) and an `http(s)`
/// URL; a `file://` page (an index the user configured as a folder) may also point at
/// files by relative URLs.
pub fn parse_project_page(text: &str, page: &str) -> Result<Vec<Wheel>, Error> {
    let bad = |at: &str, problem: &str| Error::BadDocument {
        origin: page.to_owned(),
        at: at.to_owned(),
        problem: problem.to_owned(),
    };
    let root: Value = serde_json::from_str(text).map_err(|source| Error::NotJson {
        origin: page.to_owned(),
        at: "$".to_owned(),
        what: "the JSON form of a simple index page",
        source,
    })?;
    let files = root["files"]
        .as_array()
        .ok_or_else(|| bad("$.files", "expected a list"))?;
    let mut wheels = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let at = format!("$.files[{i}]");
        let filename = file["filename"]
            .as_str()
            .ok_or_else(|| bad(&format!("{at}.filename"), "expected a string"))?;
        let yanked = file["yanked"].as_bool().unwrap_or(false) || file["yanked"].is_string();
        let Some(stem) = filename.strip_suffix(".whl") else {
            continue;
        };
        if yanked {
            continue;
        }
        if !cudapkgs_tree::dir::is_file_name(filename) {
            return Err(bad(
                &format!("{at}.filename"),
                &format!("`{}` is not a plain file name", filename.escape_debug()),
            ));
        }
        // name-version(-build)?-python-abi-platform
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() < 5 {
            return Err(bad(&format!("{at}.filename"), "not a wheel file name"));
        }
        // A version PEP 440 cannot read cannot be ordered or matched: left out, as pip
        // leaves it out.
        let Ok(pep440) = Version::from_str(parts[1]) else {
            continue;
        };
        let url = file["url"]
            .as_str()
            .ok_or_else(|| bad(&format!("{at}.url"), "expected a string"))?;
        let url = resolve(page, url).ok_or_else(|| {
            bad(
                &format!("{at}.url"),
                &format!(
                    "`{}`: an index may point only at http:// or https:// files",
                    url.escape_debug()
                ),
            )
        })?;
        let sha256 = file["hashes"]["sha256"].as_str().ok_or_else(|| {
            bad(
                &format!("{at}.hashes"),
                "no sha256: the wheel cannot be verified",
            )
        })?;
        let sha256 = crate::fetch::parse_sha256(sha256).ok_or_else(|| {
            bad(
                &format!("{at}.hashes.sha256"),
                &format!("`{}` is not 64 hex digits", sha256.escape_debug()),
            )
        })?;
        let size = match &file["size"] {
            Value::Null => None,
            given => Some(given.as_u64().ok_or_else(|| {
                bad(
                    &format!("{at}.size"),
                    "expected a byte count (a whole number)",
                )
            })?),
        };
        let metadata_sha256 =
            core_metadata_hash(file, &at).map_err(|(at, problem)| bad(&at, &problem))?;
        wheels.push(Wheel {
            filename: filename.to_owned(),
            version: parts[1].to_owned(),
            pep440,
            platforms: parts[parts.len() - 1]
                .split('.')
                .map(str::to_owned)
                .collect(),
            url,
            sha256,
            size,
            metadata_sha256,
        });
    }
    Ok(wheels)
}

/// The hash of a file's core metadata: `core-metadata` (PEP 714) or its older name
/// `data-dist-info-metadata` (PEP 658) is `true`, `false` or a hash object; only a
/// SHA-256 lets the metadata be verified, so `true` alone offers nothing usable.
fn core_metadata_hash(file: &Value, at: &str) -> Result<Option<String>, (String, String)> {
    for key in ["core-metadata", "data-dist-info-metadata"] {
        match &file[key] {
            Value::Object(hashes) => {
                let Some(given) = hashes.get("sha256") else {
                    return Ok(None);
                };
                let text = given.as_str().unwrap_or_default();
                return crate::fetch::parse_sha256(text).map(Some).ok_or_else(|| {
                    (
                        format!("{at}.{key}.sha256"),
                        format!("`{}` is not 64 hex digits", text.escape_debug()),
                    )
                });
            }
            Value::Null => {}
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// The scheme of an absolute URL (RFC 3986: a letter, then letters, digits, `+-.`, then
/// `:`); `None` for a relative one.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut bytes = scheme.bytes();
    (bytes.next()?.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)))
    .then_some(scheme)
}

/// `http://…` or `https://…` (a scheme without `//` names no server).
fn is_http(url: &str) -> bool {
    ["http://", "https://"].iter().any(|prefix| {
        url.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    })
}

/// `url` relative to `page`, when the index may point there: absolute URLs must be
/// `http(s)`; relative ones keep the page's scheme and server (`file://` only for a
/// page the user's own `file://` index holds), and `..` never climbs above the root.
fn resolve(page: &str, url: &str) -> Option<String> {
    if scheme(url).is_some() {
        return is_http(url).then(|| url.to_owned());
    }
    if url.starts_with("//") {
        // Another server, the page's scheme.
        let resolved = format!("{}:{url}", scheme(page)?);
        return is_http(&resolved).then_some(resolved);
    }
    // `http://host:port` and the path after it; a `file://` URL is all path.
    let origin_end = if page.starts_with("file://") {
        "file://".len()
    } else {
        let scheme_end = page.find("://").map_or(0, |i| i + 3);
        page[scheme_end..]
            .find('/')
            .map_or(page.len(), |i| scheme_end + i)
    };
    let (origin, page_path) = page.split_at(origin_end);
    let path = if url.starts_with('/') {
        url.to_owned()
    } else {
        let folder = page_path.rfind('/').map_or("", |i| &page_path[..=i]);
        format!("{folder}{url}")
    };
    let resolved = format!("{origin}{}", remove_dot_segments(&path));
    (is_http(&resolved) || page.starts_with("file://")).then_some(resolved)
}

/// `a/b/../c/./d` → `a/c/d`; a `..` at the root stays there (RFC 3986, 5.2.4).
fn remove_dot_segments(path: &str) -> String {
    let (root, rest) = match path.strip_prefix('/') {
        Some(rest) => ("/", rest),
        None => ("", path),
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut ends_in_folder = false;
    for segment in rest.split('/') {
        ends_in_folder = matches!(segment, "." | "..");
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    if ends_in_folder {
        kept.push("");
    }
    format!("{root}{}", kept.join("/"))
}

/// Which versions a choice may take.
#[derive(Debug, Clone, Default)]
pub struct Constraint {
    /// Every specifier must hold (empty: any version).
    pub specifiers: VersionSpecifiers,
    /// Pre-releases (`a`, `b`, `rc`, `.dev`) may be chosen. They are also allowed when a
    /// specifier names one itself (`==9.28.0.42.dev76646929`), as PEP 440 says.
    pub prereleases: bool,
}

impl Constraint {
    pub fn new(specifiers: VersionSpecifiers, prereleases: bool) -> Constraint {
        Constraint {
            specifiers,
            prereleases,
        }
    }

    /// Whether `version` may be chosen.
    pub fn allows(&self, version: &Version) -> bool {
        self.specifiers.contains(version) && (!version.any_prerelease() || self.takes_prereleases())
    }

    fn takes_prereleases(&self) -> bool {
        self.prereleases || self.specifiers.iter().any(|s| s.version().any_prerelease())
    }
}

/// Why no wheel was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoWheel {
    /// No wheel at all for the system.
    NoneForSystem,
    /// Wheels for the system exist, none of an allowed version: the versions that
    /// have one (newest first), and those of them that only pre-releases would match.
    NoVersion {
        available: Vec<String>,
        prereleases_matching: Vec<String>,
    },
}

/// The newest wheel for `system` whose version `constraint` allows.
pub fn pick<'a>(
    wheels: &'a [Wheel],
    constraint: &Constraint,
    system: &str,
) -> Result<&'a Wheel, NoWheel> {
    let fitting: Vec<&Wheel> = wheels.iter().filter(|w| w.fits(system)).collect();
    if fitting.is_empty() {
        return Err(NoWheel::NoneForSystem);
    }
    if let Some(best) = fitting
        .iter()
        .filter(|w| constraint.allows(&w.pep440))
        .max_by(|a, b| a.pep440.cmp(&b.pep440))
    {
        return Ok(best);
    }
    let mut available: Vec<&Wheel> = fitting.clone();
    available.sort_by(|a, b| b.pep440.cmp(&a.pep440));
    available.dedup_by(|a, b| a.pep440 == b.pep440);
    let prereleases_matching = available
        .iter()
        .filter(|w| w.pep440.any_prerelease() && constraint.specifiers.contains(&w.pep440))
        .map(|w| w.version.clone())
        .collect();
    Err(NoWheel::NoVersion {
        available: available.iter().map(|w| w.version.clone()).collect(),
        prereleases_matching,
    })
}

/// The largest core metadata file read (NVIDIA's are a few kilobytes).
pub const METADATA_LIMIT: u64 = 1 << 20;

/// The `Requires-Dist` entries of a core metadata file (the RFC 822 headers before the
/// first empty line; continuation lines joined).
pub fn requires_dist(metadata: &str, origin: &str) -> Result<Vec<Requirement>, Error> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in metadata.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    headers
        .iter()
        .filter(|(name, _)| name == "requires-dist")
        .map(|(_, value)| {
            value
                .parse::<Requirement>()
                .map_err(|e| Error::BadDocument {
                    origin: origin.to_owned(),
                    at: "Requires-Dist".to_owned(),
                    problem: e.to_string(),
                })
        })
        .collect()
}

/// The core metadata (`<name>-<version>.dist-info/METADATA`) inside the wheel at `path`.
pub fn wheel_metadata(path: &std::path::Path) -> Result<String, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    wheel_metadata_from(file, &path.display().to_string())
}

/// The same, from a wheel's bytes; `origin` names it in errors.
pub fn wheel_metadata_from(
    wheel: impl std::io::Read + std::io::Seek,
    origin: &str,
) -> Result<String, Error> {
    use std::io::Read as _;
    let bad = |problem: String| Error::BadArchive {
        archive: std::path::PathBuf::from(origin),
        problem,
    };
    let mut zip = cudapkgs_tree::zip_archive::open_zip(wheel).map_err(|e| bad(e.to_string()))?;
    let name = zip
        .file_names()
        .find(|name| {
            name.strip_suffix(".dist-info/METADATA")
                .is_some_and(|folder| !folder.contains('/'))
        })
        .map(str::to_owned)
        .ok_or_else(|| bad("no .dist-info/METADATA: not a wheel".to_owned()))?;
    let member = zip
        .by_name(&name)
        .map_err(|e| bad(format!("{name}: {e}")))?;
    let mut text = String::new();
    member
        .take(METADATA_LIMIT)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("{name}: {e}")))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        assert_eq!(
            wheel_name("cuda_cudart", 12).as_deref(),
            Some("nvidia-cuda-runtime-cu12")
        );
        assert_eq!(
            wheel_name("cuda_cudart", 13).as_deref(),
            Some("nvidia-cuda-runtime")
        );
        assert_eq!(
            wheel_name("cudnn", 13).as_deref(),
            Some("nvidia-cudnn-cu13")
        );
        assert_eq!(wheel_name("cuda_gdb", 13), None);
        assert_eq!(package_of_wheel("nvidia_cublas_cu12"), Some("libcublas"));
        assert_eq!(package_of_wheel("nvidia-cudnn-cu13"), Some("cudnn"));
        assert_eq!(package_of_wheel("torch"), None);
    }

    #[test]
    fn wheels_named_for_another_project_are_not_the_projects() {
        let page = format!(
            r#"{{"files": [
            {{"filename": "totally_other_project-99.0-py3-none-manylinux_2_27_x86_64.whl", "url": "a.whl", "hashes": {{"sha256": "{hash}"}}}},
            {{"filename": "NVIDIA.Cuda_Runtime-13.0.96-py3-none-manylinux_2_27_x86_64.whl", "url": "b.whl", "hashes": {{"sha256": "{hash}"}}}}
            ]}}"#,
            hash = "a".repeat(64)
        );
        let wheels = parse_project_page(&page, "http://127.0.0.1:8000/simple/nvidia-cuda-runtime/")
            .expect("parses");
        let project = normalize("nvidia_cuda_runtime");
        let of: Vec<bool> = wheels.iter().map(|wheel| wheel.is_of(&project)).collect();
        assert_eq!(of, [false, true]);
    }

    #[test]
    fn project_pages_resolve_and_pick_the_platform() {
        let page = r#"{"meta": {"api-version": "1.1"}, "name": "nvidia-cublas", "files": [
            {"filename": "nvidia_cublas-13.0.0.19-py3-none-manylinux_2_27_aarch64.whl",
             "url": "../../packages/aa/nvidia_cublas-13.0.0.19-py3-none-manylinux_2_27_aarch64.whl",
             "hashes": {"sha256": "HASH_A"}, "size": 10},
            {"filename": "nvidia_cublas-13.0.0.19-py3-none-manylinux_2_27_x86_64.whl",
             "url": "/packages/bb/x.whl", "hashes": {"sha256": "HASH_B"}},
            {"filename": "nvidia_cublas-13.1.0.3-py3-none-manylinux_2_27_x86_64.whl",
             "url": "https://files.example/y.whl", "hashes": {"sha256": "HASH_C"}, "yanked": "broken"},
            {"filename": "nvidia_cublas-13.0.2.14-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
             "url": "z.whl", "hashes": {"sha256": "HASH_D"}},
            {"filename": "nvidia_cublas-13.0.2.14.tar.gz", "url": "s.tar.gz", "hashes": {"sha256": "ee"}}
        ]}"#;
        let page = ["A", "b", "c", "d"]
            .iter()
            .fold(page.to_owned(), |page, digit| {
                page.replace(
                    &format!("HASH_{}", digit.to_ascii_uppercase()),
                    &digit.repeat(64),
                )
            });
        let wheels = parse_project_page(&page, "http://127.0.0.1:8000/simple/nvidia-cublas/")
            .expect("parses");
        assert_eq!(
            wheels.len(),
            3,
            "the yanked wheel and the sdist are left out"
        );
        assert_eq!(
            wheels[0].url,
            "http://127.0.0.1:8000/packages/aa/nvidia_cublas-13.0.0.19-py3-none-manylinux_2_27_aarch64.whl"
        );
        assert_eq!(wheels[0].sha256, "a".repeat(64), "hashes are lower case");
        assert_eq!(wheels[0].size, Some(10));
        assert_eq!(wheels[1].url, "http://127.0.0.1:8000/packages/bb/x.whl");
        assert_eq!(
            wheels[2].url,
            "http://127.0.0.1:8000/simple/nvidia-cublas/z.whl"
        );
        let newest = pick(&wheels, &Constraint::default(), "linux-x86_64").expect("a wheel");
        assert_eq!(newest.version, "13.0.2.14");
        let old = pick(&wheels, &exactly("13.0.0.19"), "linux-sbsa").expect("a wheel");
        assert_eq!(old.sha256, "a".repeat(64));
        assert_eq!(
            pick(&wheels, &exactly("9.9"), "linux-x86_64"),
            Err(NoWheel::NoVersion {
                available: vec!["13.0.2.14".to_owned(), "13.0.0.19".to_owned()],
                prereleases_matching: Vec::new(),
            })
        );
        assert_eq!(
            pick(&wheels, &Constraint::default(), "linux-ppc64le"),
            Err(NoWheel::NoneForSystem)
        );
        let error = parse_project_page(
            r#"{"files": [{"filename": "a-1-py3-none-any.whl", "url": "u"}]}"#,
            "http://127.0.0.1/simple/a/",
        )
        .expect_err("no hash");
        assert!(
            error.to_string().contains("$.files[0].hashes: no sha256"),
            "{error}"
        );
    }

    fn exactly(version: &str) -> Constraint {
        Constraint::new(
            VersionSpecifiers::from_str(&format!("=={version}")).expect("specifier"),
            false,
        )
    }

    /// A page listing one x86-64 wheel per version.
    fn page_of(project: &str, versions: &[&str]) -> Vec<Wheel> {
        let files: Vec<Value> = versions
            .iter()
            .map(|v| {
                serde_json::json!({
                    "filename": format!("{project}-{v}-py3-none-manylinux_2_27_x86_64.whl"),
                    "url": format!("{project}-{v}.whl"),
                    "hashes": {"sha256": "a".repeat(64)},
                })
            })
            .collect();
        let page = serde_json::json!({ "files": files }).to_string();
        parse_project_page(&page, "http://127.0.0.1/simple/p/").expect("parses")
    }

    #[test]
    fn pre_releases_only_when_asked() {
        // Versions of nvidia-cudnn-cu13 on PyPI: development builds sort before the
        // release they lead to, and are pre-releases.
        let wheels = page_of(
            "nvidia_cudnn_cu13",
            &[
                "9.28.0.27.dev72339430",
                "9.28.0.42",
                "9.28.0.42.dev76646929",
                "9.29.0.1rc1",
                "9.28.1.4",
            ],
        );
        let newest = pick(&wheels, &Constraint::default(), "linux-x86_64").expect("a wheel");
        assert_eq!(newest.version, "9.28.1.4");
        let with_pre = Constraint::new(VersionSpecifiers::empty(), true);
        assert_eq!(
            pick(&wheels, &with_pre, "linux-x86_64")
                .expect("a wheel")
                .version,
            "9.29.0.1rc1"
        );
        // Naming a pre-release asks for it.
        let named = exactly("9.28.0.42.dev76646929");
        assert_eq!(
            pick(&wheels, &named, "linux-x86_64")
                .expect("a wheel")
                .version,
            "9.28.0.42.dev76646929"
        );
        // `==9.29.*` matches only a pre-release: refused, and the refusal says so.
        let only_pre = Constraint::new(
            VersionSpecifiers::from_str("==9.29.*").expect("specifier"),
            false,
        );
        match pick(&wheels, &only_pre, "linux-x86_64") {
            Err(NoWheel::NoVersion {
                prereleases_matching,
                available,
            }) => {
                assert_eq!(prereleases_matching, ["9.29.0.1rc1"]);
                assert_eq!(available[0], "9.29.0.1rc1");
                assert_eq!(available.len(), 5);
            }
            other => panic!("{other:?}"),
        }
        // Versions PEP 440 cannot read are left out, as pip leaves them.
        assert_eq!(page_of("x", &["1.0", "not-a-version"]).len(), 1);
    }

    #[test]
    fn metadata_files_are_offered_only_with_a_hash() {
        let page = serde_json::json!({"files": [
            {"filename": "a-1.0-py3-none-any.whl", "url": "a.whl", "hashes": {"sha256": "a".repeat(64)},
             "core-metadata": {"sha256": "B".repeat(64)}},
            {"filename": "a-2.0-py3-none-any.whl", "url": "b.whl", "hashes": {"sha256": "a".repeat(64)},
             "data-dist-info-metadata": {"sha256": "c".repeat(64)}},
            {"filename": "a-3.0-py3-none-any.whl", "url": "c.whl", "hashes": {"sha256": "a".repeat(64)},
             "core-metadata": true},
            {"filename": "a-4.0-py3-none-any.whl", "url": "d.whl", "hashes": {"sha256": "a".repeat(64)},
             "core-metadata": false},
        ]})
        .to_string();
        let wheels = parse_project_page(&page, "http://127.0.0.1/simple/a/").expect("parses");
        let hashes: Vec<Option<String>> =
            wheels.iter().map(|w| w.metadata_sha256.clone()).collect();
        assert_eq!(
            hashes,
            [Some("b".repeat(64)), Some("c".repeat(64)), None, None]
        );
        let request = wheels[0].metadata_request().expect("offered");
        assert_eq!(request.url, "http://127.0.0.1/simple/a/a.whl.metadata");
        assert_eq!(request.sha256, "b".repeat(64));
        let bad = serde_json::json!({"files": [
            {"filename": "a-1.0-py3-none-any.whl", "url": "a.whl", "hashes": {"sha256": "a".repeat(64)},
             "core-metadata": {"sha256": "../x"}},
        ]})
        .to_string();
        let error = parse_project_page(&bad, "http://127.0.0.1/simple/a/").expect_err("bad hash");
        assert!(
            error
                .to_string()
                .contains("$.files[0].core-metadata.sha256"),
            "{error}"
        );
    }

    #[test]
    fn requires_dist_is_read_from_the_headers_only() {
        let metadata = "Metadata-Version: 2.4\nName: nvidia-cusolver\nVersion: 12.4.1.2\n\
            Requires-Dist: nvidia-cublas\nRequires-Dist: nvidia-nvjitlink\nRequires-Dist:\n  nvidia-cusparse\n\n\
            Requires-Dist: not-a-header\n";
        let names: Vec<String> = requires_dist(metadata, "m")
            .expect("reads")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(
            names,
            ["nvidia-cublas", "nvidia-nvjitlink", "nvidia-cusparse"]
        );
        let error =
            requires_dist("Requires-Dist: x @ file:///etc\n", "m.metadata").expect_err("a URL");
        assert!(
            error.to_string().starts_with("m.metadata: Requires-Dist: "),
            "{error}"
        );
    }

    #[test]
    fn relative_urls_stay_on_the_page_server() {
        let page = "http://127.0.0.1:8000/simple/p/";
        let cases = [
            ("../../../../../x.whl", "http://127.0.0.1:8000/x.whl"),
            ("./a/./b/../c.whl", "http://127.0.0.1:8000/simple/p/a/c.whl"),
            ("/../../x.whl", "http://127.0.0.1:8000/x.whl"),
            ("//files.example/x.whl", "http://files.example/x.whl"),
            ("HTTPS://files.example/x.whl", "HTTPS://files.example/x.whl"),
        ];
        for (url, expected) in cases {
            assert_eq!(resolve(page, url).as_deref(), Some(expected), "{url}");
        }
        for url in [
            "file:///etc/passwd",
            "file:/etc/passwd",
            "ftp://h/x.whl",
            "data:,x",
        ] {
            assert_eq!(resolve(page, url), None, "{url}");
        }
        // A folder index the user configured keeps relative files in its file system,
        // and still refuses absolute `file://` URLs and other hosts.
        let folder = "file:///srv/index/simple/p/";
        assert_eq!(
            resolve(folder, "../../files/x.whl").as_deref(),
            Some("file:///srv/index/files/x.whl")
        );
        assert_eq!(resolve(folder, "file:///etc/passwd"), None);
        assert_eq!(resolve(folder, "//host/x.whl"), None);
    }
}
