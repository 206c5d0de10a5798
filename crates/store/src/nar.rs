//! NAR, Nix's canonical serialisation of a file tree: written from a folder, streaming,
//! byte-identical to `nix-store --dump`.
//!
//! Every token is a little-endian u64 length, the bytes, and zero padding to a multiple
//! of 8. Directory entries are sorted by their raw names; only the owner-execute bit of
//! regular files is recorded.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::Error;

fn token(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)?;
    let padding = (8 - bytes.len() % 8) % 8;
    out.write_all(&[0u8; 8][..padding])
}

/// Writes the NAR of `path` (a file, a symbolic link or a folder) to `out`.
pub fn dump(path: &Path, out: &mut impl Write) -> Result<(), Error> {
    token(out, b"nix-archive-1").map_err(|e| Error::io(path, e))?;
    node(path, out)
}

fn node(path: &Path, out: &mut impl Write) -> Result<(), Error> {
    let io = |e| Error::io(path, e);
    let metadata = path.symlink_metadata().map_err(io)?;
    token(out, b"(").map_err(io)?;
    token(out, b"type").map_err(io)?;
    let kind = metadata.file_type();
    if kind.is_symlink() {
        token(out, b"symlink").map_err(io)?;
        token(out, b"target").map_err(io)?;
        let target = std::fs::read_link(path).map_err(io)?;
        token(out, target.as_os_str().as_bytes()).map_err(io)?;
    } else if kind.is_file() {
        token(out, b"regular").map_err(io)?;
        if metadata.permissions().mode() & 0o100 != 0 {
            token(out, b"executable").map_err(io)?;
            token(out, b"").map_err(io)?;
        }
        token(out, b"contents").map_err(io)?;
        contents(path, metadata.len(), out)?;
    } else if kind.is_dir() {
        token(out, b"directory").map_err(io)?;
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(path)
            .map_err(io)?
            .map(|entry| entry.map(|e| e.file_name().as_bytes().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        names.sort();
        for name in names {
            token(out, b"entry").map_err(io)?;
            token(out, b"(").map_err(io)?;
            token(out, b"name").map_err(io)?;
            token(out, &name).map_err(io)?;
            token(out, b"node").map_err(io)?;
            node(&path.join(std::ffi::OsStr::from_bytes(&name)), out)?;
            token(out, b")").map_err(io)?;
        }
    } else {
        return Err(Error::Unsupported {
            path: path.to_owned(),
            what: "not a regular file, symbolic link or folder".into(),
        });
    }
    token(out, b")").map_err(io)
}

/// A regular file's contents as one token, streamed; the file must keep its size.
fn contents(path: &Path, len: u64, out: &mut impl Write) -> Result<(), Error> {
    let io = |e| Error::io(path, e);
    out.write_all(&len.to_le_bytes()).map_err(io)?;
    let mut file = File::open(path).map_err(io)?;
    let copied = io::copy(&mut (&mut file).take(len), out).map_err(io)?;
    if copied != len {
        return Err(Error::Changed(path.to_owned()));
    }
    let padding = usize::try_from((8 - len % 8) % 8).unwrap_or(0);
    out.write_all(&[0u8; 8][..padding]).map_err(io)
}

/// A writer that hashes and counts what passes through it.
#[derive(Debug, Default)]
pub struct HashingWriter {
    hasher: Sha256,
    len: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl HashingWriter {
    /// The SHA-256 and the length of everything written.
    pub fn finish(self) -> ([u8; 32], u64) {
        (self.hasher.finalize().into(), self.len)
    }
}

/// The SHA-256 of the NAR of `path`, and the NAR's size.
pub fn hash(path: &Path) -> Result<([u8; 32], u64), Error> {
    let mut writer = io::BufWriter::with_capacity(1 << 20, HashingWriter::default());
    dump(path, &mut writer)?;
    let writer = writer
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    Ok(writer.finish())
}
