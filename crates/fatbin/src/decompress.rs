//! Entry contents, decompressed when needed. The header's uncompressed size is checked
//! against what comes out, and no allocation is sized by an unchecked header value.

use std::borrow::Cow;
use std::io::Read;

use crate::container::{Compression, Entry};
use crate::error::Error;

/// LZ4 cannot expand data by more than 255:1, so a header claiming more is lying.
const LZ4_MAX_RATIO: u64 = 255;

/// The entry's content, given the bytes of the file it is in: the payload itself, or
/// its decompressed form.
pub fn content<'d>(entry: &Entry, file: &'d [u8]) -> Result<Cow<'d, [u8]>, Error> {
    let stored = entry.stored(file)?;
    match entry.compression() {
        Compression::None => Ok(Cow::Borrowed(stored)),
        Compression::Lz4 => lz4(entry, stored).map(Cow::Owned),
        Compression::Zstd => zstd(entry, stored).map(Cow::Owned),
        Compression::Unknown => Err(Error::Decompress {
            offset: entry.offset,
            codec: "unknown",
            problem: format!(
                "flags {:#x} name no codec this reader decodes",
                entry.flags.0
            ),
        }),
    }
}

fn lz4(entry: &Entry, input: &[u8]) -> Result<Vec<u8>, Error> {
    let expected = entry.uncompressed_size;
    let error = |problem: String| Error::Decompress {
        offset: entry.offset,
        codec: "lz4",
        problem,
    };
    if expected > (input.len() as u64 + 16) * LZ4_MAX_RATIO {
        return Err(error(format!(
            "header claims {expected} bytes from {} compressed, beyond LZ4's 255:1 limit",
            input.len()
        )));
    }
    let mut output =
        vec![0u8; usize::try_from(expected).map_err(|_| error("size too large".into()))?];
    let written =
        lz4_flex::block::decompress_into(input, &mut output).map_err(|e| error(e.to_string()))?;
    if written as u64 != expected {
        return Err(error(format!(
            "produced {written} bytes, header says {expected}"
        )));
    }
    Ok(output)
}

fn zstd(entry: &Entry, input: &[u8]) -> Result<Vec<u8>, Error> {
    let expected = entry.uncompressed_size;
    let error = |problem: String| Error::Decompress {
        offset: entry.offset,
        codec: "zstd",
        problem,
    };
    let decoder =
        zstd::stream::read::Decoder::with_buffer(input).map_err(|e| error(e.to_string()))?;
    // The buffer grows with what the decoder really produces, one byte past the
    // promise at most.
    let mut output = Vec::new();
    decoder
        .take(expected.saturating_add(1))
        .read_to_end(&mut output)
        .map_err(|e| error(e.to_string()))?;
    if output.len() as u64 != expected {
        return Err(error(format!(
            "produced {}{} bytes, header says {expected}",
            output.len(),
            if output.len() as u64 > expected {
                " or more"
            } else {
                ""
            }
        )));
    }
    Ok(output)
}

/// The first `len` bytes of the entry's content (fewer if the content is shorter),
/// decoding no more than needed: enough to read a cubin's ELF header without
/// decompressing the whole cubin.
pub fn content_prefix(entry: &Entry, file: &[u8], len: usize) -> Result<Vec<u8>, Error> {
    let stored = entry.stored(file)?;
    match entry.compression() {
        Compression::None => Ok(stored[..len.min(stored.len())].to_vec()),
        Compression::Lz4 => lz4_prefix(stored, len).map_err(|problem| Error::Decompress {
            offset: entry.offset,
            codec: "lz4",
            problem,
        }),
        Compression::Zstd => {
            let error = |problem: String| Error::Decompress {
                offset: entry.offset,
                codec: "zstd",
                problem,
            };
            let decoder = zstd::stream::read::Decoder::with_buffer(stored)
                .map_err(|e| error(e.to_string()))?;
            let mut output = Vec::with_capacity(len);
            decoder
                .take(len as u64)
                .read_to_end(&mut output)
                .map_err(|e| error(e.to_string()))?;
            Ok(output)
        }
        Compression::Unknown => content(entry, file).map(|c| c[..len.min(c.len())].to_vec()),
    }
}

/// Decodes an LZ4 raw block until `len` bytes are out.
fn lz4_prefix(input: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::with_capacity(len + 64);
    let mut pos = 0usize;
    let byte = |pos: usize| {
        input
            .get(pos)
            .copied()
            .ok_or_else(|| "block ends early".to_owned())
    };
    let extended = |pos: &mut usize, mut value: usize| -> Result<usize, String> {
        loop {
            let b = byte(*pos)?;
            *pos += 1;
            value += usize::from(b);
            if b != 255 {
                return Ok(value);
            }
        }
    };
    while out.len() < len && pos < input.len() {
        let token = byte(pos)?;
        pos += 1;
        let mut literals = usize::from(token >> 4);
        if literals == 15 {
            literals = extended(&mut pos, literals)?;
        }
        let literal_end = pos
            .checked_add(literals)
            .filter(|end| *end <= input.len())
            .ok_or("literals run past the block")?;
        out.extend_from_slice(&input[pos..literal_end]);
        pos = literal_end;
        if pos == input.len() || out.len() >= len {
            break;
        }
        let offset = usize::from(u16::from_le_bytes([byte(pos)?, byte(pos + 1)?]));
        pos += 2;
        let mut match_len = usize::from(token & 0x0f);
        if match_len == 15 {
            match_len = extended(&mut pos, match_len)?;
        }
        match_len += 4;
        if offset == 0 || offset > out.len() {
            return Err(format!("match offset {offset} points before the output"));
        }
        let start = out.len() - offset;
        for i in 0..match_len.min(len.saturating_sub(out.len()) + 1) {
            let b = out[start + i];
            out.push(b);
        }
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::tests::{container_bytes, entry_bytes};
    use crate::container::{EntryFlags, containers};

    #[allow(clippy::unnecessary_wraps, reason = "entry_bytes takes the Option")]
    fn sizes(stored: &[u8], uncompressed: impl TryInto<u64>) -> Option<(u32, u64)> {
        let stored = u32::try_from(stored.len()).expect("small");
        Some((stored, uncompressed.try_into().ok().expect("fits")))
    }

    fn first_entry(data: &[u8]) -> Entry {
        containers(data, 0, data.len() as u64)
            .next()
            .expect("container")
            .expect("ok")
            .entries(data)
            .next()
            .expect("entry")
            .expect("ok")
    }

    #[test]
    fn round_trips_lz4_and_zstd_and_plain() {
        let text = b".version 9.0\n.target sm_90\n".repeat(20);
        let lz = lz4_flex::block::compress(&text);
        let data = container_bytes(&[entry_bytes(
            1,
            90,
            0x11 | EntryFlags::LZ4,
            &lz,
            sizes(&lz, text.len()),
        )]);
        assert_eq!(
            content(&first_entry(&data), &data).expect("lz4").as_ref(),
            text.as_slice()
        );

        let zs = zstd::bulk::compress(&text, 3).expect("compress");
        let data = container_bytes(&[entry_bytes(
            1,
            90,
            0x11 | EntryFlags::ZSTD,
            &zs,
            sizes(&zs, text.len()),
        )]);
        assert_eq!(
            content(&first_entry(&data), &data).expect("zstd").as_ref(),
            text.as_slice()
        );

        let data = container_bytes(&[entry_bytes(2, 90, 0x11, b"12345678", None)]);
        assert!(matches!(
            content(&first_entry(&data), &data).expect("plain"),
            Cow::Borrowed(b"12345678")
        ));
    }

    #[test]
    fn prefixes_match_full_decompression() {
        let mut text = b"\x7fELF\x02\x01\x01\x41\x08".to_vec();
        text.extend(std::iter::repeat_n(0u8, 200));
        text.extend_from_slice(&b"kernel_name_".repeat(40));
        let lz = lz4_flex::block::compress(&text);
        let data = container_bytes(&[entry_bytes(
            2,
            90,
            EntryFlags::LZ4,
            &lz,
            sizes(&lz, text.len()),
        )]);
        let entry = first_entry(&data);
        for len in [0, 1, 9, 64, 211, 300, text.len(), text.len() + 10] {
            assert_eq!(
                content_prefix(&entry, &data, len).expect("lz4"),
                text[..len.min(text.len())],
                "{len}"
            );
        }
        let zs = zstd::bulk::compress(&text, 3).expect("compress");
        let data = container_bytes(&[entry_bytes(
            2,
            90,
            EntryFlags::ZSTD,
            &zs,
            sizes(&zs, text.len()),
        )]);
        assert_eq!(
            content_prefix(&first_entry(&data), &data, 64).expect("zstd"),
            text[..64]
        );
        assert!(lz4_prefix(&[0x0f, 1, 0], 10).is_err());
    }

    #[test]
    fn wrong_sizes_and_lies_are_errors() {
        let text = b"abcdefgh".repeat(64);
        let zs = zstd::bulk::compress(&text, 3).expect("compress");
        for claimed in [text.len() as u64 - 1, text.len() as u64 + 1] {
            let data = container_bytes(&[entry_bytes(
                1,
                90,
                EntryFlags::ZSTD,
                &zs,
                sizes(&zs, claimed),
            )]);
            let err = content(&first_entry(&data), &data)
                .expect_err("mismatch")
                .to_string();
            assert!(err.contains("header says"), "{err}");
        }
        let lz = lz4_flex::block::compress(&text);
        let data = container_bytes(&[entry_bytes(
            1,
            90,
            EntryFlags::LZ4,
            &lz,
            sizes(&lz, 1u64 << 40),
        )]);
        let err = content(&first_entry(&data), &data)
            .expect_err("lie")
            .to_string();
        assert!(err.contains("255:1"), "{err}");
        let data = container_bytes(&[entry_bytes(
            1,
            90,
            EntryFlags::ZSTD,
            b"notzstd!",
            Some((8, 8)),
        )]);
        assert!(content(&first_entry(&data), &data).is_err());
    }
}
