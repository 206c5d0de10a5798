//! Zip archives opened only when every entry has bytes of its own.
//!
//! A zip's central directory may name the same compressed bytes under any number of
//! names: a 1 MB file then unpacks to a gigabyte per name. No wheel or sdist is written
//! that way, so an archive whose entries share bytes is refused before anything is read
//! from it; and since deflate expands at most about 1000 times, what the entries declare
//! together is bounded by a ratio to the archive's size as well.

use std::io::{self, Read, Seek};

/// The compression ratio to the archive's size beyond which what its entries declare
/// together is refused (NVIDIA's wheels expand 2 to 10 times).
pub const MAX_UNPACKED_RATIO: u64 = 256;

/// What any archive may unpack to, whatever its size.
pub const RATIO_FREE_UNPACKED_BYTES: u64 = 1 << 30;

/// The most bytes an archive (zip or tar) of `archive_bytes` may unpack to in all: 256
/// times its size, or 1 GiB for small ones.
pub fn max_unpacked_bytes(archive_bytes: u64) -> u64 {
    archive_bytes
        .saturating_mul(MAX_UNPACKED_RATIO)
        .max(RATIO_FREE_UNPACKED_BYTES)
}

/// Opens the zip archive in `reader`, refusing one whose entries overlap (each local
/// header and the data after it must be apart from every other entry's) or declare more
/// than [`max_unpacked_bytes`] of the archive's size together. The error is
/// `InvalidData`, naming the entries or the sizes.
pub fn open_zip<R: Read + Seek>(mut reader: R) -> io::Result<zip::ZipArchive<R>> {
    let refused = |message: String| io::Error::new(io::ErrorKind::InvalidData, message);
    let archive_bytes = reader.seek(io::SeekFrom::End(0))?;
    let mut zip = zip::ZipArchive::new(reader)
        .map_err(|e| refused(format!("not a readable zip archive: {e}")))?;
    let bound = max_unpacked_bytes(archive_bytes);
    // The sizes the central directory declares: they hold for entries written with a
    // data descriptor too (streaming writers), whose local headers say 0.
    let mut declared = 0u128;
    // (start of the local header, end of the data, entry index), in the order of the file.
    let mut spans = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let entry = zip
            .by_index_raw(index)
            .map_err(|e| refused(format!("damaged or truncated: entry {index}: {e}")))?;
        declared += u128::from(entry.size());
        let start = entry.header_start();
        let data = entry.data_start().unwrap_or(start);
        let end = data.saturating_add(entry.compressed_size());
        spans.push((start, end, index));
    }
    if declared > u128::from(bound) {
        return Err(refused(format!(
            "its entries declare {declared} bytes, more than {MAX_UNPACKED_RATIO} times the archive's {archive_bytes} bytes (at most {bound}): a zip bomb or a damaged zip file"
        )));
    }
    spans.sort_unstable();
    for pair in spans.windows(2) {
        let [(_, earlier_end, earlier), (later_start, _, later)] = pair else {
            continue;
        };
        if later_start < earlier_end {
            let name = |index: usize| zip.name_for_index(index).unwrap_or("?").to_owned();
            return Err(refused(format!(
                "entries {} and {} share the bytes at offset {later_start}: one compressed stream under several names is how zip bombs multiply, and no wheel is written so",
                name(*earlier),
                name(*later)
            )));
        }
    }
    Ok(zip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A zip of `members`, then `copies`: (new name, existing name) pairs that point at
    /// the existing entry's bytes (a second central-directory entry, no data of its own).
    fn zip_of(members: &[(&str, &[u8])], copies: &[(&str, &str)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            zip.start_file(*name, options).expect("start");
            zip.write_all(data).expect("write");
        }
        for (name, existing) in copies {
            zip.shallow_copy_file(existing, name).expect("copy");
        }
        zip.finish().expect("finish").into_inner()
    }

    #[test]
    fn entries_written_with_a_data_descriptor_are_opened() {
        // A streaming writer cannot seek back, so sizes follow the data.
        let mut zip = zip::ZipWriter::new_stream(Vec::new());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("index.html", options).expect("start");
        zip.write_all(&[b'x'; 10_000]).expect("write");
        let archive = zip.finish().expect("finish").into_inner();
        let read = zip::ZipArchive::new(Cursor::new(archive.clone())).expect("readable");
        assert_eq!(read.decompressed_size(), None, "sizes after the data");
        let zip = open_zip(Cursor::new(archive)).expect("opened");
        assert_eq!(zip.len(), 1);
    }

    #[test]
    fn entries_apart_are_opened() {
        let archive = zip_of(&[("a", b"one"), ("b", b""), ("c/d", &[7; 5000])], &[]);
        let zip = open_zip(Cursor::new(archive)).expect("opened");
        assert_eq!(zip.len(), 3);
    }

    #[test]
    fn entries_sharing_bytes_are_refused() {
        let archive = zip_of(
            &[("p/a", b"data"), ("p/b", b"x")],
            &[("p/0", "p/a"), ("p/1", "p/a")],
        );
        // The zip crate itself reads it: three names for one entry's bytes.
        assert_eq!(
            zip::ZipArchive::new(Cursor::new(archive.clone()))
                .expect("readable")
                .len(),
            4
        );
        let error = open_zip(Cursor::new(archive)).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error
                .to_string()
                .contains("share the bytes at offset 0: one compressed stream under several names"),
            "{error}"
        );
    }

    #[test]
    fn what_entries_declare_is_bounded_by_a_ratio_to_the_archive() {
        assert_eq!(max_unpacked_bytes(1000), 1 << 30);
        assert_eq!(max_unpacked_bytes(16 << 20), 4 << 30);
        assert_eq!(max_unpacked_bytes(u64::MAX), u64::MAX);
        let archive = zip_of(&[("zeros", &vec![0; 3 << 20])], &[]);
        assert!(open_zip(Cursor::new(archive.clone())).is_ok());
        // The same entry declaring 4 GiB in the central directory: past 1 GiB for an
        // archive of a few kilobytes.
        let mut lying = archive.clone();
        let eocd = lying
            .windows(4)
            .rposition(|w| w == b"PK\x05\x06")
            .expect("end of central directory");
        let directory =
            u32::from_le_bytes(lying[eocd + 16..eocd + 20].try_into().expect("4")) as usize;
        lying[directory + 24..directory + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = open_zip(Cursor::new(lying)).expect_err("refused");
        assert!(
            error.to_string().contains(&format!(
                "declare 4294967295 bytes, more than 256 times the archive's {} bytes",
                archive.len()
            )),
            "{error}"
        );
    }
}
