//! NAR, Nix's canonical serialisation of a file tree: written from a folder, streaming,
//! byte-identical to `nix-store --dump`.
//!
//! Every token is a little-endian u64 length, the bytes, and zero padding to a multiple
//! of 8. Directory entries are sorted by their raw names; only the owner-execute bit of
//! regular files is recorded.
//!
//! A tree is read through folder handles: each entry is looked up in the folder that
//! listed it, without following links, and opened only if it is still the node that was
//! looked up, so a tree that changes while it is read cannot lead the reader out of it
//! (or into a FIFO that never answers).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use sha2::{Digest, Sha256};

use crate::error::Error;

fn token(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)?;
    let padding = (8 - bytes.len() % 8) % 8;
    out.write_all(&[0u8; 8][..padding])
}

/// What a node looked like when it was read: everything that changes when it is written,
/// replaced, made executable, or (for a folder) gains or loses an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    device: u64,
    inode: u64,
    mode: u32,
    size: i128,
    /// Nanoseconds since the epoch.
    modified: i128,
    changed: i128,
}

impl Stamp {
    pub fn of(stat: &Stat) -> Stamp {
        let nanos = |seconds: i128, nanos: i128| seconds * 1_000_000_000 + nanos;
        Stamp {
            device: stat.st_dev,
            inode: stat.st_ino,
            mode: stat.st_mode,
            size: i128::from(stat.st_size),
            modified: nanos(i128::from(stat.st_mtime), i128::from(stat.st_mtime_nsec)),
            changed: nanos(i128::from(stat.st_ctime), i128::from(stat.st_ctime_nsec)),
        }
    }

    /// Whether the node was modified or changed at `nanos` (since the epoch) or later.
    pub fn touched_since(&self, nanos: i128) -> bool {
        self.modified >= nanos || self.changed >= nanos
    }

    /// Whether both times are whole seconds: the file system keeps no finer ones.
    pub fn has_whole_seconds(&self) -> bool {
        self.modified % 1_000_000_000 == 0 && self.changed % 1_000_000_000 == 0
    }

    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }
}

/// A node of a tree as it was serialised: its path under the tree (empty for the tree
/// itself) and its stamp.
#[derive(Debug, Clone)]
pub struct Seen {
    pub relative: PathBuf,
    pub stamp: Stamp,
}

/// `tree` and `relative` joined, `tree` itself for an empty `relative` (a file named as
/// `tree/` would not be found).
pub fn under(tree: &Path, relative: &Path) -> PathBuf {
    if relative.as_os_str().is_empty() {
        tree.to_owned()
    } else {
        tree.join(relative)
    }
}

/// A node opened for reading.
enum Opened {
    File(File),
    Folder(OwnedFd),
    Link(Vec<u8>),
}

/// Where a node is: looked up by `name` in the folder `folder` (the current folder for
/// the tree itself), called `path` in messages.
#[derive(Clone, Copy)]
struct Place<'a> {
    folder: BorrowedFd<'a>,
    name: &'a OsStr,
    path: &'a Path,
    /// The tree itself: its absence is the caller's mistake, not a change.
    top: bool,
}

impl Place<'_> {
    /// An error from looking at this node: for a node found in a listing, being gone or
    /// being of another kind than a moment ago means the tree changed.
    fn failed(&self, error: rustix::io::Errno) -> Error {
        let changed = [
            rustix::io::Errno::NOENT,
            rustix::io::Errno::LOOP,
            rustix::io::Errno::NOTDIR,
            rustix::io::Errno::INVAL,
        ];
        if !self.top && changed.contains(&error) {
            Error::Changed(self.path.to_owned())
        } else {
            Error::io(self.path, error.into())
        }
    }

    /// Looks the node up and opens it, recording it in `seen` (as `relative`).
    fn open_seen(
        &self,
        relative: &Path,
        seen: Option<&mut Vec<Seen>>,
    ) -> Result<(Stat, Opened), Error> {
        let stat = self.stat()?;
        let opened = self.open(&stat)?;
        if let Some(seen) = seen {
            seen.push(Seen {
                relative: relative.to_owned(),
                stamp: Stamp::of(&stat),
            });
        }
        Ok((stat, opened))
    }

    fn stat(&self) -> Result<Stat, Error> {
        rustix::fs::statat(self.folder, self.name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.failed(e))
    }

    /// Opens the node `stat` describes, refusing anything but files, folders and links
    /// (without opening them: a FIFO would block) and a node replaced since `stat`.
    fn open(&self, stat: &Stat) -> Result<Opened, Error> {
        let unsupported = || Error::Unsupported {
            path: self.path.to_owned(),
            what: "not a regular file, symbolic link or folder".into(),
        };
        let flags = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(self.folder, self.name, Vec::new())
                    .map_err(|e| self.failed(e))?;
                return Ok(Opened::Link(target.into_bytes()));
            }
            // Non-blocking: should a FIFO take the file's place, opening it returns at once.
            FileType::RegularFile => OFlags::NONBLOCK,
            FileType::Directory => OFlags::DIRECTORY,
            _ => return Err(unsupported()),
        };
        let fd = rustix::fs::openat(
            self.folder,
            self.name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | flags,
            Mode::empty(),
        )
        .map_err(|e| self.failed(e))?;
        let opened = rustix::fs::fstat(&fd).map_err(|e| self.failed(e))?;
        let same = opened.st_dev == stat.st_dev
            && opened.st_ino == stat.st_ino
            && FileType::from_raw_mode(opened.st_mode) == FileType::from_raw_mode(stat.st_mode);
        if !same {
            return Err(Error::Changed(self.path.to_owned()));
        }
        Ok(if flags == OFlags::DIRECTORY {
            Opened::Folder(fd)
        } else {
            Opened::File(File::from(fd))
        })
    }
}

/// The names in an opened folder, sorted by their bytes.
fn names(folder: &OwnedFd, path: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let io = |e: rustix::io::Errno| Error::io(path, e.into());
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(folder).map_err(io)? {
        let name = entry.map_err(io)?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Writes the NAR of `path` (a file, a symbolic link or a folder) to `out`.
pub fn dump(path: &Path, out: &mut impl Write) -> Result<(), Error> {
    dump_node(path, out, None)
}

/// Writes the NAR of `path` to `out`, recording every node as it was read.
pub fn dump_seeing(path: &Path, out: &mut impl Write, seen: &mut Vec<Seen>) -> Result<(), Error> {
    dump_node(path, out, Some(seen))
}

fn dump_node(path: &Path, out: &mut impl Write, seen: Option<&mut Vec<Seen>>) -> Result<(), Error> {
    token(out, b"nix-archive-1").map_err(|e| Error::io(path, e))?;
    let place = Place {
        folder: rustix::fs::CWD,
        name: path.as_os_str(),
        path,
        top: true,
    };
    node(place, Path::new(""), out, seen)
}

fn node(
    place: Place<'_>,
    relative: &Path,
    out: &mut impl Write,
    mut seen: Option<&mut Vec<Seen>>,
) -> Result<(), Error> {
    let path = place.path;
    let io = |e| Error::io(path, e);
    refuse_too_deep(path, relative)?;
    let (stat, opened) = place.open_seen(relative, seen.as_deref_mut())?;
    token(out, b"(").map_err(io)?;
    token(out, b"type").map_err(io)?;
    match opened {
        Opened::Link(target) => {
            token(out, b"symlink").map_err(io)?;
            token(out, b"target").map_err(io)?;
            token(out, &target).map_err(io)?;
        }
        Opened::File(file) => {
            token(out, b"regular").map_err(io)?;
            if stat.st_mode & 0o100 != 0 {
                token(out, b"executable").map_err(io)?;
                token(out, b"").map_err(io)?;
            }
            token(out, b"contents").map_err(io)?;
            let len = u64::try_from(stat.st_size).unwrap_or(0);
            contents(file, path, len, out)?;
        }
        Opened::Folder(folder) => {
            token(out, b"directory").map_err(io)?;
            for name in names(&folder, path)? {
                token(out, b"entry").map_err(io)?;
                token(out, b"(").map_err(io)?;
                token(out, b"name").map_err(io)?;
                token(out, &name).map_err(io)?;
                token(out, b"node").map_err(io)?;
                let name = OsStr::from_bytes(&name);
                let child_path = path.join(name);
                let child = Place {
                    folder: folder.as_fd(),
                    name,
                    path: &child_path,
                    top: false,
                };
                node(child, &relative.join(name), out, seen.as_deref_mut())?;
                token(out, b")").map_err(io)?;
            }
        }
    }
    token(out, b")").map_err(io)
}

/// A regular file's contents as one token, streamed in pieces of up to 1 MiB (whatever
/// `out` is); the file must keep its size.
fn contents(mut file: File, path: &Path, len: u64, out: &mut impl Write) -> Result<(), Error> {
    let io = |e| Error::io(path, e);
    out.write_all(&len.to_le_bytes()).map_err(io)?;
    let mut piece = vec![0u8; usize::try_from(len.min(1 << 20)).unwrap_or(1 << 20)];
    let mut left = len;
    while left > 0 {
        let wanted = usize::try_from(left).map_or(piece.len(), |left| left.min(piece.len()));
        match file.read(&mut piece[..wanted]) {
            // Shorter than it was a moment ago: written to meanwhile.
            Ok(0) => return Err(Error::Changed(path.to_owned())),
            Ok(read) => {
                out.write_all(&piece[..read]).map_err(io)?;
                left -= read as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    // Longer than it was: written to as well.
    let mut more = [0u8; 1];
    if file.read(&mut more).map_err(io)? != 0 {
        return Err(Error::Changed(path.to_owned()));
    }
    let padding = usize::try_from((8 - len % 8) % 8).unwrap_or(0);
    out.write_all(&[0u8; 8][..padding]).map_err(io)
}

/// Checks, without reading any contents, that `path` can be serialised: every node is a
/// file, folder or link, and every file and folder can be opened. What streams a NAR
/// somewhere it cannot take back (standard output) checks first.
pub fn check_dumpable(path: &Path) -> Result<(), Error> {
    walk(path, None)
}

/// Every node of the tree at `path` as it is now, in the order a dump reads them,
/// without reading any contents.
pub fn stamps(path: &Path) -> Result<Vec<Seen>, Error> {
    let mut seen = Vec::new();
    walk(path, Some(&mut seen))?;
    Ok(seen)
}

/// How deep folders may nest in a tree made a NAR: as deep as a NAR restores
/// (`cudapkgs_store::restore`). Each level is a frame and an open folder; a hostile tree thousands
/// of levels deep overflowed the stack.
pub const MAX_DEPTH: usize = 256;

fn refuse_too_deep(path: &Path, relative: &Path) -> Result<(), Error> {
    if relative.components().count() > MAX_DEPTH {
        return Err(Error::Unsupported {
            path: path.to_owned(),
            what: format!("folders nested more than {MAX_DEPTH} deep"),
        });
    }
    Ok(())
}

fn walk(path: &Path, seen: Option<&mut Vec<Seen>>) -> Result<(), Error> {
    fn visit(
        place: Place<'_>,
        relative: &Path,
        mut seen: Option<&mut Vec<Seen>>,
    ) -> Result<(), Error> {
        refuse_too_deep(place.path, relative)?;
        if let (_, Opened::Folder(folder)) = place.open_seen(relative, seen.as_deref_mut())? {
            for name in names(&folder, place.path)? {
                let name = OsStr::from_bytes(&name);
                let child_path = place.path.join(name);
                let child = Place {
                    folder: folder.as_fd(),
                    name,
                    path: &child_path,
                    top: false,
                };
                visit(child, &relative.join(name), seen.as_deref_mut())?;
            }
        }
        Ok(())
    }
    let place = Place {
        folder: rustix::fs::CWD,
        name: path.as_os_str(),
        path,
        top: true,
    };
    visit(place, Path::new(""), seen)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_deeper_than_a_nar_restores_are_refused_not_overflowed() {
        let dir = tempfile::tempdir().expect("temp");
        let mut deep = dir.path().join("tree");
        for _ in 0..MAX_DEPTH {
            deep.push("a");
        }
        std::fs::create_dir_all(&deep).expect("mkdir");
        std::fs::write(deep.join("f"), "x").expect("write");
        // MAX_DEPTH folders below the top, and a file in the deepest: one level too many.
        let error = hash(&dir.path().join("tree")).expect_err("too deep");
        assert!(
            error.to_string().contains("nested more than 256 deep"),
            "{error}"
        );
        std::fs::remove_file(deep.join("f")).expect("rm");
        hash(&dir.path().join("tree")).expect("as deep as a NAR restores");
    }
}
