//! PyPI as a second source of NVIDIA's components: the redist package ↔ wheel name table,
//! and wheels resolved through a simple index in its JSON form (PEP 691), with the
//! index's SHA-256 checked by the download.

use serde_json::Value;

use crate::error::Error;
use crate::fetch::{Fetcher, Request};

/// PyPI's simple index.
pub const PYPI_INDEX_URL: &str = "https://pypi.org/simple";

/// Redist package → wheel name stem. CUDA 12's wheels add `-cu12`; CUDA 13's toolkit
/// wheels have no suffix; the libraries released apart from the toolkit (cuDNN, NCCL,
/// cuSPARSELt) name the major in both.
const WHEELS: &[(&str, &str)] = &[
    ("cuda_cccl", "nvidia-cuda-cccl"),
    ("cuda_cudart", "nvidia-cuda-runtime"),
    ("cuda_cuobjdump", "nvidia-cuda-cuobjdump"),
    ("cuda_cupti", "nvidia-cuda-cupti"),
    ("cuda_nvcc", "nvidia-cuda-nvcc"),
    ("cuda_nvdisasm", "nvidia-cuda-nvdisasm"),
    ("cuda_nvrtc", "nvidia-cuda-nvrtc"),
    ("cuda_nvtx", "nvidia-nvtx"),
    ("libcublas", "nvidia-cublas"),
    ("libcufft", "nvidia-cufft"),
    ("libcufile", "nvidia-cufile"),
    ("libcurand", "nvidia-curand"),
    ("libcusolver", "nvidia-cusolver"),
    ("libcusparse", "nvidia-cusparse"),
    ("libnvjitlink", "nvidia-nvjitlink"),
    ("libnvjpeg", "nvidia-nvjpeg"),
    ("libnvvm", "nvidia-nvvm"),
    ("cudnn", "nvidia-cudnn"),
    ("nccl", "nvidia-nccl"),
    ("cusparselt", "nvidia-cusparselt"),
];

/// Released apart from the toolkit: their wheels always carry `-cu<major>`.
const ALWAYS_SUFFIXED: &[&str] = &["cudnn", "nccl", "cusparselt"];

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
        Some((stem, major)) if major.bytes().all(|b| b.is_ascii_digit()) => stem.to_owned(),
        _ => normalized,
    };
    WHEELS.iter().find(|(_, w)| *w == stem).map(|(p, _)| *p)
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
    pub version: String,
    /// Platform tags (`manylinux_2_27_x86_64`, …).
    pub platforms: Vec<String>,
    pub url: String,
    pub sha256: String,
    pub size: Option<u64>,
}

impl Wheel {
    pub fn request(&self) -> Request {
        Request {
            url: self.url.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
        }
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

/// The wheels of `project` listed by the index at `index_url`, yanked ones left out.
pub fn wheels(fetcher: &Fetcher, index_url: &str, project: &str) -> Result<Vec<Wheel>, Error> {
    let page = format!(
        "{}/{}/",
        index_url.trim_end_matches('/'),
        normalize(project)
    );
    let text = fetcher
        .get_text(&page, "application/vnd.pypi.simple.v1+json")
        .map_err(|error| match error {
            Error::Download { problem, .. } if problem.contains("404") => {
                Error::NotFound(format!("{page}: the index has no project `{project}`"))
            }
            other => other,
        })?;
    parse_project_page(&text, &page)
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
    let root: Value = serde_json::from_str(text).map_err(|e| {
        bad(
            "$",
            &format!("not the JSON form of a simple index page: {e}"),
        )
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
        if !cudapkgs_elf::resolve::is_file_name(filename) {
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
        wheels.push(Wheel {
            filename: filename.to_owned(),
            version: parts[1].to_owned(),
            platforms: parts[parts.len() - 1]
                .split('.')
                .map(str::to_owned)
                .collect(),
            url,
            sha256,
            size,
        });
    }
    Ok(wheels)
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

/// The wheel of `version` (the newest when `None`) that fits `system`.
pub fn pick<'a>(wheels: &'a [Wheel], version: Option<&str>, system: &str) -> Option<&'a Wheel> {
    wheels
        .iter()
        .filter(|w| w.fits(system) && version.is_none_or(|v| w.version == v))
        .max_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version)))
}

fn version_key(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|part| {
            part.bytes()
                .take_while(u8::is_ascii_digit)
                .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'))
        })
        .collect()
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
        let newest = pick(&wheels, None, "linux-x86_64").expect("a wheel");
        assert_eq!(newest.version, "13.0.2.14");
        let old = pick(&wheels, Some("13.0.0.19"), "linux-sbsa").expect("a wheel");
        assert_eq!(old.sha256, "a".repeat(64));
        assert!(pick(&wheels, Some("9.9"), "linux-x86_64").is_none());
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
