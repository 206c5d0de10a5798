//! A folder opened once, and every change below it made relative to that handle without
//! following a symbolic link.
//!
//! Paths given to a [`Dir`] are relative and made of plain components only (`a/b/c`: no
//! `..`, no root). Each folder on the way is opened from the one before with
//! `O_NOFOLLOW | O_DIRECTORY`, so a symbolic link on the way is an error rather than a
//! detour, and the last component is acted on itself: a link is created, read, renamed or
//! removed, never written or read through. Whatever another process renames or links in
//! the tree meanwhile, no operation reaches outside the folder the handle was opened on.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::links::{LinkTree, Scope};

/// The longest link target accepted, as the kernel's `PATH_MAX`.
pub const MAX_LINK_TARGET: usize = 4096;

/// The most components an archive entry's path or a link target may have: real
/// packages nest a dozen folders deep; deep paths only make link resolution slow.
pub const MAX_PATH_COMPONENTS: usize = 256;

/// An open folder.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// Where it was opened, for messages only: every operation goes through `fd`.
    path: PathBuf,
}

/// What a directory entry is, read without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Folder,
    Symlink,
    /// A FIFO, socket or device, by name.
    Special(&'static str),
}

impl Kind {
    fn of(file_type: FileType) -> Kind {
        match file_type {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Folder,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Special("FIFO"),
            FileType::Socket => Kind::Special("socket"),
            FileType::CharacterDevice => Kind::Special("character device"),
            FileType::BlockDevice => Kind::Special("block device"),
            FileType::Unknown => Kind::Special("file of unknown type"),
        }
    }

    /// For messages: "a FIFO", "a symbolic link".
    pub fn described(self) -> String {
        match self {
            Kind::File => "a file".to_owned(),
            Kind::Folder => "a folder".to_owned(),
            Kind::Symlink => "a symbolic link".to_owned(),
            Kind::Special(name) => format!("a {name}"),
        }
    }
}

/// An entry's kind, permission bits and size, read without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub kind: Kind,
    /// The permission bits (`0o7777`).
    pub mode: u32,
    pub size: u64,
}

/// A link whose resolution leaves the folder, or loops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapingLink {
    /// The link, relative to the folder.
    pub link: PathBuf,
    pub target: PathBuf,
    /// Whether it loops (more than 40 links followed) rather than leaving.
    pub loops: bool,
}

impl std::fmt::Display for EscapingLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.loops {
            "loops through more than 40 links"
        } else {
            "points outside"
        };
        write!(
            f,
            "link {} -> {} {what}",
            self.link.display(),
            self.target.display()
        )
    }
}

/// A borrowed or opened folder on the way to an entry.
enum Handle<'a> {
    Borrowed(BorrowedFd<'a>),
    Owned(OwnedFd),
}

impl AsFd for Handle<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Handle::Borrowed(fd) => *fd,
            Handle::Owned(fd) => fd.as_fd(),
        }
    }
}

/// The plain components of `relative`; `.` is skipped, anything that could leave is
/// refused.
fn components(relative: &Path) -> io::Result<Vec<&OsStr>> {
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a path inside the folder", relative.display()),
                ));
            }
        }
    }
    Ok(parts)
}

const FOLDER_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Dir {
    /// Opens the folder at `path`. The path itself is the caller's to trust (a link the
    /// user named is followed); nothing below it ever is.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    /// Where the folder was opened (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder at `relative`, opened without following a link.
    pub fn open_dir(&self, relative: &Path) -> io::Result<Dir> {
        let parts = components(relative)?;
        let fd = match self.walk(&parts)? {
            Handle::Owned(fd) => fd,
            Handle::Borrowed(fd) => fd.try_clone_to_owned()?,
        };
        Ok(Dir {
            fd,
            path: self.path.join(relative),
        })
    }

    /// Opens every folder of `parts` in turn from the handle.
    fn walk(&self, parts: &[&OsStr]) -> io::Result<Handle<'_>> {
        let mut handle = Handle::Borrowed(self.fd.as_fd());
        for depth in 0..parts.len() {
            handle = Handle::Owned(Self::open_part(&handle, parts, depth)?);
        }
        Ok(handle)
    }

    /// Opens `parts[depth]` as a folder inside `parent`, the folder of the parts before it.
    fn open_part(parent: &Handle<'_>, parts: &[&OsStr], depth: usize) -> io::Result<OwnedFd> {
        let part = parts[depth];
        rustix::fs::openat(parent, part, FOLDER_FLAGS, Mode::empty()).map_err(|errno| {
            let shown: PathBuf = parts[..=depth].iter().collect();
            Self::not_a_folder(parent, part, &shown, errno)
        })
    }

    /// The error for a component that could not be opened as a folder: a link is named
    /// as such, since that is the refusal people need to understand.
    fn not_a_folder(parent: &impl AsFd, name: &OsStr, shown: &Path, errno: Errno) -> io::Error {
        if matches!(errno, Errno::LOOP | Errno::NOTDIR) {
            if let Ok(stat) = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                let kind = Kind::of(FileType::from_raw_mode(stat.st_mode));
                if kind != Kind::Folder {
                    return io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!(
                            "{} is {}, not a folder (links are not followed)",
                            shown.display(),
                            kind.described(),
                        ),
                    );
                }
            }
        }
        io::Error::from(errno)
    }

    /// The folder holding `relative`'s last component, and that component.
    fn parent_of<'p>(&self, relative: &'p Path) -> io::Result<(Handle<'_>, &'p OsStr)> {
        let parts = components(relative)?;
        let Some((leaf, folders)) = parts.split_last() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty path names the folder itself",
            ));
        };
        Ok((self.walk(folders)?, leaf))
    }

    /// The entry at `relative`, not followed; `None` when nothing is there.
    pub fn status(&self, relative: &Path) -> io::Result<Option<Status>> {
        let parts = components(relative)?;
        let stat = match parts.split_last() {
            None => rustix::fs::fstat(&self.fd),
            Some((leaf, folders)) => {
                let parent = match self.walk(folders) {
                    Ok(parent) => parent,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                };
                rustix::fs::statat(&parent, *leaf, AtFlags::SYMLINK_NOFOLLOW)
            }
        };
        match stat {
            Ok(stat) => Ok(Some(Status {
                kind: Kind::of(FileType::from_raw_mode(stat.st_mode)),
                mode: stat.st_mode & 0o7777,
                size: u64::try_from(stat.st_size).unwrap_or(0),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }

    /// The kind of the entry at `relative`, not followed; `None` when nothing is there.
    pub fn kind(&self, relative: &Path) -> io::Result<Option<Kind>> {
        Ok(self.status(relative)?.map(|status| status.kind))
    }

    /// The entries of the folder at `relative` (`""` for this one), sorted by name.
    pub fn entries(&self, relative: &Path) -> io::Result<Vec<(OsString, Kind)>> {
        let parts = components(relative)?;
        list(&self.walk(&parts)?)
    }

    /// Creates the folder at `relative` and the folders on the way as needed; an existing
    /// link or file on the way is an error.
    pub fn create_dir_all(&self, relative: &Path) -> io::Result<()> {
        let parts = components(relative)?;
        let mut handle = Handle::Borrowed(self.fd.as_fd());
        for (depth, part) in parts.iter().enumerate() {
            match rustix::fs::mkdirat(&handle, *part, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(errno) => return Err(errno.into()),
            }
            handle = Handle::Owned(Self::open_part(&handle, &parts, depth)?);
        }
        Ok(())
    }

    /// Creates a new file at `relative` (which must not exist) with `mode`, for writing.
    pub fn create_file(&self, relative: &Path, mode: u32) -> io::Result<File> {
        let (parent, leaf) = self.parent_of(relative)?;
        let fd = rustix::fs::openat(
            &parent,
            leaf,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        // The process's umask may have narrowed the bits asked for.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// Opens the regular file at `relative` for reading; a link, folder or special file
    /// is refused (and a FIFO is never waited on).
    pub fn open_file(&self, relative: &Path) -> io::Result<File> {
        let (parent, leaf) = self.parent_of(relative)?;
        let fd = rustix::fs::openat(
            &parent,
            leaf,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| match errno {
            Errno::LOOP => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symbolic link, which is not followed",
                    relative.display()
                ),
            ),
            other => other.into(),
        })?;
        regular_file(fd, relative)
    }

    /// Reads the whole regular file at `relative`, at most `limit` bytes.
    pub fn read(&self, relative: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_file(relative)?
            .take(limit + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is larger than {limit} bytes", relative.display()),
            ));
        }
        Ok(bytes)
    }

    /// Makes a symbolic link at `relative` pointing to `target` (not checked here: see
    /// [`Dir::escaping_link`]).
    pub fn symlink(&self, target: &Path, relative: &Path) -> io::Result<()> {
        if target.as_os_str().len() > MAX_LINK_TARGET {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the target of link {} is longer than {MAX_LINK_TARGET} bytes",
                    relative.display()
                ),
            ));
        }
        let (parent, leaf) = self.parent_of(relative)?;
        rustix::fs::symlinkat(target, &parent, leaf)?;
        Ok(())
    }

    /// The target of the link at `relative`.
    pub fn read_link(&self, relative: &Path) -> io::Result<PathBuf> {
        let (parent, leaf) = self.parent_of(relative)?;
        let target = rustix::fs::readlinkat(&parent, leaf, Vec::new())?;
        Ok(PathBuf::from(OsStr::from_bytes(target.to_bytes())))
    }

    /// Makes `to` a second name of the entry at `from` (the entry itself, never what a
    /// link points to).
    pub fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_parent, from_leaf) = self.parent_of(from)?;
        let (to_parent, to_leaf) = self.parent_of(to)?;
        rustix::fs::linkat(
            &from_parent,
            from_leaf,
            &to_parent,
            to_leaf,
            AtFlags::empty(),
        )?;
        Ok(())
    }

    /// Renames the entry at `from` to `to` under the folder `into` (which may be this
    /// one); an existing entry at `to` is replaced as `rename(2)` does.
    pub fn rename(&self, from: &Path, into: &Dir, to: &Path) -> io::Result<()> {
        let (from_parent, from_leaf) = self.parent_of(from)?;
        let (to_parent, to_leaf) = into.parent_of(to)?;
        rustix::fs::renameat(&from_parent, from_leaf, &to_parent, to_leaf)?;
        Ok(())
    }

    /// Renames the entry at `from` to `to` under `into`, refusing to replace anything.
    pub fn rename_new(&self, from: &Path, into: &Dir, to: &Path) -> io::Result<()> {
        let (from_parent, from_leaf) = self.parent_of(from)?;
        let (to_parent, to_leaf) = into.parent_of(to)?;
        rustix::fs::renameat_with(
            &from_parent,
            from_leaf,
            &to_parent,
            to_leaf,
            rustix::fs::RenameFlags::NOREPLACE,
        )?;
        Ok(())
    }

    /// Removes the file or link at `relative` (a link itself, never its target).
    pub fn remove_file(&self, relative: &Path) -> io::Result<()> {
        let (parent, leaf) = self.parent_of(relative)?;
        rustix::fs::unlinkat(&parent, leaf, AtFlags::empty())?;
        Ok(())
    }

    /// Removes the empty folder at `relative`.
    pub fn remove_dir(&self, relative: &Path) -> io::Result<()> {
        let (parent, leaf) = self.parent_of(relative)?;
        rustix::fs::unlinkat(&parent, leaf, AtFlags::REMOVEDIR)?;
        Ok(())
    }

    /// Removes whatever is at `relative`, folders with their contents; links are removed,
    /// never followed. Nothing there is not an error.
    pub fn remove_all(&self, relative: &Path) -> io::Result<()> {
        match self.kind(relative)? {
            None => Ok(()),
            Some(Kind::Folder) => {
                // Owner bits first, so that read-only folders can be emptied.
                let folder = self.open_dir(relative)?;
                rustix::fs::fchmod(&folder.fd, Mode::from_raw_mode(0o700))?;
                for (name, _) in folder.entries(Path::new(""))? {
                    folder.remove_all(Path::new(&name))?;
                }
                self.remove_dir(relative)
            }
            Some(_) => self.remove_file(relative),
        }
    }

    /// Creates the folder at `relative` (its parent must exist) with `mode`.
    pub fn create_dir(&self, relative: &Path, mode: u32) -> io::Result<()> {
        let (parent, leaf) = self.parent_of(relative)?;
        rustix::fs::mkdirat(&parent, leaf, Mode::from_raw_mode(mode))?;
        // The process's umask may have narrowed the bits asked for.
        let folder = rustix::fs::openat(&parent, leaf, FOLDER_FLAGS, Mode::empty())?;
        rustix::fs::fchmod(&folder, Mode::from_raw_mode(mode))?;
        Ok(())
    }

    /// Sets the permission bits of this folder itself.
    pub fn set_own_mode(&self, mode: u32) -> io::Result<()> {
        rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(mode))?;
        Ok(())
    }

    /// Files and links under the folder, relative to it, in name order; folders are
    /// implied and never followed through links.
    pub fn files(&self) -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        collect(&self.fd, Path::new(""), &mut |path, _, _| {
            found.push(path);
            Ok(())
        })?;
        Ok(found)
    }

    /// `files`, each with its status (read without following it).
    pub fn files_with_status(&self) -> io::Result<Vec<(PathBuf, Status)>> {
        let mut found = Vec::new();
        collect(&self.fd, Path::new(""), &mut |path, folder, name| {
            let stat = rustix::fs::statat(folder, name, AtFlags::SYMLINK_NOFOLLOW)?;
            found.push((
                path,
                Status {
                    kind: Kind::of(FileType::from_raw_mode(stat.st_mode)),
                    mode: stat.st_mode & 0o7777,
                    size: u64::try_from(stat.st_size).unwrap_or(0),
                },
            ));
            Ok(())
        })?;
        Ok(found)
    }

    /// The first link under the folder whose resolution (following the links it meets,
    /// as the kernel would, inside this folder) rises above the folder or loops.
    /// A component that does not exist ends the links met, but `..` after it still
    /// counts, so a dangling link cannot point outside either (see [`crate::links`]).
    pub fn escaping_link(&self) -> io::Result<Option<EscapingLink>> {
        Ok(LinkTree::read(self)?.escaping_link(Scope::Folder))
    }
}

/// What a walk does with each entry that is no folder: its path relative to the walk's
/// folder, the folder that holds it and its name there.
type Visit<'v> = dyn FnMut(PathBuf, BorrowedFd<'_>, &OsStr) -> io::Result<()> + 'v;

/// Visits everything below the open `folder` but folders, in name order; each subfolder
/// is opened from its parent's handle (never through a link), so a deep tree costs one
/// open per folder.
fn collect(folder: &impl AsFd, relative: &Path, visit: &mut Visit<'_>) -> io::Result<()> {
    for (name, kind) in list(folder)? {
        let path = relative.join(&name);
        if kind == Kind::Folder {
            let child = rustix::fs::openat(folder, name.as_os_str(), FOLDER_FLAGS, Mode::empty())?;
            collect(&child, &path, visit)?;
        } else {
            visit(path, folder.as_fd(), &name)?;
        }
    }
    Ok(())
}

/// The entries of an open folder, sorted by name.
fn list(folder: &impl AsFd) -> io::Result<Vec<(OsString, Kind)>> {
    let mut listing = rustix::fs::Dir::read_from(folder)?;
    let mut entries = Vec::new();
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => {
                // Some file systems do not say in the listing.
                let stat = rustix::fs::statat(folder, name, AtFlags::SYMLINK_NOFOLLOW)?;
                Kind::of(FileType::from_raw_mode(stat.st_mode))
            }
            known => Kind::of(known),
        };
        entries.push((name.to_owned(), kind));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// Opens the regular file a user named at `path` (a link there is followed: it was named)
/// for reading. A FIFO, device or folder is refused at once, never waited on or read.
pub fn open_named_file(path: &Path) -> io::Result<File> {
    // Devices are not even opened (an open alone can act on some); the type is checked
    // again on the open file in case the name changed meanwhile.
    let named = Kind::of(FileType::from_raw_mode(rustix::fs::stat(path)?.st_mode));
    if named != Kind::File {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is {}, not a file", path.display(), named.described()),
        ));
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    regular_file(fd, path)
}

/// The file opened (without blocking) as `fd`, when it is a regular file; `shown` names
/// it in the error otherwise.
fn regular_file(fd: OwnedFd, shown: &Path) -> io::Result<File> {
    let kind = Kind::of(FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode));
    if kind != Kind::File {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is {}, not a file", shown.display(), kind.described()),
        ));
    }
    // Reads of a regular file never block; clear the flag all the same.
    rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
    Ok(File::from(fd))
}

/// Whether `name` is a plain file name: not empty, not `.` or `..`, without `/` or NUL.
/// Library names (`DT_NEEDED` entries a package may carry, names in package indexes)
/// must be: anything else would be looked up outside the folders searched.
pub fn is_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp() -> (tempfile::TempDir, Dir) {
        let temp = tempfile::tempdir().expect("temp");
        let dir = Dir::open(temp.path()).expect("open");
        (temp, dir)
    }

    #[test]
    fn writes_never_pass_through_links() {
        let (temp, dir) = temp();
        let outside = tempfile::tempdir().expect("outside");
        std::os::unix::fs::symlink(outside.path(), temp.path().join("out")).expect("link");
        std::fs::create_dir(temp.path().join("real")).expect("mkdir");
        std::os::unix::fs::symlink("real", temp.path().join("inner")).expect("link");
        for attempt in [
            dir.create_file(Path::new("out/planted"), 0o755).map(drop),
            dir.create_dir_all(Path::new("out/a/b")),
            dir.create_file(Path::new("inner/x"), 0o644).map(drop),
            dir.symlink(Path::new("x"), Path::new("out/l")),
            dir.remove_all(Path::new("out/anything")),
            dir.open_file(Path::new("out")).map(drop),
        ] {
            let error = attempt.expect_err("a link on the way is refused");
            let message = error.to_string();
            assert!(
                message.contains("symbolic link") || error.kind() == io::ErrorKind::NotFound,
                "{message}"
            );
        }
        assert_eq!(std::fs::read_dir(outside.path()).expect("ls").count(), 0);
        assert_eq!(
            std::fs::read_dir(temp.path().join("real"))
                .expect("ls")
                .count(),
            0
        );
        // Removing the link removes the link, not the folder it names.
        dir.remove_all(Path::new("out")).expect("remove link");
        assert!(outside.path().is_dir());
    }

    #[test]
    fn paths_that_could_leave_are_refused() {
        let (_temp, dir) = temp();
        for bad in ["../x", "/etc/passwd", "a/../../x"] {
            let error = dir.create_file(Path::new(bad), 0o644).expect_err("refused");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn files_are_made_with_their_mode_and_read_back() {
        let (temp, dir) = temp();
        dir.create_dir_all(Path::new("a/b")).expect("mkdir");
        let mut file = dir.create_file(Path::new("a/b/f"), 0o755).expect("create");
        file.write_all(b"data").expect("write");
        drop(file);
        let status = dir
            .status(Path::new("a/b/f"))
            .expect("stat")
            .expect("there");
        assert_eq!(
            (status.kind, status.mode, status.size),
            (Kind::File, 0o755, 4)
        );
        assert_eq!(dir.read(Path::new("a/b/f"), 4).expect("read"), b"data");
        assert!(dir.read(Path::new("a/b/f"), 3).is_err(), "over the limit");
        assert!(
            dir.create_file(Path::new("a/b/f"), 0o644).is_err(),
            "never replaced"
        );
        assert_eq!(dir.files().expect("files"), [PathBuf::from("a/b/f")]);
        assert!(temp.path().join("a/b/f").is_file());
    }

    #[test]
    fn a_fifo_is_refused_without_waiting() {
        let (temp, dir) = temp();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            temp.path().join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .expect("mkfifo");
        let error = dir.open_file(Path::new("fifo")).expect_err("refused");
        assert!(error.to_string().contains("a FIFO, not a file"), "{error}");
    }

    #[test]
    fn link_chains_are_resolved_inside_the_folder() {
        let inside = |links: &[(&str, &str)]| -> Option<EscapingLink> {
            let (temp, dir) = temp();
            std::fs::create_dir_all(temp.path().join("lib/deep")).expect("mkdir");
            for (link, target) in links {
                let path = temp.path().join(link);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::os::unix::fs::symlink(target, path).expect("link");
            }
            dir.escaping_link().expect("walk")
        };
        // A real library's chain, and a link to a folder.
        assert_eq!(
            inside(&[
                ("lib/libx.so", "libx.so.1"),
                ("lib/libx.so.1", "libx.so.1.2"),
                ("lib64", "lib"),
                ("lib/deep/up", "../libx.so")
            ]),
            None
        );
        // `y -> .` makes `y/y/y/../../..` look deep, but it resolves to the top, then out.
        let escape =
            inside(&[("y", "."), ("lib/x", "../y/y/y/../../../../outside")]).expect("escapes");
        assert_eq!(escape.link, Path::new("lib/x"));
        assert!(!escape.loops);
        // Through a link to a folder higher up.
        assert!(inside(&[("lib/deep/top", "../.."), ("lib/z", "deep/top/../x")]).is_some());
        // Dangling, but pointing out.
        assert!(inside(&[("lib/d", "missing/../../../x")]).is_some());
        assert!(inside(&[("abs", "/etc")]).is_some());
        let loop_ = inside(&[("a", "b"), ("b", "a")]).expect("loops");
        assert!(loop_.loops);
    }
}
