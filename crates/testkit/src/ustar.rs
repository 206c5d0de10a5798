//! tar streams written byte by byte, so that tests can make any name, type, mode and
//! link (hostile ones included), and their xz compression.

use std::io::Write;

/// One tar member.
#[derive(Debug)]
pub struct Member<'a> {
    pub name: &'a str,
    /// The ustar type: `b'0'` file, `b'1'` hard link, `b'2'` symbolic link, `b'5'`
    /// folder, `b'x'` PAX header, `b'L'`/`b'K'` GNU long name/link.
    pub kind: u8,
    pub mode: u32,
    pub link: &'a str,
    pub data: &'a [u8],
}

/// A regular file, mode 644.
pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind: b'0',
        mode: 0o644,
        link: "",
        data,
    }
}

/// A folder, mode 755.
pub fn folder(name: &str) -> Member<'_> {
    Member {
        name,
        kind: b'5',
        mode: 0o755,
        link: "",
        data: b"",
    }
}

/// A symbolic link to `link`.
pub fn symlink<'a>(name: &'a str, link: &'a str) -> Member<'a> {
    Member {
        name,
        kind: b'2',
        mode: 0o777,
        link,
        data: b"",
    }
}

/// A hard link to the earlier member `link`.
pub fn hard_link<'a>(name: &'a str, link: &'a str) -> Member<'a> {
    Member {
        name,
        kind: b'1',
        mode: 0o644,
        link,
        data: b"",
    }
}

/// A PAX extended header holding `records` for the member after it.
pub fn pax_header<'a>(name: &'a str, records: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind: b'x',
        mode: 0o644,
        link: "",
        data: records,
    }
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}", width = field.len() - 1);
    field[..text.len()].copy_from_slice(text.as_bytes());
}

/// Fills in the checksum of a 512-byte header.
fn checksum(header: &mut [u8]) {
    header[148..156].copy_from_slice(b"        ");
    let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Rewrites the size a written header declares (and its checksum): for a member that
/// claims more than it holds.
pub fn declare_size(header: &mut [u8], size: u64) {
    octal(&mut header[124..136], size);
    checksum(header);
}

/// The members as a ustar stream, owned by root, all dated 2023-11-14.
pub fn tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut tar = Vec::new();
    for m in members {
        let mut header = [0u8; 512];
        header[..m.name.len()].copy_from_slice(m.name.as_bytes());
        octal(&mut header[100..108], u64::from(m.mode));
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], m.data.len() as u64);
        octal(&mut header[136..148], 1_700_000_000);
        header[156] = m.kind;
        header[157..157 + m.link.len()].copy_from_slice(m.link.as_bytes());
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        checksum(&mut header);
        tar.extend_from_slice(&header);
        tar.extend_from_slice(m.data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// `data` compressed with xz at level 1.
pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
    encoder.write_all(data).expect("compress");
    encoder.finish().expect("compress")
}
