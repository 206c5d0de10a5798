//! NVIDIA manifests and simple-index pages on arbitrary text: parsed or refused, never a
//! panic. Everything accepted can safely become a cache key, a path or a download: every
//! archive has a 64-digit hash and a path inside its folder; every wheel of an index page
//! has a 64-digit hash, a plain file name and an http(s) URL (a `file://` URL only
//! from a `file://` page, with no `..` left in it).
#![no_main]

use cudapkgs_redist::manifest::{Manifest, SystemArchives};
use cudapkgs_redist::pypi::parse_project_page;
use libfuzzer_sys::fuzz_target;

/// The cache key form, stated apart from the parsers: 64 lower-case hex digits.
fn is_cache_key(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_http(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(manifest) = Manifest::parse(text, "fuzz.json") {
        for package in manifest.packages.values() {
            for archives in package.systems.values() {
                let list: Vec<_> = match archives {
                    SystemArchives::Single(a) => vec![a],
                    SystemArchives::PerCuda(map) => map.values().collect(),
                };
                for archive in list {
                    assert!(is_cache_key(&archive.sha256), "{}", archive.sha256);
                    let path = &archive.relative_path;
                    assert!(!path.is_empty() && !path.contains('\0'), "{path:?}");
                    assert!(!path.starts_with('/'));
                    assert!(!path.split('/').any(|p| p == ".."));
                }
            }
        }
    }
    for page in ["http://127.0.0.1/simple/p/", "file:///srv/index/simple/p/"] {
        let Ok(wheels) = parse_project_page(text, page) else {
            continue;
        };
        for wheel in wheels {
            assert!(is_cache_key(&wheel.sha256), "{}", wheel.sha256);
            // A metadata file is offered only with a hash that can verify it.
            if let Some(hash) = &wheel.metadata_sha256 {
                assert!(is_cache_key(hash), "{hash}");
                assert!(
                    wheel
                        .metadata_request()
                        .is_some_and(|r| r.url == format!("{}.metadata", wheel.url))
                );
            }
            let name = &wheel.filename;
            assert!(
                !name.is_empty()
                    && name != "."
                    && name != ".."
                    && !name.contains('/')
                    && !name.contains('\0'),
                "{name:?}"
            );
            let local = page.starts_with("file://") && wheel.url.starts_with("file:///");
            assert!(is_http(&wheel.url) || local, "{} from {page}", wheel.url);
            if let Some(path) = wheel.url.strip_prefix("file://") {
                assert!(!path.split('/').any(|p| p == ".."), "{path}");
            }
        }
    }
});
