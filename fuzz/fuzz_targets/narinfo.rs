//! narinfo files, nix-cache-info and key texts from a cache nobody vouches for: parsing
//! never panics; an accepted narinfo renders to text that parses back to the same value,
//! keeps its NAR inside the cache (a relative URL of plain names) and its references
//! store names; accepted keys and cache descriptions survive a round trip.
#![no_main]

use cudapkgs_nix::cache_info::CacheInfo;
use cudapkgs_nix::narinfo::{NarInfo, check_url};
use cudapkgs_nix::signature::{PublicKey, SecretKey};
use cudapkgs_nix::store_path::check_base_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Ok(info) = NarInfo::parse(text, "/nix/store") {
        assert!(check_url(&info.url).is_ok(), "{:?}", info.url);
        assert!(
            !info.url.split('/').any(|part| part == ".."),
            "{:?}",
            info.url
        );
        assert!(info.nar_size > 0);
        for reference in &info.references {
            assert!(check_base_name(reference).is_ok(), "{reference:?}");
        }
        let rendered = info.render();
        let again = NarInfo::parse(&rendered, "/nix/store").expect("a rendered narinfo parses");
        assert_eq!(again, info);
        assert!(
            info.fingerprint("/nix/store")
                .starts_with(&format!("1;{};", info.store_path))
        );
    }
    if let Ok(info) = CacheInfo::parse(text) {
        assert_eq!(CacheInfo::parse(&info.render()).expect("rendered"), info);
    }
    if let Ok(key) = PublicKey::parse(text) {
        assert_eq!(PublicKey::parse(&key.to_text()).expect("rendered"), key);
        assert!(!key.verifies(b"message", "name:AAAA"));
    }
    if let Ok(key) = SecretKey::parse(text) {
        let signature = key.sign(b"message");
        assert!(key.public().verifies(b"message", &signature));
    }
});
