//! Failure signatures: the job, the failing step and the failure's message with what
//! changes from run to run taken out (store hashes, versions, times, temporary folders,
//! absolute folders, long numbers), hashed with SHA-256. The same failure gives the
//! same signature in every process, on every runner, in every run, so it is filed once.

use sha2::{Digest, Sha256};

/// Bumped when the normalisation changes what it keeps: every signature changes with it.
const FORMAT: &str = "cudapkgs-upkeep-signature/1";

/// The signature of `job` failing at `step` with `message`: 64 hex digits.
pub fn signature(job: &str, step: &str, message: &str) -> String {
    let text = format!("{FORMAT}\n{job}\n{step}\n{}", normalise(message));
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// `message` with its varying parts replaced by placeholders and its whitespace
/// collapsed: `<hash>` (Nix store hashes), `<hex>` (hex digests, addresses), `<time>`
/// (dates, clock times, durations), `<version>` (dotted numbers), `<n>` (numbers of
/// three digits or more that stand alone: sizes, ports, process ids), `<tmp>`
/// (temporary names) and `…/` for the folders of absolute paths. Numbers that are part
/// of a word (`sm_100`, `x86_64`, `cu12`) stay.
pub fn normalise(message: &str) -> String {
    let mut words = Vec::new();
    for token in message.split_whitespace() {
        let mut out = Vec::with_capacity(token.len());
        word(&shorten_paths(token), &mut out);
        words.push(String::from_utf8(out).expect("only ASCII ranges are replaced"));
    }
    words.join(" ")
}

/// An absolute path in a token (after quotes or brackets) reduced to `…/` and its last
/// component: runners, users and temporary folders differ, the file's name is what
/// matters.
fn shorten_paths(token: &str) -> String {
    let start = token
        .find(|c: char| !matches!(c, '"' | '\'' | '`' | '(' | '[' | '<' | '='))
        .unwrap_or(token.len());
    if !token[start..].starts_with('/') {
        return token.to_owned();
    }
    let end = token[start..]
        .find(['"', '\'', '`', ')', ']', '>', ',', ';'])
        .map_or(token.len(), |offset| start + offset);
    let mut path = &token[start..end];
    let mut trailing = "";
    if let Some(stripped) = path.strip_suffix(':').or_else(|| path.strip_suffix('.')) {
        trailing = &path[stripped.len()..];
        path = stripped;
    }
    let last = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("");
    format!("{}…/{last}{trailing}{}", &token[..start], &token[end..])
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Copies `token` into `out`, replacing what starts at a word boundary and varies.
fn word(token: &str, out: &mut Vec<u8>) {
    let bytes = token.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if i == 0 || !is_word(bytes[i - 1]) {
            let found = time_at(bytes, i)
                .map(|n| (n, "<time>"))
                .or_else(|| temporary_at(bytes, i).map(|n| (n, "<tmp>")))
                .or_else(|| nix_hash_at(bytes, i).map(|n| (n, "<hash>")))
                .or_else(|| hex_at(bytes, i).map(|n| (n, "<hex>")))
                .or_else(|| number_at(bytes, i));
            if let Some((length, placeholder)) = found {
                out.extend_from_slice(placeholder.as_bytes());
                i += length;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
}

/// Whether a word ends at `end` (the next byte is no letter, digit or `_`).
fn ends_word(bytes: &[u8], end: usize) -> bool {
    bytes.get(end).is_none_or(|&b| !is_word(b))
}

fn digits_at(bytes: &[u8], i: usize) -> usize {
    bytes[i.min(bytes.len())..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count()
}

/// Nix's base-32 alphabet: no `e`, `o`, `u`, `t`.
fn is_nix_base32(byte: u8) -> bool {
    byte.is_ascii_digit()
        || (byte.is_ascii_lowercase() && !matches!(byte, b'e' | b'o' | b'u' | b't'))
}

fn nix_hash_at(bytes: &[u8], i: usize) -> Option<usize> {
    let run = bytes[i..].iter().take_while(|&&b| is_nix_base32(b)).count();
    (run == 32 && ends_word(bytes, i + 32)).then_some(32)
}

/// Sixteen hex digits or more, at least one of them a digit (digests), or eight or
/// more after `0x` (addresses).
fn hex_at(bytes: &[u8], i: usize) -> Option<usize> {
    let prefix = if bytes[i..].starts_with(b"0x") { 2 } else { 0 };
    let least = if prefix == 2 { 8 } else { 16 };
    let digits = &bytes[i + prefix..];
    let run = digits
        .iter()
        .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        .count();
    let has_digit = digits[..run].iter().any(u8::is_ascii_digit);
    (run >= least && has_digit && ends_word(bytes, i + prefix + run)).then_some(prefix + run)
}

/// `tmp` or `.tmp` followed by a random part of six characters or more with a digit or
/// a capital in it (tempfile's and mktemp's names).
fn temporary_at(bytes: &[u8], i: usize) -> Option<usize> {
    let rest = &bytes[i..];
    let prefix = if rest.starts_with(b".tmp") {
        4
    } else if rest.starts_with(b"tmp") {
        3
    } else {
        return None;
    };
    let random = rest[prefix..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let mixed = rest[prefix..prefix + random]
        .iter()
        .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    (random >= 6 && mixed && ends_word(bytes, i + prefix + random)).then_some(prefix + random)
}

/// `2024-05-01`, `2024-05-01T10:00:00.5Z`, `+02:00` offsets, and `10:00:00`.
fn time_at(bytes: &[u8], i: usize) -> Option<usize> {
    let two_digit_pairs = |at: usize, separator: u8, pairs: usize| -> usize {
        let mut n = 0;
        for k in 0..pairs {
            let at = at + n;
            if k > 0 {
                if bytes.get(at) != Some(&separator) || digits_at(bytes, at + 1) != 2 {
                    break;
                }
                n += 3;
            } else if digits_at(bytes, at) == 2 {
                n += 2;
            } else {
                break;
            }
        }
        n
    };
    let mut n = 0;
    if digits_at(bytes, i) == 4
        && bytes.get(i + 4) == Some(&b'-')
        && two_digit_pairs(i + 5, b'-', 2) == 5
    {
        n = 10;
        if matches!(bytes.get(i + n), Some(b'T' | b' ')) && two_digit_pairs(i + n + 1, b':', 2) >= 5
        {
            n += 1;
        } else {
            return ends_word(bytes, i + n).then_some(n);
        }
    }
    let clock = two_digit_pairs(i + n, b':', 3);
    if clock < 5 || (n == 0 && clock < 8) {
        return (n > 0).then_some(n).filter(|&n| ends_word(bytes, i + n));
    }
    n += clock;
    if bytes.get(i + n) == Some(&b'.') {
        n += 1 + digits_at(bytes, i + n + 1);
    }
    if bytes.get(i + n) == Some(&b'Z') {
        n += 1;
    } else if matches!(bytes.get(i + n), Some(b'+' | b'-'))
        && two_digit_pairs(i + n + 1, b':', 2) == 5
    {
        n += 6;
    }
    ends_word(bytes, i + n).then_some(n)
}

/// Dotted numbers (versions), durations (`1.5s`, `20ms`) and long plain numbers.
fn number_at(bytes: &[u8], i: usize) -> Option<(usize, &'static str)> {
    let mut n = digits_at(bytes, i);
    if n == 0 {
        return None;
    }
    let mut dotted = false;
    while bytes.get(i + n) == Some(&b'.') && digits_at(bytes, i + n + 1) > 0 {
        n += 1 + digits_at(bytes, i + n + 1);
        dotted = true;
    }
    for unit in ["ms", "us", "µs", "ns", "min", "s", "h"] {
        if bytes[i + n..].starts_with(unit.as_bytes()) && ends_word(bytes, i + n + unit.len()) {
            return Some((n + unit.len(), "<time>"));
        }
    }
    if dotted {
        return Some((n, "<version>"));
    }
    (n >= 3 && ends_word(bytes, i + n)).then_some((n, "<n>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_varies_between_runs_is_taken_out() {
        let cases = [
            (
                "/nix/store/0c8bi7zcbihzdyjfk3wpb5n2kld7v0gk-libfoo-1.0-lib/lib/libfoo.so.1 needs libbar.so.2",
                "…/libfoo.so.1 needs libbar.so.2",
            ),
            (
                "<hash> 0c8bi7zcbihzdyjfk3wpb5n2kld7v0gk-libcublas-13.1.0.3-lib",
                "<hash> <hash>-libcublas-<version>-lib",
            ),
            (
                "cannot read `/tmp/.tmpAb12Cd/libevil-linux-x86_64-1.0-archive.tar.xz`: gone",
                "cannot read `…/libevil-linux-x86_64-<version>-archive.tar.xz`: gone",
            ),
            ("work folder .tmpQ9xYz2 left", "work folder <tmp> left"),
            (
                "at 2025-06-01T12:34:56.789Z after 3.25s (1200ms), 10:00:00",
                "at <time> after <time> (<time>), <time>",
            ),
            (
                "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 at 0x7ffd5e8c1a20",
                "sha256 <hex> at <hex>",
            ),
            (
                "sm_100 and sm_90 on x86_64 for cu12; 4096 bytes, port 43121, exit 1",
                "sm_100 and sm_90 on x86_64 for cu12; <n> bytes, port <n>, exit 1",
            ),
            ("  many\n\n  spaces\t here ", "many spaces here"),
            ("a directory/ end /srv/logs/", "a directory/ end …/logs"),
        ];
        for (message, expected) in cases {
            assert_eq!(normalise(message), expected, "{message}");
        }
    }

    #[test]
    fn the_same_failure_gives_the_same_signature_and_another_does_not() {
        let job = "libevil/cuda-13/linux-x86_64/any";
        let first = signature(
            job,
            "build",
            "libevil: lib/lib/libevil.so.1 needs libmissing.so.1, which no package of the set provides (in /tmp/.tmpA1b2C3/x, 2025-01-01T00:00:00Z)",
        );
        let again = signature(
            job,
            "build",
            "libevil:  lib/lib/libevil.so.1 needs libmissing.so.1, which no package of the set provides (in /home/runner/work/x, 2025-02-03T04:05:06Z)",
        );
        assert_eq!(first, again);
        assert_ne!(
            first,
            signature(
                job,
                "build",
                "libevil: lib/lib/libevil.so.1 needs libother.so.1, which no package of the set provides"
            )
        );
        assert_ne!(
            first,
            signature("libevil/cuda-12.9/linux-x86_64/any", "build", "x")
        );
        assert_ne!(signature(job, "build", "x"), signature(job, "check", "x"));
        // Deterministic across processes and machines: SHA-256 of the documented text
        // (checked with Python's hashlib), never a per-process hash.
        assert_eq!(
            signature(job, "build", "needs libmissing.so.1"),
            "a3dbd0e5769a6bec010c127907632f79245553e5256f377e33ab039e5108af40"
        );
        assert_eq!(
            signature(job, "build", "needs libmissing.so.1"),
            signature(job, "build", "needs   libmissing.so.1 ")
        );
        assert_eq!(signature("j", "build", "m").len(), 64);
    }
}
