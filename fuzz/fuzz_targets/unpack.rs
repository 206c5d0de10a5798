//! The unpacker on arbitrary archives (tar.xz, tar.gz, zip, chosen by the first byte):
//! refused ones leave nothing; accepted ones put nothing outside the target and no link
//! that points out of it.
#![no_main]

use std::io::Write;
use std::path::Path;

use cudapkgs_redist::unpack::{Limits, unpack};
use libfuzzer_sys::fuzz_target;

fn check_inside(root: &Path, dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("readable") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let kind = entry.file_type().expect("type");
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).expect("link");
            assert!(target.is_relative(), "{}", target.display());
            let mut depth = path.parent().expect("parent").strip_prefix(root).expect("inside").components().count() as i64;
            for part in target.components() {
                match part {
                    std::path::Component::ParentDir => depth -= 1,
                    std::path::Component::Normal(_) => depth += 1,
                    _ => {}
                }
                assert!(depth >= 0, "{} -> {}", path.display(), target.display());
            }
        } else if kind.is_dir() {
            check_inside(root, &path);
        } else {
            assert!(kind.is_file(), "{}", path.display());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&format, body)) = data.split_first() else { return };
    let archive = match format % 3 {
        0 => {
            let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 0);
            encoder.write_all(body).expect("compress");
            encoder.finish().expect("compress")
        }
        1 => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(body).expect("compress");
            encoder.finish().expect("compress")
        }
        _ => body.to_vec(),
    };
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("archive");
    std::fs::write(&path, &archive).expect("write");
    let target = dir.path().join("work/target");
    let limits = Limits { max_bytes: 1 << 20, max_entries: 1000 };
    match unpack(&path, &target, limits) {
        Ok(()) => check_inside(&target, &target),
        Err(_) => {
            let left = std::fs::read_dir(dir.path().join("work")).map(|d| d.count()).unwrap_or(0);
            assert_eq!(left, 0, "a refused archive left something");
        }
    }
});
