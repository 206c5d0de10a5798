//! Finding references: the 32-character hash parts of store paths inside a byte stream
//! (a NAR, so that file names and link targets count too).

use std::collections::HashSet;
use std::io::{self, Write};

const HASH_LEN: usize = 32;

fn in_alphabet(byte: u8) -> bool {
    matches!(byte, b'0'..=b'9' | b'a'..=b'd' | b'f'..=b'n' | b'p'..=b's' | b'v'..=b'z')
}

/// A writer that records which of the candidate hash parts pass through it.
#[derive(Debug)]
pub struct ReferenceScanner {
    candidates: HashSet<[u8; HASH_LEN]>,
    found: HashSet<[u8; HASH_LEN]>,
    /// The last bytes of the previous write, so hashes spanning two writes are seen.
    tail: Vec<u8>,
}

impl ReferenceScanner {
    pub fn new(candidates: impl IntoIterator<Item = [u8; HASH_LEN]>) -> Self {
        Self {
            candidates: candidates.into_iter().collect(),
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
        // A window of 32 bytes is checked from its end backwards; a byte outside the
        // alphabet lets the search jump past it.
        let mut start = 0;
        while start + HASH_LEN <= data.len() {
            let window = &data[start..start + HASH_LEN];
            if let Some(bad) = window.iter().rposition(|&b| !in_alphabet(b)) {
                start += bad + 1;
                continue;
            }
            let mut key = [0u8; HASH_LEN];
            key.copy_from_slice(window);
            if self.candidates.contains(&key) {
                self.found.insert(key);
            }
            start += 1;
        }
    }
}

impl Write for ReferenceScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.candidates.is_empty() {
            return Ok(buf.len());
        }
        let mut joined = std::mem::take(&mut self.tail);
        let take = buf.len().min(HASH_LEN - 1);
        joined.extend_from_slice(&buf[..take]);
        self.scan(&joined);
        self.scan(buf);
        let keep = buf.len().min(HASH_LEN - 1);
        self.tail.clear();
        self.tail.extend_from_slice(&buf[buf.len() - keep..]);
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
}
