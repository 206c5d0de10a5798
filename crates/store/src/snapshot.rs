//! Copying a tree as one state of it: read once, its NAR restored into the copy and
//! passed to a tap (the add's hashing and scanning), and refused if the tree changed
//! while it was read, so that what is stored is never a mix of two states.
//!
//! Every node is looked at before the read, as the read reaches it, and afterwards: the
//! same nodes, each with the same inode, type, permissions, size, modification and
//! change times. A write (ahead of the reader or behind it), an append, a rename over a
//! node, or an entry added to or removed from a folder changes one of them. Timestamps
//! come from a coarse clock (and some file systems keep whole seconds), so a change
//! right after a change made just before the read could leave them as they were: nodes
//! touched shortly before the read began are also compared, byte for byte, with the
//! copy.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{FileType, Mode, OFlags};

use crate::error::Error;
use cudapkgs_nix::nar::{self, Seen, Stamp, under};

/// How long before the read a change can hide in a node's timestamps: on file systems
/// that keep nanoseconds, a tick of the coarse clock they are stamped from (10 ms at
/// most); on those that keep whole seconds (ext3, HFS+; FAT keeps two), a few seconds.
const FINE_TIMESTAMPS_HIDE: Duration = Duration::from_millis(50);
const WHOLE_SECONDS_HIDE: Duration = Duration::from_secs(3);

/// Copies the tree at `source` to `target` (which must not exist) from one reading of
/// its NAR, which is also written to `tap`. A source that changed while it was read is
/// refused (`Error::Changed`) and nothing is left at `target`; so is a write that
/// fails, with the error about the file being written (under `target`).
pub fn copy(source: &Path, target: &Path, tap: &mut impl Write) -> Result<(), Error> {
    let read_from = SystemTime::now();
    let before = nar::stamps(source)?;
    let (writer, reader) = crate::pipe::chunk_pipe();
    let (seen, restored) = std::thread::scope(|scope| {
        let restoring = scope.spawn(|| crate::restore::restore(reader, target));
        let seen = dump_to(source, tap, writer);
        (
            seen,
            restoring
                .join()
                .expect("the restoring thread does not panic"),
        )
    });
    // The restore fails on its own only when writing fails (a full disk): that is the
    // cause, and the dump then only saw its pipe close. Otherwise the dump's error (a
    // changed or unreadable source) cut the stream short and says more.
    let seen = match (seen, restored) {
        (_, Err(written @ Error::Io { .. })) | (Err(written), _) => return Err(written),
        (Ok(_), Err(other)) => return Err(other),
        (Ok(seen), Ok(())) => seen,
    };
    confirm_unchanged(source, &before, &seen, target, read_from).inspect_err(|_| {
        let _ = crate::copy::remove_tree(target);
    })
}

/// Dumps `source` to `tap` and, buffered, to `pipe`; returns the nodes as they were read.
fn dump_to(source: &Path, tap: &mut impl Write, pipe: impl Write) -> Result<Vec<Seen>, Error> {
    let mut pipe = std::io::BufWriter::with_capacity(1 << 20, pipe);
    let mut seen = Vec::new();
    nar::dump_seeing(source, &mut Tee(&mut *tap, &mut pipe), &mut seen)?;
    tap.flush().map_err(|e| Error::io(source, e))?;
    // Dropping the pipe's end is the end of the stream.
    pipe.into_inner()
        .map_err(|e| Error::io(source, e.into_error()))?;
    Ok(seen)
}

/// Writes to two writers.
pub(crate) struct Tee<A, B>(pub(crate) A, pub(crate) B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// Whether a node with `stamp` was touched so shortly before the read that began at
/// `read_from` (or after) that its timestamps may hide a change.
fn recently_touched(stamp: &Stamp, read_from: SystemTime) -> bool {
    let hide = if stamp.has_whole_seconds() {
        WHOLE_SECONDS_HIDE
    } else {
        FINE_TIMESTAMPS_HIDE
    };
    let from = read_from
        .checked_sub(hide)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    stamp.touched_since(i128::try_from(from.as_nanos()).unwrap_or(i128::MAX))
}

/// Checks that the tree at `source` is, after the read that began at `read_from`, what
/// it was `before` it and what the read `seen`, and that the recently touched nodes hold
/// what was stored at `copy`.
fn confirm_unchanged(
    source: &Path,
    before: &[Seen],
    seen: &[Seen],
    copy: &Path,
    read_from: SystemTime,
) -> Result<(), Error> {
    let same = |a: &Seen, b: &Seen| a.relative == b.relative && a.stamp == b.stamp;
    if let Some(index) = (0..before.len().max(seen.len()))
        .find(|&i| !matches!((before.get(i), seen.get(i)), (Some(a), Some(b)) if same(a, b)))
    {
        let differs = before
            .get(index)
            .or(seen.get(index))
            .expect("within one list");
        return Err(Error::Changed(under(source, &differs.relative)));
    }
    for node in seen {
        let path = under(source, &node.relative);
        let now = rustix::fs::lstat(&path).map_err(|_| Error::Changed(path.clone()))?;
        if Stamp::of(&now) != node.stamp {
            return Err(Error::Changed(path));
        }
    }
    for node in seen
        .iter()
        .filter(|node| recently_touched(&node.stamp, read_from))
    {
        let path = under(source, &node.relative);
        let stored = under(copy, &node.relative);
        let same = match node.stamp.file_type() {
            FileType::RegularFile => same_contents(&path, &node.stamp, &stored)?,
            FileType::Directory => same_names(&path, &stored)?,
            _ => std::fs::read_link(&path).ok() == std::fs::read_link(&stored).ok(),
        };
        if !same {
            return Err(Error::Changed(path));
        }
    }
    Ok(())
}

/// Whether the file at `path` (still the node `stamp` describes) holds what `stored` holds.
fn same_contents(path: &Path, stamp: &Stamp, stored: &Path) -> Result<bool, Error> {
    let Ok(fd) = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Ok(false);
    };
    let opened = rustix::fs::fstat(&fd).map_err(|e| Error::io(path, e.into()))?;
    if Stamp::of(&opened) != *stamp {
        return Ok(false);
    }
    let mut source = File::from(fd);
    let mut copy = File::open(stored).map_err(|e| Error::io(stored, e))?;
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut source, &mut a).map_err(|e| Error::io(path, e))?;
        let m = read_full(&mut copy, &mut b).map_err(|e| Error::io(stored, e))?;
        if a[..n] != b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buffer` is full or the file ends; returns how much was read.
fn read_full(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Whether the folders `path` and `stored` list the same names.
fn same_names(path: &Path, stored: &Path) -> Result<bool, Error> {
    let names = |folder: &Path| -> std::io::Result<Vec<std::ffi::OsString>> {
        let mut names = std::fs::read_dir(folder)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()?;
        names.sort();
        Ok(names)
    };
    let stored_names = names(stored).map_err(|e| Error::io(stored, e))?;
    Ok(names(path).ok() == Some(stored_names))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::restore;

    /// A tree read in this order: `a`, `b`, `c/`, `c/d`, `e` (a link to `a`), each file
    /// 100 000 bytes, last touched long enough ago that any change moves its timestamps.
    fn tree(dir: &Path) -> PathBuf {
        let source = dir.join("source");
        std::fs::create_dir_all(source.join("c")).expect("mkdir");
        for (seed, file) in [(1u8, "a"), (2, "b"), (3, "c/d")] {
            let bytes: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8 ^ seed).collect();
            std::fs::write(source.join(file), bytes).expect("write");
        }
        std::os::unix::fs::symlink("a", source.join("e")).expect("link");
        // Past the file system clock's tick.
        std::thread::sleep(Duration::from_millis(50));
        source
    }

    /// A tap that runs `change` once it has seen `after` bytes.
    struct ChangeAt<F: FnOnce()> {
        seen: usize,
        after: usize,
        change: Option<F>,
    }

    impl<F: FnOnce()> Write for ChangeAt<F> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.seen += buf.len();
            if self.seen >= self.after {
                if let Some(change) = self.change.take() {
                    change();
                }
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Copies `source` as an add does, running `change` when the stream is `after`
    /// bytes in; a refused copy must leave nothing.
    fn read_changing(source: &Path, after: usize, change: impl FnOnce()) -> Result<(), Error> {
        let copy_at = source.with_file_name("copy");
        let mut tap = ChangeAt {
            seen: 0,
            after,
            change: Some(change),
        };
        let copied = copy(source, &copy_at, &mut tap);
        assert_eq!(copied.is_ok(), copy_at.exists(), "{copied:?}");
        copied
    }

    /// The stream is this far in while `b`'s contents go by.
    const READING_B: usize = 150_000;

    fn overwrite(path: &Path, offset: u64) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open");
        file.write_all_at(b"changed", offset).expect("write");
    }

    fn changed_at(result: Result<(), Error>) -> PathBuf {
        match result {
            Err(Error::Changed(path)) => path,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn a_tree_nothing_writes_to_passes() {
        let dir = tempfile::tempdir().expect("temp");
        let source = tree(dir.path());
        read_changing(&source, READING_B, || {}).expect("unchanged");
    }

    #[test]
    fn writes_behind_and_ahead_of_the_reader_are_found() {
        let dir = tempfile::tempdir().expect("temp");
        let source = tree(dir.path());
        let behind = source.join("a");
        let path = changed_at(read_changing(&source, READING_B, || overwrite(&behind, 10)));
        assert_eq!(path, behind);

        let dir = tempfile::tempdir().expect("temp");
        let source = tree(dir.path());
        // In the file being read, past the reader.
        let reading = source.join("b");
        let path = changed_at(read_changing(&source, READING_B, || {
            overwrite(&reading, 90_000);
        }));
        assert_eq!(path, reading);

        let dir = tempfile::tempdir().expect("temp");
        let source = tree(dir.path());
        // A file the reader has not reached.
        let ahead = source.join("c/d");
        let path = changed_at(read_changing(&source, READING_B, || overwrite(&ahead, 10)));
        assert_eq!(path, ahead);
    }

    #[test]
    fn appends_new_files_and_removed_files_are_found() {
        let dir = tempfile::tempdir().expect("temp");
        let source = tree(dir.path());
        let appended = source.join("b");
        let path = changed_at(read_changing(&source, READING_B, || {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&appended)
                .expect("open");
            file.write_all(b"more").expect("append");
        }));
        assert_eq!(path, appended);

        // A new file in a folder already listed, and in one not reached yet.
        for (folder, new) in [("", "b2"), ("c", "c/new")] {
            let dir = tempfile::tempdir().expect("temp");
            let source = tree(dir.path());
            let path = changed_at(read_changing(&source, READING_B, || {
                std::fs::write(source.join(new), b"new").expect("write");
            }));
            assert_eq!(path, under(&source, Path::new(folder)), "{new}");
        }

        // A file removed behind the reader, while it is read, and ahead of it.
        for removed in ["a", "b", "c/d"] {
            let dir = tempfile::tempdir().expect("temp");
            let source = tree(dir.path());
            let path = changed_at(read_changing(&source, READING_B, || {
                std::fs::remove_file(source.join(removed)).expect("rm");
            }));
            assert!(
                path == source.join(removed) || path == source.join(removed).parent().expect("up"),
                "{removed}: {path:?}"
            );
        }
    }

    #[test]
    fn a_folder_swapped_for_a_link_is_not_followed() {
        let dir = tempfile::tempdir().expect("temp");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("d"), b"secret").expect("write");
        let source = tree(dir.path());
        let folder = source.join("c");
        let mut bytes = Vec::new();
        let path = changed_at(read_changing(&source, READING_B, || {
            std::fs::rename(&folder, dir.path().join("moved")).expect("mv");
            std::os::unix::fs::symlink(&outside, &folder).expect("link");
        }));
        assert_eq!(path, folder);
        // What a plain dump reads now is the link itself, not what it points at.
        nar::dump(&source, &mut bytes).expect("dump");
        assert!(!bytes.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn a_file_swapped_for_a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("temp");
        let source = tree(dir.path());
        let (done, finished) = std::sync::mpsc::channel();
        let reading = source.clone();
        std::thread::spawn(move || {
            let fifo = reading.join("c/d");
            let result = read_changing(&reading, READING_B, || {
                std::fs::remove_file(&fifo).expect("rm");
                let status = std::process::Command::new("mkfifo")
                    .arg(&fifo)
                    .status()
                    .expect("mkfifo");
                assert!(status.success());
            });
            let _ = done.send(result);
        });
        let result = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("the read must not block on a FIFO");
        assert!(
            matches!(result, Err(Error::Changed(_) | Error::Unsupported { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn a_change_the_timestamps_hide_is_found_in_the_contents() {
        let dir = tempfile::tempdir().expect("temp");
        let source = tree(dir.path());
        let file = source.join("b");
        // Stamps taken after the change, as when the clock did not move: only the bytes
        // of a recently touched file tell what the read stored from what is there.
        let mut stored = Vec::new();
        nar::dump(&source, &mut stored).expect("dump");
        let read_from = SystemTime::now();
        overwrite(&file, 50_000);
        let seen = nar::stamps(&source).expect("stamps");
        let copy = dir.path().join("copy");
        restore::restore(stored.as_slice(), &copy).expect("restore");
        let path = changed_at(confirm_unchanged(&source, &seen, &seen, &copy, read_from));
        assert_eq!(path, file);
        // Long untouched nodes are trusted by their timestamps (their contents are not
        // read a second time).
        let long_after = read_from + WHOLE_SECONDS_HIDE * 2;
        confirm_unchanged(&source, &seen, &seen, &copy, long_after).expect("trusted");
    }
}
