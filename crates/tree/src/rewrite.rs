//! Changing a file without ever leaving it half-written: a copy beside it gets the
//! changes, is flushed to disk with the original's permissions, and replaces the
//! original by rename. A failure at any step leaves the original untouched.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::dir::Dir;

/// Positional changes to a file: what the ELF rewriter and pruning plan, applied to a
/// file by [`rewrite_file`] and to bytes in memory by [`Rewrite::apply_in_memory`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// Cut (or extend with zeros) the copy to this length before writing.
    pub truncate: Option<u64>,
    /// `(offset, bytes)` to write, in order.
    pub writes: Vec<(u64, Vec<u8>)>,
    /// Length of the result.
    pub new_len: u64,
    /// Ranges that `writes` fill with zeros, to give back to the file system where it
    /// can make holes.
    pub holes: Vec<(u64, u64)>,
}

impl Rewrite {
    /// Changes nothing yet to a file of `len` bytes, which keeps its length.
    pub fn in_place(len: u64) -> Self {
        Rewrite {
            new_len: len,
            ..Rewrite::default()
        }
    }

    /// Whether the rewrite neither writes nor cuts anything.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.truncate.is_none()
    }

    /// The bytes [`rewrite_file`] would leave in a file holding `original`, step for
    /// step (for tests and fuzzing). Holes need nothing: `writes` already zeroed them.
    pub fn apply_in_memory(&self, original: &[u8]) -> Vec<u8> {
        let len = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        let mut out = original.to_vec();
        if let Some(truncate) = self.truncate {
            out.resize(len(truncate), 0);
        }
        for (offset, bytes) in &self.writes {
            let start = len(*offset);
            let end = start.saturating_add(bytes.len());
            if end > out.len() {
                out.resize(end, 0);
            }
            out[start..end].copy_from_slice(bytes);
        }
        out.resize(len(self.new_len), 0);
        out
    }
}

/// Applies `rewrite` to the file at `path` (a symbolic link's target). Holes are
/// punched only where the file system supports it; elsewhere the zeros stay written.
///
/// A file without any write permission bit is refused before anything is written: the
/// copy-and-rename would replace it even where opening it for writing is denied (its
/// folder writable, or the caller root, who ignores mode bits), and such files are
/// mostly store paths, which must never change.
pub fn rewrite_file(path: &Path, rewrite: &Rewrite) -> io::Result<()> {
    let path = std::fs::canonicalize(path)?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let metadata = std::fs::metadata(&path)?;
    let permissions = metadata.permissions();
    if permissions.mode() & 0o222 == 0 {
        return Err(read_only(&path));
    }
    let mut temp = tempfile::Builder::new()
        .prefix(".cudapkgs-")
        .tempfile_in(dir)?;
    {
        let mut original = File::open(&path)?;
        // Copies in the kernel (copy_file_range) where the file system allows.
        io::copy(&mut original, temp.as_file_mut())?;
    }
    let file = temp.as_file();
    if let Some(len) = rewrite.truncate {
        file.set_len(len)?;
    }
    for (offset, bytes) in &rewrite.writes {
        file.write_all_at(bytes, *offset)?;
    }
    file.set_len(rewrite.new_len)?;
    for &(offset, len) in &rewrite.holes {
        punch_hole(file, offset, len);
    }
    keep_owner(file, &metadata);
    file.set_permissions(permissions)?;
    file.sync_all()?;
    temp.persist(&path).map_err(|error| error.error)?;
    // Make the rename itself durable.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Writes `contents` to `path` as a whole: into a temporary file beside it, flushed, then
/// renamed over `path`, so that a reader sees the old file or the new one, never a part.
/// A link at `path` is replaced, not written through; a folder there is refused by the
/// rename (and the temporary removed). A new file gets mode 0666 less the umask, as any
/// program's new file does.
pub fn write_file_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".cudapkgs-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|error| error.error)?;
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Gives the new copy the original's owner and group, as an edit in place would keep
/// them (root patching a user's file must not make it root's). Where that is not
/// allowed (an ordinary user cannot give files away), the copy stays the caller's, who
/// could write the original anyway.
fn keep_owner(copy: &File, original: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = (original.uid(), original.gid());
    let current = copy.metadata().map(|m| (m.uid(), m.gid())).ok();
    if current != Some((uid, gid)) {
        let _ = rustix::fs::fchown(
            copy,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
    }
}

/// The refusal of a file that has no write permission bit.
fn read_only(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} is read-only (no write permission): store paths are immutable; \
             change a copy of it instead (cp, then chmod u+w)",
            path.display()
        ),
    )
}

/// Copies a file or a folder tree to `to`, which must not exist: files with their
/// permissions plus write permission for their owner, symbolic links as links, folders
/// made writable by their owner (so that the copy of a read-only tree, such as a store
/// output, can be changed). `from` itself
/// is followed when it is a link (it was named); nothing below it is. FIFOs, sockets and
/// devices are refused, never opened.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    if to.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", to.display()),
        ));
    }
    let metadata = std::fs::metadata(from)?;
    if !metadata.is_dir() {
        let mut source = crate::dir::open_named_file(from)?;
        let parent = to.parent().filter(|p| !p.as_os_str().is_empty());
        let parent = Dir::open(parent.unwrap_or(Path::new(".")))?;
        let name = Path::new(to.file_name().unwrap_or_default());
        let mut copy = parent.create_file(name, copied_file_mode(metadata.permissions().mode()))?;
        io::copy(&mut source, &mut copy)?;
        return Ok(());
    }
    // A copy inside what it copies would copy itself without end.
    let parent = to.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = std::fs::canonicalize(parent.unwrap_or(Path::new(".")))?;
    if parent.starts_with(std::fs::canonicalize(from)?) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is inside {}, which it would copy",
                to.display(),
                from.display()
            ),
        ));
    }
    let source = Dir::open(from)?;
    std::fs::create_dir(to)?;
    let copy = Dir::open(to)?;
    copy_folder(&source, &copy, Path::new(""))?;
    let mode = metadata.permissions().mode() & 0o7777 | 0o700;
    copy.set_own_mode(mode)?;
    Ok(())
}

/// Copies the contents of the folder `relative` of `source` into the same place in `copy`.
fn copy_folder(source: &Dir, copy: &Dir, relative: &Path) -> io::Result<()> {
    use crate::dir::Kind;
    for (name, kind) in source.entries(relative)? {
        let path = relative.join(&name);
        match kind {
            Kind::Symlink => copy.symlink(&source.read_link(&path)?, &path)?,
            Kind::Folder => {
                let mode = source.status(&path)?.map_or(0o755, |s| s.mode);
                copy.create_dir(&path, 0o700)?;
                copy_folder(source, copy, &path)?;
                copy.open_dir(&path)?.set_own_mode(mode | 0o700)?;
            }
            Kind::File => {
                let mut from = source.open_file(&path)?;
                let mode = copied_file_mode(from.metadata()?.permissions().mode());
                // Copies in the kernel (copy_file_range) where the file system allows.
                io::copy(&mut from, &mut copy.create_file(&path, mode)?)?;
            }
            Kind::Special(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is {}, which cannot be copied",
                        source.path().join(&path).display(),
                        kind.described()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The mode of a file's copy: the original's, writable by its owner (the copy exists to
/// be changed, and `rewrite_file` refuses files nobody may write).
fn copied_file_mode(original: u32) -> u32 {
    original & 0o7777 | 0o200
}

/// Frees the whole pages inside `[offset, offset + len)`; the range reads as zeros
/// either way. Best effort: file systems without hole support keep the written zeros.
fn punch_hole(file: &File, offset: u64, len: u64) {
    const PAGE: u64 = 4096;
    let start = offset.div_ceil(PAGE) * PAGE;
    let end = (offset + len) / PAGE * PAGE;
    if end > start {
        let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
        let _ = rustix::fs::fallocate(file, flags, start, end - start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_file_keeps_its_owner_and_group() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("libx.so");
        std::fs::write(&path, b"0123456789").expect("write");
        let (uid, gid) = (4_000_123, 4_000_456);
        let given = rustix::fs::chown(
            &path,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
        if given.is_err() {
            eprintln!("skipped: only root can give a file away to test this");
            return;
        }
        let rewrite = Rewrite {
            writes: vec![(0, b"ab".to_vec())],
            truncate: None,
            new_len: 10,
            holes: Vec::new(),
        };
        rewrite_file(&path, &rewrite).expect("rewrite");
        let metadata = std::fs::metadata(&path).expect("stat");
        assert_eq!((metadata.uid(), metadata.gid()), (uid, gid));
        assert_eq!(std::fs::read(&path).expect("read"), b"ab23456789");
    }

    #[test]
    fn copies_trees_with_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp");
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("lib")).expect("mkdir");
        std::fs::write(from.join("lib/libx.so.1"), b"x").expect("write");
        std::fs::set_permissions(
            from.join("lib/libx.so.1"),
            std::fs::Permissions::from_mode(0o555),
        )
        .expect("chmod");
        std::os::unix::fs::symlink("libx.so.1", from.join("lib/libx.so")).expect("link");
        std::fs::set_permissions(from.join("lib"), std::fs::Permissions::from_mode(0o555))
            .expect("chmod");
        let to = dir.path().join("to");
        copy_tree(&from, &to).expect("copy");
        assert_eq!(
            std::fs::read(to.join("lib/libx.so")).expect("through link"),
            b"x"
        );
        assert_eq!(
            std::fs::read_link(to.join("lib/libx.so")).expect("link"),
            Path::new("libx.so.1")
        );
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(
            mode(&to.join("lib/libx.so.1")),
            0o755,
            "the copy is writable by its owner"
        );
        assert_eq!(mode(&to.join("lib")), 0o755);
        assert!(
            copy_tree(&from, &to).is_err(),
            "an existing target is refused"
        );
        std::fs::set_permissions(from.join("lib"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }

    #[test]
    fn copies_never_follow_links_or_open_special_files() {
        let dir = tempfile::tempdir().expect("temp");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("secret"), b"s").expect("write");
        let from = dir.path().join("from");
        std::fs::create_dir(&from).expect("mkdir");
        std::os::unix::fs::symlink(&outside, from.join("pkg-config")).expect("link");
        let to = dir.path().join("to");
        copy_tree(&from, &to).expect("copy");
        assert_eq!(
            std::fs::read_link(to.join("pkg-config")).expect("a link"),
            outside,
            "copied as a link, not as the folder it names"
        );
        rustix::fs::mknodat(
            rustix::fs::CWD,
            from.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .expect("mkfifo");
        let error = copy_tree(&from, &dir.path().join("again")).expect_err("refused");
        assert!(error.to_string().contains("is a FIFO"), "{error}");
        let error = copy_tree(&from.join("fifo"), &dir.path().join("f")).expect_err("refused");
        assert!(error.to_string().contains("is a FIFO"), "{error}");
    }

    #[test]
    fn a_copy_inside_its_source_is_refused() {
        let dir = tempfile::tempdir().expect("temp");
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("sub")).expect("mkdir");
        std::fs::write(from.join("f"), b"x").expect("write");
        for to in [from.join("copy"), from.join("sub/copy")] {
            let error = copy_tree(&from, &to).expect_err("refused");
            assert!(error.to_string().contains("which it would copy"), "{error}");
            assert!(!to.exists());
        }
    }

    #[test]
    fn read_only_files_are_refused_and_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("libk.so");
        std::fs::write(&path, b"original").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        let link = dir.path().join("link.so");
        std::os::unix::fs::symlink(&path, &link).expect("link");
        let rewrite = Rewrite {
            writes: vec![(0, b"replaced".to_vec())],
            new_len: 8,
            ..Rewrite::default()
        };
        // The folder is writable (and the tests may run as root): only the mode tells.
        for named in [&path, &link] {
            let error = rewrite_file(named, &rewrite).expect_err("refused");
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
            let message = error.to_string();
            assert!(
                message.contains(&path.display().to_string()) && message.contains("read-only"),
                "{message}"
            );
        }
        assert_eq!(std::fs::read(&path).expect("read"), b"original");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            2,
            "no temporary left behind"
        );
        // Any write bit will do: a file writable by its group only is rewritten.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o464)).expect("chmod");
        rewrite_file(&link, &rewrite).expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"replaced");
    }

    #[test]
    fn whole_writes_replace_files_and_links_and_leave_folders_alone() {
        let dir = tempfile::tempdir().expect("temp");
        let page = dir.path().join("page.html");
        write_file_atomically(&page, b"first").expect("new file");
        write_file_atomically(&page, b"second").expect("replaced");
        assert_eq!(std::fs::read(&page).expect("read"), b"second");
        let mode = std::fs::metadata(&page).expect("stat").permissions().mode();
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        // A link is replaced by the file, its target left as it was.
        let link = dir.path().join("link.html");
        std::os::unix::fs::symlink(&page, &link).expect("link");
        write_file_atomically(&link, b"third").expect("link replaced");
        assert!(std::fs::symlink_metadata(&link).expect("stat").is_file());
        assert_eq!(std::fs::read(&page).expect("read"), b"second");
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).expect("mkdir");
        write_file_atomically(&folder, b"x").expect_err("a folder is refused");
        assert!(folder.is_dir());
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            3,
            "no temporary left behind"
        );
    }

    #[test]
    fn in_memory_rewrites_leave_what_files_get() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("libx.so");
        let original = b"0123456789".to_vec();
        let rewrites = [
            Rewrite::in_place(10),
            Rewrite {
                writes: vec![(2, b"ab".to_vec()), (3, b"c".to_vec())],
                ..Rewrite::in_place(10)
            },
            // A region rebuilt at the end: cut, then written past the old end.
            Rewrite {
                truncate: Some(6),
                writes: vec![(0, b"X".to_vec()), (8, b"tail".to_vec())],
                new_len: 12,
                holes: Vec::new(),
            },
            // Extended with zeros past the writes, then shortened.
            Rewrite {
                writes: vec![(4, b"zz".to_vec())],
                ..Rewrite::in_place(14)
            },
            Rewrite::in_place(4),
        ];
        for rewrite in rewrites {
            std::fs::write(&path, &original).expect("write");
            rewrite_file(&path, &rewrite).expect("rewrite");
            assert_eq!(
                std::fs::read(&path).expect("read"),
                rewrite.apply_in_memory(&original),
                "{rewrite:?}"
            );
        }
        assert!(Rewrite::in_place(10).is_empty());
        assert!(
            !Rewrite {
                truncate: Some(3),
                ..Rewrite::in_place(3)
            }
            .is_empty()
        );
    }

    #[test]
    fn rewrites_keep_mode_and_punch_holes() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("data.bin");
        std::fs::write(&path, vec![7u8; 1 << 20]).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o751)).expect("chmod");
        let rewrite = Rewrite {
            truncate: None,
            writes: vec![(0, b"head".to_vec()), (4096, vec![0u8; 512 * 1024])],
            new_len: 1 << 20,
            holes: vec![(4096, 512 * 1024)],
        };
        rewrite_file(&path, &rewrite).expect("rewrite");
        let data = std::fs::read(&path).expect("read");
        assert_eq!(&data[..4], b"head");
        assert!(data[4096..4096 + 512 * 1024].iter().all(|&b| b == 0));
        assert_eq!(data[4096 + 512 * 1024], 7);
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o751);
        assert_eq!(meta.len(), 1 << 20);
        // Where holes are supported, the file now takes less room than its length.
        assert!(meta.blocks() * 512 <= meta.len());
        assert!(
            std::fs::read_dir(dir.path()).expect("dir").count() == 1,
            "no temporary left behind"
        );
    }
}
