//! The loader-cache reader against `ldconfig -p`, on this machine's real cache.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_cache_reads_as_ldconfig_prints_it() {
    let cache = std::path::Path::new("/etc/ld.so.cache");
    if cudapkgs_testkit::require_file(cache, "glibc's loader cache").is_none() {
        return;
    }
    let data = std::fs::read(cache).expect("read /etc/ld.so.cache");
    let ldconfig = ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("ldconfig (glibc's libc-bin) is installed");
    let output = Command::new(ldconfig)
        .arg("-p")
        .output()
        .expect("ldconfig -p");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    // `\tlibm.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libm.so.6`, this ABI only.
    let abi = if cfg!(target_arch = "x86_64") {
        "x86-64"
    } else {
        "AArch64"
    };
    let expected: Vec<(String, PathBuf)> = text
        .lines()
        .filter(|line| line.contains(abi))
        .filter_map(|line| {
            let (left, path) = line.split_once(" => ")?;
            let soname = left.trim().split(' ').next()?;
            Some((soname.to_owned(), PathBuf::from(path.trim())))
        })
        .collect();
    let parsed: Vec<(String, PathBuf)> = cudapkgs_gpu::ldcache::parse(&data)
        .expect("the cache parses")
        .into_iter()
        .map(|library| (library.soname, library.path))
        .collect();
    assert!(expected.len() > 10, "{text}");
    assert_eq!(parsed, expected);
}
