//! Throughput of the reference scanner alone: reads FILE… into memory, then feeds them
//! through `ReferenceScanner` in 1 MiB writes (as an add does) with COUNT candidate hash
//! parts, and prints `bytes seconds found` on one line. Used by `bench/scan_references.py`.
//!
//!   cargo run --release -p cudapkgs-nix --example scan_speed -- COUNT PATTERNS_OUT FILE…
//!
//! The candidates are written to PATTERNS_OUT, one per line, for the reference tool.

use std::io::Write;

use cudapkgs_nix::base32;
use cudapkgs_nix::scan::ReferenceScanner;
use sha2::{Digest, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [count, patterns_out, files @ ..] = args.as_slice() else {
        eprintln!("usage: scan_speed COUNT PATTERNS_OUT FILE…");
        std::process::exit(2);
    };
    let count: u32 = count.parse().expect("COUNT is a number");
    // Hash parts as Nix makes them: base-32 of a 160-bit digest.
    let candidates: Vec<[u8; 32]> = (0..count)
        .map(|i| {
            let digest = Sha256::digest(i.to_le_bytes());
            let text = base32::encode(&digest[..20]);
            text.as_bytes().try_into().expect("32 characters")
        })
        .collect();
    let mut patterns = std::fs::File::create(patterns_out).expect("patterns file");
    for candidate in &candidates {
        patterns.write_all(candidate).expect("write");
        patterns.write_all(b"\n").expect("write");
    }
    let data: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("readable file"))
        .collect();
    let bytes: usize = data.iter().map(Vec::len).sum();
    let mut scanner = ReferenceScanner::new(candidates);
    let started = std::time::Instant::now();
    for file in &data {
        for chunk in file.chunks(1 << 20) {
            scanner.write_all(chunk).expect("scanning cannot fail");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{bytes} {seconds:.4} {}", scanner.found().len());
}
