//! Reading a NAR back into a file tree, refusing anything a NAR may not hold: unsorted
//! or repeated names, `.`/`..`, names with `/` or NUL, unknown tokens, oversized tokens.
//! Contents stream to disk; no allocation follows a length from the input beyond the
//! small bounds on names and link targets.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::Error;

/// Longest name or link target accepted (Linux allows 255-byte names, 4 KiB paths).
const MAX_TEXT: u64 = 4096;

struct Reader<R> {
    inner: R,
    offset: u64,
}

impl<R: BufRead> Reader<R> {
    fn bad(&self, problem: impl Into<String>) -> Error {
        Error::BadNar {
            offset: self.offset,
            problem: problem.into(),
        }
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let mut raw = [0u8; 8];
        self.inner
            .read_exact(&mut raw)
            .map_err(|_| self.bad("ends early"))?;
        self.offset += 8;
        Ok(u64::from_le_bytes(raw))
    }

    fn padding(&mut self, len: u64) -> Result<(), Error> {
        let padding = usize::try_from((8 - len % 8) % 8).expect("below 8");
        let mut raw = [0u8; 8];
        self.inner
            .read_exact(&mut raw[..padding])
            .map_err(|_| self.bad("ends early"))?;
        self.offset += padding as u64;
        if raw.iter().any(|&b| b != 0) {
            return Err(self.bad("non-zero padding"));
        }
        Ok(())
    }

    /// A short token (keyword, name, link target).
    fn text(&mut self) -> Result<Vec<u8>, Error> {
        let len = self.u64()?;
        if len > MAX_TEXT {
            return Err(self.bad(format!(
                "a {len}-byte token where at most {MAX_TEXT} are allowed"
            )));
        }
        let mut bytes = vec![0u8; usize::try_from(len).expect("bounded")];
        self.inner
            .read_exact(&mut bytes)
            .map_err(|_| self.bad("ends early"))?;
        self.offset += len;
        self.padding(len)?;
        Ok(bytes)
    }

    fn expect(&mut self, keyword: &[u8]) -> Result<(), Error> {
        let at = self.offset;
        let found = self.text()?;
        if found != keyword {
            return Err(Error::BadNar {
                offset: at,
                problem: format!(
                    "expected `{}`, found `{}`",
                    String::from_utf8_lossy(keyword),
                    String::from_utf8_lossy(&found)
                ),
            });
        }
        Ok(())
    }
}

/// Copies up to `len` bytes straight from the reader's buffer (whole buffers per write,
/// not `io::copy`'s 8 KiB); returns how many there were.
fn copy_exactly(input: &mut impl BufRead, len: u64, out: &mut impl Write) -> io::Result<u64> {
    let mut left = len;
    while left > 0 {
        let available = input.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let n = available
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        out.write_all(&available[..n])?;
        input.consume(n);
        left -= n as u64;
    }
    Ok(len - left)
}

/// Writes a file leaving holes where whole 4 KiB blocks (counted from the file's start)
/// are zeros (pruned device code, padding): the file reads the same, the NAR is the same,
/// and only the blocks that hold data take room on disk.
struct Sparse {
    file: File,
    /// Bytes written or skipped so far.
    offset: u64,
    /// A block's beginning not yet known to be zeros or not.
    partial: Vec<u8>,
}

const BLOCK: usize = 4096;

impl Sparse {
    fn new(file: File) -> Sparse {
        Sparse {
            file,
            offset: 0,
            partial: Vec::with_capacity(BLOCK),
        }
    }

    /// Writes whole blocks at the current offset, each run of blocks that hold data in
    /// one write, skipping the blocks of zeros.
    fn put(&mut self, blocks: &[u8]) -> io::Result<()> {
        let mut run_start = 0;
        let mut at = 0;
        while at < blocks.len() {
            let end = (at + BLOCK).min(blocks.len());
            if blocks[at..end].iter().all(|&b| b == 0) {
                self.write_run(&blocks[run_start..at], run_start)?;
                run_start = end;
            }
            at = end;
        }
        self.write_run(&blocks[run_start..], run_start)?;
        self.offset += blocks.len() as u64;
        Ok(())
    }

    fn write_run(&self, run: &[u8], from: usize) -> io::Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        std::os::unix::fs::FileExt::write_all_at(&self.file, run, self.offset + from as u64)
    }

    /// Writes what is left and gives the file its length (a trailing hole included).
    fn finish(mut self) -> io::Result<File> {
        let rest = std::mem::take(&mut self.partial);
        if !rest.is_empty() {
            std::os::unix::fs::FileExt::write_all_at(&self.file, &rest, self.offset)?;
            self.offset += rest.len() as u64;
        }
        self.file.set_len(self.offset)?;
        Ok(self.file)
    }
}

impl Write for Sparse {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let taken = buf.len();
        if !self.partial.is_empty() {
            let need = (BLOCK - self.partial.len()).min(buf.len());
            self.partial.extend_from_slice(&buf[..need]);
            buf = &buf[need..];
            if self.partial.len() < BLOCK {
                return Ok(taken);
            }
            let block = std::mem::take(&mut self.partial);
            self.put(&block)?;
            self.partial = block;
            self.partial.clear();
        }
        let whole = buf.len() / BLOCK * BLOCK;
        self.put(&buf[..whole])?;
        self.partial.extend_from_slice(&buf[whole..]);
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Restores the NAR read from `input` at `target`, which must not exist. The tree is
/// built beside `target` and renamed into place only when the whole archive was valid:
/// a refused archive leaves nothing behind.
pub fn restore(input: impl BufRead, target: &Path) -> Result<(), Error> {
    if target.symlink_metadata().is_ok() {
        return Err(Error::io(
            target,
            io::Error::new(io::ErrorKind::AlreadyExists, "already exists"),
        ));
    }
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let scratch = tempfile::Builder::new()
        .prefix(".cudapkgs-restore-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let staged = scratch.path().join("tree");
    let mut reader = Reader {
        inner: input,
        offset: 0,
    };
    // The scratch folder is gone by the time anyone reads an error: name the target.
    let named_by_target = |error: Error| error.relocated(&staged, target);
    reader.expect(b"nix-archive-1")?;
    node(&mut reader, &staged, 0).map_err(named_by_target)?;
    let mut rest = [0u8; 1];
    if reader
        .inner
        .read(&mut rest)
        .map_err(|e| Error::io(target, e))?
        != 0
    {
        return Err(reader.bad("bytes after the end of the archive"));
    }
    seal_folders(&staged).map_err(named_by_target)?;
    std::fs::rename(&staged, target).map_err(|e| Error::io(target, e))
}

/// Makes every folder read-only, children first (until then they stay writable so that
/// a refused archive can be removed).
fn seal_folders(path: &Path) -> Result<(), Error> {
    let io = |e| Error::io(path, e);
    if !path.symlink_metadata().map_err(io)?.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(io)? {
        seal_folders(&entry.map_err(io)?.path())?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).map_err(io)
}

fn node<R: BufRead>(reader: &mut Reader<R>, target: &Path, depth: usize) -> Result<(), Error> {
    if depth > cudapkgs_nix::nar::MAX_DEPTH {
        return Err(reader.bad("folders nested more than 256 deep"));
    }
    let io = |e| Error::io(target, e);
    reader.expect(b"(")?;
    reader.expect(b"type")?;
    let kind = reader.text()?;
    match kind.as_slice() {
        b"regular" => {
            let mut keyword = reader.text()?;
            let executable = keyword == b"executable";
            if executable {
                reader.expect(b"")?;
                keyword = reader.text()?;
            }
            if keyword != b"contents" {
                return Err(reader.bad("expected `contents`"));
            }
            let len = reader.u64()?;
            let file = File::create_new(target).map_err(io)?;
            let mut sparse = Sparse::new(file);
            let copied = copy_exactly(&mut reader.inner, len, &mut sparse).map_err(io)?;
            if copied != len {
                return Err(reader.bad("ends inside a file's contents"));
            }
            reader.offset += len;
            reader.padding(len)?;
            let file = sparse.finish().map_err(io)?;
            let mode = if executable { 0o555 } else { 0o444 };
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(io)?;
        }
        b"symlink" => {
            reader.expect(b"target")?;
            let link = reader.text()?;
            if link.is_empty() || link.contains(&0) {
                return Err(reader.bad("empty link target or one holding NUL"));
            }
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&link), target).map_err(io)?;
        }
        b"directory" => {
            std::fs::create_dir(target).map_err(io)?;
            let mut previous: Option<Vec<u8>> = None;
            loop {
                let keyword = reader.text()?;
                match keyword.as_slice() {
                    b")" => {
                        std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o555))
                            .map_err(io)?;
                        return Ok(());
                    }
                    b"entry" => {}
                    other => {
                        return Err(reader.bad(format!(
                            "unexpected `{}` in a folder",
                            String::from_utf8_lossy(other)
                        )));
                    }
                }
                reader.expect(b"(")?;
                reader.expect(b"name")?;
                let name = reader.text()?;
                let valid = !name.is_empty()
                    && name != b"."
                    && name != b".."
                    && !name.contains(&b'/')
                    && !name.contains(&0);
                if !valid {
                    return Err(
                        reader.bad(format!("invalid name `{}`", String::from_utf8_lossy(&name)))
                    );
                }
                if previous.as_ref().is_some_and(|p| *p >= name) {
                    return Err(reader.bad("folder entries not in sorted order, or repeated"));
                }
                reader.expect(b"node")?;
                node(
                    reader,
                    &target.join(std::ffi::OsStr::from_bytes(&name)),
                    depth + 1,
                )?;
                reader.expect(b")")?;
                previous = Some(name);
            }
        }
        other => {
            return Err(reader.bad(format!(
                "unknown node type `{}`",
                String::from_utf8_lossy(other)
            )));
        }
    }
    reader.expect(b")")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn zeros_become_holes_and_the_file_reads_the_same() {
        // Data, 1 MiB of zeros, data, and zeros to the end, written in odd pieces.
        let mut contents = vec![7u8; 5000];
        contents.extend(vec![0u8; 1 << 20]);
        contents.extend(vec![9u8; 3000]);
        contents.extend(vec![0u8; 70_000]);
        for piece in [1, 13, 4096, 5000, 65_536, 1 << 20] {
            let dir = tempfile::tempdir().expect("temp");
            let path = dir.path().join("f");
            let mut sparse = Sparse::new(File::create_new(&path).expect("create"));
            for chunk in contents.chunks(piece) {
                sparse.write_all(chunk).expect("write");
            }
            sparse.finish().expect("finish");
            assert_eq!(
                std::fs::read(&path).expect("read"),
                contents,
                "pieces of {piece}"
            );
            let allocated = std::fs::metadata(&path).expect("meta").blocks() * 512;
            // Where the file system makes holes, the zeros take no room.
            assert!(
                allocated < contents.len() as u64 / 2,
                "pieces of {piece}: {allocated} bytes allocated"
            );
        }
    }
}
