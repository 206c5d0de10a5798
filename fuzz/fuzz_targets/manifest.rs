//! NVIDIA manifests and simple-index pages on arbitrary text: parsed or refused, never a
//! panic; every archive accepted has a 64-digit hash and a path inside the folder.
#![no_main]

use cudapkgs_redist::manifest::{Manifest, SystemArchives};
use cudapkgs_redist::pypi::parse_project_page;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(manifest) = Manifest::parse(text, "fuzz.json") {
        for package in manifest.packages.values() {
            for archives in package.systems.values() {
                let list: Vec<_> = match archives {
                    SystemArchives::Single(a) => vec![a],
                    SystemArchives::PerCuda(map) => map.values().collect(),
                };
                for archive in list {
                    assert_eq!(archive.sha256.len(), 64);
                    assert!(!archive.relative_path.starts_with('/'));
                    assert!(!archive.relative_path.split('/').any(|p| p == ".."));
                }
            }
        }
    }
    let _ = parse_project_page(text, "http://127.0.0.1/simple/p/");
});
