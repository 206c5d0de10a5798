//! Finding references: the 32-character hash parts of store paths inside a byte stream
//! (a NAR, so that file names and link targets count too).

use std::collections::HashSet;
use std::io::{self, Write};

use crate::store_path::HASH_LEN;

/// Each byte's value in Nix's base-32 alphabet, or `NOT_BASE32`.
const NOT_BASE32: u8 = 0xff;
const DIGIT: [u8; 256] = {
    let alphabet = crate::base32::ALPHABET;
    let mut table = [NOT_BASE32; 256];
    let mut i: u8 = 0;
    while (i as usize) < alphabet.len() {
        table[alphabet[i as usize] as usize] = i;
        i += 1;
    }
    table
};

fn in_alphabet(byte: u8) -> bool {
    DIGIT[byte as usize] != NOT_BASE32
}

/// The first three characters of a hash part as a 15-bit number.
fn prefix(window: &[u8]) -> usize {
    (usize::from(DIGIT[window[0] as usize]) << 10)
        | (usize::from(DIGIT[window[1] as usize]) << 5)
        | usize::from(DIGIT[window[2] as usize])
}

/// A writer that records which of the candidate hash parts pass through it.
#[derive(Debug)]
pub struct ReferenceScanner {
    candidates: HashSet<[u8; HASH_LEN]>,
    /// Which three-character prefixes some candidate has: most windows of a long run of
    /// base-32 characters (text) are dismissed by this table, without hashing.
    prefixes: Box<[bool]>,
    found: HashSet<[u8; HASH_LEN]>,
    /// The last bytes of the previous write, so hashes spanning two writes are seen.
    tail: Vec<u8>,
}

impl ReferenceScanner {
    pub fn new(candidates: impl IntoIterator<Item = [u8; HASH_LEN]>) -> Self {
        let candidates: HashSet<[u8; HASH_LEN]> = candidates
            .into_iter()
            .filter(|c| c.iter().all(|&b| in_alphabet(b)))
            .collect();
        let mut prefixes = vec![false; 1 << 15].into_boxed_slice();
        for candidate in &candidates {
            prefixes[prefix(candidate)] = true;
        }
        Self {
            candidates,
            prefixes,
            found: HashSet::new(),
            tail: Vec::with_capacity(HASH_LEN),
        }
    }

    /// The hash parts seen.
    pub fn found(&self) -> &HashSet<[u8; HASH_LEN]> {
        &self.found
    }

    /// The hash parts seen, taken.
    pub fn into_found(self) -> HashSet<[u8; HASH_LEN]> {
        self.found
    }

    fn scan(&mut self, data: &[u8]) {
        let mut start = 0;
        while start + HASH_LEN <= data.len() {
            // A window is checked from its end backwards; a byte outside the alphabet
            // lets the search jump past it (in binaries, most windows end there).
            let window = &data[start..start + HASH_LEN];
            if let Some(bad) = window.iter().rposition(|&b| !in_alphabet(b)) {
                start += bad + 1;
                continue;
            }
            // Then the window slides one byte at a time while the run of base-32
            // characters goes on, checking only the byte that enters.
            loop {
                let window = &data[start..start + HASH_LEN];
                if self.prefixes[prefix(window)] {
                    let key: [u8; HASH_LEN] = window.try_into().expect("32 bytes");
                    if self.candidates.contains(&key) {
                        self.found.insert(key);
                    }
                }
                let entering = start + HASH_LEN;
                if entering == data.len() {
                    return;
                }
                if !in_alphabet(data[entering]) {
                    start = entering + 1;
                    break;
                }
                start += 1;
            }
        }
    }
}

impl Write for ReferenceScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.candidates.is_empty() {
            return Ok(buf.len());
        }
        // The last 31 bytes seen before `buf`, joined with its first 31, hold every
        // hash that spans the two.
        let mut joined = std::mem::take(&mut self.tail);
        let take = buf.len().min(HASH_LEN - 1);
        joined.extend_from_slice(&buf[..take]);
        self.scan(&joined);
        self.scan(buf);
        if buf.len() >= HASH_LEN - 1 {
            joined.clear();
            joined.extend_from_slice(&buf[buf.len() - (HASH_LEN - 1)..]);
        } else {
            // A short write: `joined` is the old tail and all of `buf`.
            joined.drain(..joined.len().saturating_sub(HASH_LEN - 1));
        }
        self.tail = joined;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hashes_anywhere_even_across_writes() {
        let a = *b"6x6xx6w1j6jd5dmp3kb1ihvjxlri9vai";
        let b = *b"z3n6ml62lc6l9glpaz6fq7fvi2rks9vq";
        let mut scanner = ReferenceScanner::new([a, b]);
        let text = b"RUNPATH=/nix/store/6x6xx6w1j6jd5dmp3kb1ihvjxlri9vai-tree/lib:";
        let (first, second) = text.split_at(30);
        scanner.write_all(first).expect("write");
        scanner.write_all(second).expect("write");
        assert_eq!(scanner.found().len(), 1);
        assert!(scanner.found().contains(&a));
        // Not a hash: an `e` breaks the alphabet.
        let mut scanner = ReferenceScanner::new([a]);
        scanner
            .write_all(b"6x6xx6w1j6jd5dmp3kb1ihvjxlri9vae")
            .expect("write");
        assert!(scanner.found().is_empty());
    }

    #[test]
    fn agrees_with_a_naive_search_on_runs_and_noise() {
        let candidates: Vec<[u8; 32]> = [
            *b"6x6xx6w1j6jd5dmp3kb1ihvjxlri9vai",
            *b"z3n6ml62lc6l9glpaz6fq7fvi2rks9vq",
            *b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ]
        .to_vec();
        // Noise made of base-32 characters and a few others, with the candidates
        // planted inside long runs, back to back, and at the edges of writes.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut data: Vec<u8> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"0123456789abcdfghijklmnpqrsvwxyz/-\0"[(state % 35) as usize]
            })
            .collect();
        data[100..132].copy_from_slice(&candidates[0]);
        data[132..164].copy_from_slice(&candidates[1]);
        data[5000..5032].copy_from_slice(&candidates[2]);
        data[5032..5040].copy_from_slice(b"aaaaaaaa");
        let naive: HashSet<[u8; 32]> = data
            .windows(32)
            .filter_map(|w| candidates.iter().find(|c| c[..] == *w).copied())
            .collect();
        assert_eq!(naive.len(), 3);
        for chunk in [1, 7, 31, 32, 33, 4096, 20_000] {
            let mut scanner = ReferenceScanner::new(candidates.clone());
            for piece in data.chunks(chunk) {
                scanner.write_all(piece).expect("write");
            }
            assert_eq!(scanner.found(), &naive, "writes of {chunk} bytes");
        }
    }
}
