//! The NAR reader on arbitrary bytes: an archive it accepts must dump back to exactly
//! the same bytes, and a refused one must leave nothing behind.
#![no_main]

use cudapkgs_nix::nar;
use cudapkgs_store::restore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp");
    let target = dir.path().join("tree");
    match restore::restore(data, &target) {
        Ok(()) => {
            let mut again = Vec::new();
            nar::dump(&target, &mut again).expect("a restored tree dumps");
            assert_eq!(again.as_slice(), data);
            // Let the temporary folder go: restored folders are read-only.
            let _ = std::process::Command::new("chmod").args(["-R", "u+w"]).arg(dir.path()).status();
        }
        Err(_) => assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0),
    }
});
