//! The loader-cache reader: a cache written from arbitrary entries reads back exactly
//! (this machine's ABI kept, others skipped, in order), and any change to its bytes is
//! read without a panic into entries whose strings lie in the file.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    entries: Vec<(bool, String, String)>,
    /// (offset, xor) changes applied after writing.
    changes: Vec<(u16, u8)>,
    /// Put the old format's table first.
    old_table: bool,
}

const ABI: i32 = if cfg!(target_arch = "aarch64") { 0x0a00 } else { 0x0300 };
const OTHER: i32 = if cfg!(target_arch = "aarch64") { 0x0300 } else { 0x0a00 };

/// glibc's format: header (magic, count, string length, flags, extension offset,
/// unused), entries of 24 bytes, then the strings, offsets from the new header.
fn write(entries: &[(i32, &str, &str)], old_table: bool) -> Vec<u8> {
    let mut data = Vec::new();
    if old_table {
        data.extend_from_slice(b"ld.so-1.7.0\0");
        data.extend_from_slice(&0u32.to_le_bytes());
        while data.len() % 8 != 0 {
            data.push(0);
        }
    }
    let base = data.len();
    let table = 48 + entries.len() * 24;
    let mut strings = Vec::new();
    let mut offsets = Vec::new();
    for (_, soname, path) in entries {
        let key = table + strings.len();
        strings.extend_from_slice(soname.as_bytes());
        strings.push(0);
        let value = table + strings.len();
        strings.extend_from_slice(path.as_bytes());
        strings.push(0);
        offsets.push((key as u32, value as u32));
    }
    data.extend_from_slice(b"glibc-ld.so.cache1.1");
    data.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    data.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    data.resize(base + 48, 0);
    for ((flags, _, _), (key, value)) in entries.iter().zip(offsets) {
        data.extend_from_slice(&flags.to_le_bytes());
        data.extend_from_slice(&key.to_le_bytes());
        data.extend_from_slice(&value.to_le_bytes());
        data.extend_from_slice(&[0; 12]);
    }
    data.extend_from_slice(&strings);
    data
}

fuzz_target!(|input: Input| {
    let clean: Vec<(i32, &str, &str)> = input
        .entries
        .iter()
        .filter(|(_, soname, path)| !soname.contains('\0') && !path.contains('\0'))
        .map(|(ours, soname, path)| (if *ours { ABI | 3 } else { OTHER | 3 }, soname.as_str(), path.as_str()))
        .collect();
    let mut data = write(&clean, input.old_table);
    let read = cudapkgs_gpu::ldcache::parse(&data).expect("a written cache reads");
    let expected: Vec<(&str, &str)> = clean
        .iter()
        .filter(|(flags, _, _)| *flags & 0xff00 == ABI)
        .map(|(_, soname, path)| (*soname, *path))
        .collect();
    let got: Vec<(&str, &str)> = read
        .iter()
        .map(|library| (library.soname.as_str(), library.path.to_str().expect("utf-8")))
        .collect();
    assert_eq!(got, expected);
    for (offset, xor) in &input.changes {
        if let Some(byte) = data.get_mut(usize::from(*offset)) {
            *byte ^= xor;
        }
    }
    if let Some(read) = cudapkgs_gpu::ldcache::parse(&data) {
        let text = String::from_utf8_lossy(&data);
        for library in read {
            assert!(text.contains(&library.soname) || library.soname.is_empty());
        }
    }
});
