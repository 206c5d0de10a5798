//! The reference scanner on arbitrary bytes split into arbitrary writes: it must find
//! exactly the candidates a naive search of every 32-byte window finds.
#![no_main]

use std::collections::HashSet;
use std::io::Write;

use cudapkgs_nix::scan::ReferenceScanner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // First byte: the write size; the next 64 bytes: two candidates; the rest: data.
    let Some((&split, rest)) = input.split_first() else { return };
    if rest.len() < 64 {
        return;
    }
    let (heads, data) = rest.split_at(64);
    let candidates: Vec<[u8; 32]> = heads
        .chunks(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect();
    let alphabet = b"0123456789abcdfghijklmnpqrsvwxyz";
    let valid: Vec<[u8; 32]> = candidates
        .iter()
        .copied()
        .filter(|c| c.iter().all(|b| alphabet.contains(b)))
        .collect();
    let naive: HashSet<[u8; 32]> = data
        .windows(32)
        .filter_map(|w| valid.iter().find(|c| c[..] == *w).copied())
        .collect();
    let mut scanner = ReferenceScanner::new(candidates);
    for piece in data.chunks(usize::from(split).max(1)) {
        scanner.write_all(piece).expect("scanning cannot fail");
    }
    assert_eq!(scanner.found(), &naive);
});
