//! tar.xz archives written byte by byte, so that tests can make any name, link and
//! shape (hostile ones included) in NVIDIA's naming.

use std::io::Write;
use std::path::{Path, PathBuf};

/// One tar member.
pub(crate) struct Member<'a> {
    pub(crate) name: &'a str,
    /// The ustar type: `b'0'` file, `b'1'` hard link, `b'2'` symbolic link, `b'5'` folder.
    pub(crate) kind: u8,
    pub(crate) mode: u32,
    pub(crate) link: &'a str,
    pub(crate) data: &'a [u8],
}

pub(crate) fn file<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind: b'0',
        mode: 0o644,
        link: "",
        data,
    }
}

pub(crate) fn symlink<'a>(name: &'a str, link: &'a str) -> Member<'a> {
    Member {
        name,
        kind: b'2',
        mode: 0o777,
        link,
        data: b"",
    }
}

pub(crate) fn hard_link<'a>(name: &'a str, link: &'a str) -> Member<'a> {
    Member {
        name,
        kind: b'1',
        mode: 0o644,
        link,
        data: b"",
    }
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}", width = field.len() - 1);
    field[..text.len()].copy_from_slice(text.as_bytes());
}

/// The members as a ustar stream.
pub(crate) fn tar(members: &[Member<'_>]) -> Vec<u8> {
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
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        tar.extend_from_slice(&header);
        tar.extend_from_slice(m.data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// `dir/<package>-linux-x86_64-<version>-archive.tar.xz` holding `members`: the name
/// `build PACKAGE=FILE` takes the version from.
pub(crate) fn nvidia_archive(
    dir: &Path,
    package: &str,
    version: &str,
    members: &[Member<'_>],
) -> PathBuf {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
    encoder.write_all(&tar(members)).expect("compress");
    let path = dir.join(format!("{package}-linux-x86_64-{version}-archive.tar.xz"));
    std::fs::write(&path, encoder.finish().expect("compress")).expect("write");
    path
}
