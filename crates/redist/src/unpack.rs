//! Unpacking tar.xz, tar.gz and zip (wheel) archives safely: no entry lands outside the
//! target (no `..`, no absolute paths, no links that escape, no writes through links), no
//! device files, a bound on the unpacked bytes, exec bits and symbolic links kept, and the
//! archive's single top folder stripped. Everything is unpacked beside the target and
//! renamed into place at the end: a refused or broken archive leaves nothing.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;

/// Limits for one archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of file contents.
    pub max_bytes: u64,
    /// Number of entries.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // The largest redistributable archives (TensorRT) unpack to about 20 GB.
        Limits {
            max_bytes: 64 << 30,
            max_entries: 1_000_000,
        }
    }
}

/// The container formats, told by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TarXz,
    TarGz,
    Zip,
}

impl Format {
    pub fn detect(archive: &Path) -> Result<Format, Error> {
        let mut magic = [0u8; 6];
        let mut file = File::open(archive).map_err(|e| Error::io(archive, e))?;
        let n = file.read(&mut magic).map_err(|e| Error::io(archive, e))?;
        match &magic[..n] {
            [0xfd, b'7', b'z', b'X', b'Z', 0] => Ok(Format::TarXz),
            [0x1f, 0x8b, ..] => Ok(Format::TarGz),
            [b'P', b'K', 3, 4, ..] => Ok(Format::Zip),
            _ => Err(Error::BadArchive {
                archive: archive.to_owned(),
                problem: "not a tar.xz, tar.gz or zip archive".to_owned(),
            }),
        }
    }
}

/// Unpacks `archive` into `target` (which must not exist), stripping a single top folder.
pub fn unpack(archive: &Path, target: &Path, limits: Limits) -> Result<(), Error> {
    if target.symlink_metadata().is_ok() {
        return Err(Error::io(
            target,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
        ));
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let work = tempfile::Builder::new()
        .prefix(".cudapkgs-unpack-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let raw = work.path().join("raw");
    std::fs::create_dir(&raw).map_err(|e| Error::io(&raw, e))?;
    let bad = |problem: String| Error::BadArchive {
        archive: archive.to_owned(),
        problem,
    };
    let mut writer = Writer {
        root: &raw,
        limits,
        bytes: 0,
        entries: 0,
        links: HashSet::new(),
    };
    let unpacked = match Format::detect(archive)? {
        Format::TarXz => {
            let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
            let stream = liblzma::read::XzDecoder::new(BufReader::with_capacity(1 << 20, file));
            unpack_tar(stream, &mut writer)
        }
        Format::TarGz => {
            let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
            let stream = flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 20, file));
            unpack_tar(stream, &mut writer)
        }
        Format::Zip => unpack_zip(archive, &mut writer),
    };
    unpacked.map_err(bad)?;
    let top = single_top_folder(&raw).map_err(|e| Error::io(&raw, e))?;
    let tree = top.unwrap_or(raw);
    check_links_stay_inside(&tree, &tree).map_err(bad)?;
    std::fs::rename(&tree, target).map_err(|e| Error::io(target, e))?;
    Ok(())
}

/// The one folder `root` holds, when it holds nothing else.
fn single_top_folder(root: &Path) -> std::io::Result<Option<PathBuf>> {
    let entries: Vec<_> = std::fs::read_dir(root)?.collect::<Result<_, _>>()?;
    match entries.as_slice() {
        [only] if only.file_type()?.is_dir() => Ok(Some(only.path())),
        _ => Ok(None),
    }
}

/// Every symbolic link under `dir` must point inside `root`.
fn check_links_stay_inside(root: &Path, dir: &Path) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        let path = entry.path();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| e.to_string())?;
            let inside = path
                .parent()
                .unwrap_or(root)
                .strip_prefix(root)
                .unwrap_or(Path::new(""));
            if !stays_inside(inside, &target) {
                let name = path.strip_prefix(root).unwrap_or(&path);
                return Err(format!(
                    "link {} -> {} points outside the package",
                    name.display(),
                    target.display()
                ));
            }
        } else if kind.is_dir() {
            check_links_stay_inside(root, &path)?;
        }
    }
    Ok(())
}

/// Whether `target`, read from folder `from` (relative to the root), stays inside.
fn stays_inside(from: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: usize = from.components().count();
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// An entry's path as a relative path without `.`; `..` and absolute paths refused.
fn clean_path(name: &Path) -> Result<PathBuf, String> {
    let mut clean = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "entry {} leaves the archive's folder",
                    name.display()
                ));
            }
        }
    }
    Ok(clean)
}

/// What an archive entry is.
enum Entry<'a> {
    Folder,
    File {
        executable: bool,
        contents: &'a mut dyn Read,
    },
    Symlink(PathBuf),
    /// A second name for an earlier entry (a path inside the archive).
    Hardlink(PathBuf),
}

/// Writes entries under `root`, enforcing the limits and the rules.
struct Writer<'a> {
    root: &'a Path,
    limits: Limits,
    bytes: u64,
    entries: u64,
    /// Symbolic links made so far: nothing is written through one.
    links: HashSet<PathBuf>,
}

impl Writer<'_> {
    fn add(&mut self, name: &Path, entry: Entry<'_>) -> Result<(), String> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(format!("more than {} entries", self.limits.max_entries));
        }
        let relative = clean_path(name)?;
        if relative.as_os_str().is_empty() {
            return Ok(());
        }
        if relative.ancestors().skip(1).any(|a| self.links.contains(a)) {
            return Err(format!(
                "entry {} would be written through a symbolic link",
                name.display()
            ));
        }
        let path = self.root.join(&relative);
        let io = |e: std::io::Error| format!("{}: {e}", relative.display());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        match entry {
            Entry::Folder => std::fs::create_dir_all(&path).map_err(io)?,
            Entry::File {
                executable,
                contents,
            } => {
                let _ = std::fs::remove_file(&path);
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(if executable { 0o755 } else { 0o644 })
                    .open(&path)
                    .map_err(io)?;
                let room = self.limits.max_bytes - self.bytes;
                let mut limited = contents.take(room + 1);
                let mut buffer = vec![0u8; 1 << 16];
                let mut copied = 0u64;
                loop {
                    let n = match limited.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(format!(
                                "damaged or truncated in {}: {e}",
                                relative.display()
                            ));
                        }
                    };
                    out.write_all(&buffer[..n]).map_err(io)?;
                    copied += n as u64;
                }
                self.bytes += copied;
                if copied > room {
                    return Err(format!(
                        "unpacks to more than {} bytes (a bomb?)",
                        self.limits.max_bytes
                    ));
                }
                out.flush().map_err(io)?;
            }
            Entry::Symlink(target) => {
                let from = relative.parent().unwrap_or(Path::new(""));
                if !stays_inside(from, &target) {
                    return Err(format!(
                        "link {} -> {} points outside the archive",
                        name.display(),
                        target.display()
                    ));
                }
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(&target, &path).map_err(io)?;
                self.links.insert(relative);
            }
            Entry::Hardlink(target) => {
                let source = clean_path(&target)?;
                if self.links.contains(&source) {
                    return Err(format!(
                        "hard link {} names a symbolic link",
                        name.display()
                    ));
                }
                let source = self.root.join(source);
                if !source.symlink_metadata().is_ok_and(|m| m.is_file()) {
                    return Err(format!(
                        "hard link {} -> {} names no earlier file",
                        name.display(),
                        target.display()
                    ));
                }
                let _ = std::fs::remove_file(&path);
                std::fs::hard_link(&source, &path).map_err(io)?;
            }
        }
        Ok(())
    }
}

fn unpack_tar(stream: impl Read, writer: &mut Writer<'_>) -> Result<(), String> {
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("damaged or truncated: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("unreadable entry name: {e}"))?
            .into_owned();
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        let link = || -> Result<PathBuf, String> {
            entry
                .link_name()
                .map_err(|e| format!("{}: unreadable link: {e}", name.display()))?
                .map(std::borrow::Cow::into_owned)
                .ok_or_else(|| format!("{}: link without a target", name.display()))
        };
        let item = match kind {
            tar::EntryType::Directory => Entry::Folder,
            tar::EntryType::Symlink => Entry::Symlink(link()?),
            tar::EntryType::Link => Entry::Hardlink(link()?),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                writer.add(
                    &name,
                    Entry::File {
                        executable: mode & 0o111 != 0,
                        contents: &mut entry,
                    },
                )?;
                continue;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => {
                return Err(format!(
                    "entry {} is a {other:?}, not a file, folder or link",
                    name.display()
                ));
            }
        };
        writer.add(&name, item)?;
    }
    Ok(())
}

/// The file-type bits of a Unix mode.
const KIND: u32 = 0o170_000;

fn unpack_zip(archive: &Path, writer: &mut Writer<'_>) -> Result<(), String> {
    let file = File::open(archive).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| format!("not a readable zip archive: {e}"))?;
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| format!("damaged or truncated: {e}"))?;
        let name = PathBuf::from(member.name());
        let mode = member.unix_mode().unwrap_or(0o644);
        if member.is_dir() {
            writer.add(&name, Entry::Folder)?;
        } else if mode & KIND == 0o120_000 {
            let mut target = String::new();
            member
                .read_to_string(&mut target)
                .map_err(|e| format!("{}: unreadable link: {e}", name.display()))?;
            writer.add(&name, Entry::Symlink(PathBuf::from(target)))?;
        } else if mode & KIND == 0 || mode & KIND == 0o100_000 {
            writer.add(
                &name,
                Entry::File {
                    executable: mode & 0o111 != 0,
                    contents: &mut member,
                },
            )?;
        } else {
            return Err(format!(
                "entry {} is not a file, folder or link (mode {mode:o})",
                name.display()
            ));
        }
    }
    Ok(())
}
