//! Nix's base-32: its own alphabet (no e, o, u, t), digits emitted from the most
//! significant 5-bit group of the little-endian number.

/// The 32 digits, in order.
pub(crate) const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Encodes bytes the way Nix prints hashes and store path hashes.
pub fn encode(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let len = (bytes.len() * 8 - 1) / 5 + 1;
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let bit = n * 5;
        let (i, j) = (bit / 8, bit % 8);
        let low = u16::from(bytes[i]) >> j;
        let high = bytes.get(i + 1).map_or(0, |&b| u16::from(b) << (8 - j));
        out.push(char::from(ALPHABET[usize::from((low | high) & 0x1f)]));
    }
    out
}

/// Decodes Nix base-32 into `len` bytes; `None` for characters outside the alphabet,
/// the wrong length, or bits set beyond `len` bytes.
pub fn decode(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != (len * 8).saturating_sub(1) / 5 + 1 || len == 0 {
        return None;
    }
    let mut out = vec![0u8; len];
    for (n, c) in text.bytes().rev().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == c)?;
        let digit = u16::try_from(digit).ok()?;
        let bit = n * 5;
        let (i, j) = (bit / 8, bit % 8);
        let value = digit << j;
        out[i] |= (value & 0xff) as u8;
        let carry = (value >> 8) as u8;
        match out.get_mut(i + 1) {
            Some(next) => *next |= carry,
            None if carry != 0 => return None,
            None => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_round_trips() {
        // The 32 zero bytes and the SHA-256 of the empty string, as Nix prints them.
        assert_eq!(encode(&[0u8; 32]), "0".repeat(52));
        let empty_sha256 = [
            0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
            0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
            0x78, 0x52, 0xb8, 0x55,
        ];
        assert_eq!(
            encode(&empty_sha256),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        for len in [1usize, 5, 20, 32] {
            let bytes: Vec<u8> = (0..len)
                .map(|i| u8::try_from((i * 37 + 11) % 256).expect("byte"))
                .collect();
            assert_eq!(decode(&encode(&bytes), len), Some(bytes), "{len}");
        }
        assert_eq!(encode(&[0xff; 20]).len(), 32);
        assert_eq!(decode("e".repeat(32).as_str(), 20), None);
        assert_eq!(decode("0", 20), None);
    }
}
