//! Unpacking tar.xz, tar.gz and zip (wheel) archives safely: no entry lands outside the
//! target (no `..`, no absolute paths, nothing written through a link, no link whose
//! resolution leaves the package), no device files or FIFOs, bounds on the unpacked bytes,
//! the entries and the length of names and link targets, exec bits and symbolic links
//! kept, and the archive's single top folder stripped. Everything is unpacked in a work
//! folder beside the target and renamed into place at the end: a refused or broken
//! archive leaves nothing.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use cudapkgs_tree::dir::{Dir, EscapingLink, Kind, MAX_LINK_TARGET, MAX_PATH_COMPONENTS};
use cudapkgs_tree::scratch::Scratch;
use cudapkgs_tree::zip_archive::{max_unpacked_bytes, open_zip};

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
    /// The format of an archive, by its first bytes (read at offset 0, whatever the
    /// file's position).
    pub fn of(file: &File) -> Option<Format> {
        let mut magic = [0u8; 6];
        let n = std::os::unix::fs::FileExt::read_at(file, &mut magic, 0).ok()?;
        match &magic[..n] {
            [0xfd, b'7', b'z', b'X', b'Z', 0] => Some(Format::TarXz),
            [0x1f, 0x8b, ..] => Some(Format::TarGz),
            [b'P', b'K', 3, 4, ..] => Some(Format::Zip),
            _ => None,
        }
    }
}

/// Unpacks `archive` into `target` (which must not exist), stripping a single top folder.
///
/// Every entry is written relative to a handle on a private work folder, and no link is
/// followed on the way (`cudapkgs_tree::dir`), so nothing can land outside whatever the
/// entries say. Once everything is unpacked, every link is resolved inside the package,
/// following the links it meets; one that rises above the package (or loops) refuses the
/// archive. Only then is the package renamed to `target`.
pub fn unpack(archive: &Path, target: &Path, limits: Limits) -> Result<(), Error> {
    if target.symlink_metadata().is_ok() {
        return Err(Error::io(
            target,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
        ));
    }
    let file = cudapkgs_tree::dir::open_named_file(archive).map_err(|e| Error::io(archive, e))?;
    let format = Format::of(&file).ok_or_else(|| Error::BadArchive {
        archive: archive.to_owned(),
        problem: "not a tar.xz, tar.gz or zip archive".to_owned(),
    })?;
    let parent = cudapkgs_tree::folder_of(target);
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    cudapkgs_tree::scratch::remove_abandoned(parent, WORK_PREFIX)
        .map_err(|e| Error::io(parent, e))?;
    let work = Scratch::create(parent, WORK_PREFIX).map_err(|e| Error::io(parent, e))?;
    let bad = |problem: String| Error::BadArchive {
        archive: archive.to_owned(),
        problem,
    };
    let io_at = |e: std::io::Error| Error::io(&work.path(), e);
    let dir = work.dir().map_err(io_at)?;
    dir.create_dir(Path::new("raw"), 0o755).map_err(io_at)?;
    let raw = dir.open_dir(Path::new("raw")).map_err(io_at)?;
    // A compressed stream of zeros is tiny: what an archive unpacks to is bounded by a
    // ratio to its size (NVIDIA's tar.xz archives unpack to a few times theirs).
    let archive_bytes = file.metadata().map_err(|e| Error::io(archive, e))?.len();
    let limits = Limits {
        max_bytes: limits.max_bytes.min(max_unpacked_bytes(archive_bytes)),
        ..limits
    };
    let mut writer = Writer {
        dir: &raw,
        limits,
        bytes: 0,
        entries: 0,
    };
    match format {
        Format::TarXz => {
            let stream = liblzma::read::XzDecoder::new(BufReader::with_capacity(1 << 20, file));
            unpack_tar(stream, &mut writer)
        }
        Format::TarGz => {
            let stream = flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 20, file));
            unpack_tar(stream, &mut writer)
        }
        Format::Zip => unpack_zip(file, &mut writer),
    }
    .map_err(bad)?;
    let tree = match single_top_folder(&raw).map_err(io_at)? {
        Some(top) => Path::new("raw").join(top),
        None => PathBuf::from("raw"),
    };
    let package = dir.open_dir(&tree).map_err(io_at)?;
    if let Some(escape) = package.escaping_link().map_err(io_at)? {
        return Err(bad(escaping(&escape)));
    }
    std::fs::rename(work.path().join(&tree), target).map_err(|e| Error::io(target, e))?;
    Ok(())
}

/// Why a link refuses a package.
pub(crate) fn escaping(escape: &EscapingLink) -> String {
    let what = if escape.loops {
        "loops through more than 40 links"
    } else {
        "points outside the package"
    };
    format!(
        "link {} -> {} {what}",
        escape.link.display(),
        escape.target.display()
    )
}

/// The prefix of the work folders unpacking leaves beside its target while it runs.
const WORK_PREFIX: &str = ".cudapkgs-unpack-";

/// The one folder `root` holds, when it holds nothing else.
fn single_top_folder(root: &Dir) -> std::io::Result<Option<OsString>> {
    let mut entries = root.entries(Path::new(""))?;
    match entries.as_slice() {
        [(_, Kind::Folder)] => Ok(entries.pop().map(|(name, _)| name)),
        _ => Ok(None),
    }
}

/// Whether `target`, read from folder `from` (relative to the root), stays inside by its
/// words alone (a first, cheap refusal; links are resolved once all are there).
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
    if name.as_os_str().len() > MAX_LINK_TARGET {
        return Err(format!(
            "an entry name is longer than {MAX_LINK_TARGET} bytes"
        ));
    }
    refuse_deep(name, "entry")?;
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

/// Refuses a path of more than [`MAX_PATH_COMPONENTS`] components (`what` names it).
fn refuse_deep(path: &Path, what: &str) -> Result<(), String> {
    let count = path.components().count();
    if count <= MAX_PATH_COMPONENTS {
        return Ok(());
    }
    let shown: PathBuf = path.components().take(4).collect();
    Err(format!(
        "{what} {}/… has {count} path components, more than the {MAX_PATH_COMPONENTS} accepted (no real package nests so deep)",
        shown.display()
    ))
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

/// Writes entries under a folder handle, enforcing the limits and the rules.
struct Writer<'a> {
    dir: &'a Dir,
    limits: Limits,
    bytes: u64,
    entries: u64,
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
        let failed = |e: std::io::Error| format!("entry {}: {e}", name.display());
        if let Some(parent) = relative.parent() {
            self.dir.create_dir_all(parent).map_err(failed)?;
        }
        match entry {
            Entry::Folder => self.dir.create_dir_all(&relative).map_err(failed)?,
            Entry::File {
                executable,
                contents,
            } => {
                self.clear(&relative).map_err(failed)?;
                let mode = if executable { 0o755 } else { 0o644 };
                let out = self.dir.create_file(&relative, mode).map_err(failed)?;
                self.copy(contents, out, &relative)?;
            }
            Entry::Symlink(target) => {
                refuse_deep(&target, &format!("the target of link {}:", name.display()))?;
                let from = relative.parent().unwrap_or(Path::new(""));
                if !stays_inside(from, &target) {
                    return Err(format!(
                        "link {} -> {} points outside the archive",
                        name.display(),
                        target.display()
                    ));
                }
                self.clear(&relative).map_err(failed)?;
                self.dir.symlink(&target, &relative).map_err(failed)?;
            }
            Entry::Hardlink(target) => {
                let source = clean_path(&target)?;
                match self.dir.kind(&source) {
                    Ok(Some(Kind::File)) => {}
                    Ok(Some(Kind::Symlink)) => {
                        return Err(format!(
                            "hard link {} names a symbolic link",
                            name.display()
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "hard link {} -> {} names no earlier file",
                            name.display(),
                            target.display()
                        ));
                    }
                }
                self.clear(&relative).map_err(failed)?;
                self.dir.hard_link(&source, &relative).map_err(failed)?;
            }
        }
        Ok(())
    }

    /// An entry met again replaces the earlier one, as tar does; a folder is never
    /// replaced by something else.
    fn clear(&self, relative: &Path) -> std::io::Result<()> {
        match self.dir.kind(relative)? {
            None => Ok(()),
            Some(Kind::Folder) => Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "would replace a folder",
            )),
            Some(_) => self.dir.remove_file(relative),
        }
    }

    /// Refuses a file of `size` bytes that the bound has no room for.
    fn refuse_past_bound(&self, size: u64) -> Result<(), String> {
        if size > self.limits.max_bytes - self.bytes {
            return Err(self.past_bound());
        }
        Ok(())
    }

    fn past_bound(&self) -> String {
        format!(
            "unpacks to more than {} bytes (a bomb?)",
            self.limits.max_bytes
        )
    }

    /// Copies a file's contents within the bound on the unpacked bytes.
    fn copy(
        &mut self,
        contents: &mut dyn Read,
        mut out: File,
        relative: &Path,
    ) -> Result<(), String> {
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
            out.write_all(&buffer[..n])
                .map_err(|e| format!("{}: {e}", relative.display()))?;
            copied += n as u64;
        }
        self.bytes += copied;
        if copied > room {
            return Err(self.past_bound());
        }
        Ok(())
    }
}

/// The most bytes of PAX records read for one entry.
const MAX_PAX_RECORDS: u64 = 1 << 20;

/// Reads an extension entry's data, refusing more than `limit` bytes.
fn read_bounded(entry: &mut impl Read, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("damaged or truncated: {e}"))?;
    if data.len() as u64 > limit {
        return Err(format!("{what} is longer than {limit} bytes"));
    }
    Ok(data)
}

/// A GNU long name or link: its bytes up to the first NUL.
fn long_name(data: Vec<u8>) -> Vec<u8> {
    match data.iter().position(|&b| b == 0) {
        Some(end) => data[..end].to_vec(),
        None => data,
    }
}

/// The extension records that describe the next real entry.
#[derive(Default)]
struct Extensions {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Extensions {
    fn pax_value(&self, key: &[u8]) -> Option<&[u8]> {
        let records = self.pax.as_deref()?;
        tar::PaxExtensions::new(records)
            .filter_map(Result::ok)
            .filter(|record| record.key_bytes() == key)
            .last()
            .map(|record| record.value_bytes())
    }

    fn is_empty(&self) -> bool {
        self.name.is_none() && self.link.is_none() && self.pax.is_none()
    }

    /// Takes in `entry` when it is an extension record (true), each read within a bound.
    fn absorb(&mut self, entry: &mut impl Read, kind: tar::EntryType) -> Result<bool, String> {
        let limit = MAX_LINK_TARGET as u64;
        match kind {
            tar::EntryType::GNULongName => {
                self.name = Some(long_name(read_bounded(entry, limit, "a long name")?));
            }
            tar::EntryType::GNULongLink => {
                self.link = Some(long_name(read_bounded(entry, limit, "a long link")?));
            }
            tar::EntryType::XHeader => {
                self.pax = Some(read_bounded(entry, MAX_PAX_RECORDS, "a PAX header")?);
            }
            tar::EntryType::XGlobalHeader => {
                let global = Extensions {
                    pax: Some(read_bounded(entry, MAX_PAX_RECORDS, "a PAX header")?),
                    ..Extensions::default()
                };
                if [&b"path"[..], b"linkpath", b"size"]
                    .iter()
                    .any(|key| global.pax_value(key).is_some())
                {
                    return Err(
                        "a global PAX header sets names or sizes for every entry".to_owned()
                    );
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The name of the entry these records describe.
    fn name(&self, header: &tar::Header) -> PathBuf {
        let bytes = self
            .pax_value(b"path")
            .map(<[u8]>::to_vec)
            .or_else(|| self.name.clone())
            .unwrap_or_else(|| header.path_bytes().into_owned());
        PathBuf::from(OsStr::from_bytes(&bytes))
    }

    /// The link target of the entry these records describe.
    fn link(&self, header: &tar::Header, name: &Path) -> Result<PathBuf, String> {
        let bytes = self
            .pax_value(b"linkpath")
            .map(<[u8]>::to_vec)
            .or_else(|| self.link.clone())
            .or_else(|| header.link_name_bytes().map(std::borrow::Cow::into_owned))
            .filter(|bytes| !bytes.is_empty())
            .ok_or_else(|| format!("{}: link without a target", name.display()))?;
        Ok(PathBuf::from(OsStr::from_bytes(&bytes)))
    }

    /// Raw entries are sized by their header; a PAX size that says otherwise would make
    /// this reader and others see different archives.
    fn check_size(&self, header: &tar::Header, name: &Path) -> Result<(), String> {
        let Some(size) = self.pax_value(b"size") else {
            return Ok(());
        };
        let pax_size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        if pax_size != header.entry_size().ok() {
            return Err(format!(
                "entry {}: its PAX size disagrees with its header",
                name.display()
            ));
        }
        Ok(())
    }
}

fn unpack_tar(stream: impl Read, writer: &mut Writer<'_>) -> Result<(), String> {
    let mut archive = tar::Archive::new(stream);
    // Raw entries: the crate would read long names and PAX records into memory without a
    // bound; here each is read within one.
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?
        .raw(true);
    let mut extensions = Extensions::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("damaged or truncated: {e}"))?;
        let kind = entry.header().entry_type();
        if extensions.absorb(&mut entry, kind)? {
            continue;
        }
        let described = std::mem::take(&mut extensions);
        let name = described.name(entry.header());
        described.check_size(entry.header(), &name)?;
        let item = match kind {
            tar::EntryType::Directory => Entry::Folder,
            tar::EntryType::Symlink => Entry::Symlink(described.link(entry.header(), &name)?),
            tar::EntryType::Link => Entry::Hardlink(described.link(entry.header(), &name)?),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // Refused by what it declares, before a byte of it is written.
                let declared = entry.header().size().unwrap_or(0);
                writer.refuse_past_bound(declared)?;
                let mode = entry.header().mode().unwrap_or(0o644);
                writer.add(
                    &name,
                    Entry::File {
                        executable: mode & 0o111 != 0,
                        contents: &mut entry,
                    },
                )?;
                continue;
            }
            other => {
                return Err(format!(
                    "entry {} is {}, not a file, folder or link",
                    name.display(),
                    entry_kind(other)
                ));
            }
        };
        writer.add(&name, item)?;
    }
    if !extensions.is_empty() {
        return Err("damaged or truncated: extension records describe no entry".to_owned());
    }
    Ok(())
}

/// The file-type bits of a Unix mode.
const KIND: u32 = 0o170_000;

fn unpack_zip(file: File, writer: &mut Writer<'_>) -> Result<(), String> {
    // Entries may still lie about their sizes: what they really unpack to is bounded by
    // the archive's ratio as every format's is.
    let mut zip = open_zip(BufReader::new(file)).map_err(|e| e.to_string())?;
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| format!("damaged or truncated: {e}"))?;
        let name = PathBuf::from(member.name());
        let mode = member.unix_mode().unwrap_or(0o644);
        if member.is_dir() {
            writer.add(&name, Entry::Folder)?;
        } else if mode & KIND == 0o120_000 {
            let target = read_bounded(&mut member, MAX_LINK_TARGET as u64, "a link target")
                .map_err(|e| format!("{}: {e}", name.display()))?;
            let target = PathBuf::from(OsStr::from_bytes(&target));
            writer.add(&name, Entry::Symlink(target))?;
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

/// What a tar entry of a type the unpacker refuses is, in words.
fn entry_kind(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Fifo => "a named pipe (FIFO)".to_owned(),
        tar::EntryType::Char => "a character device".to_owned(),
        tar::EntryType::Block => "a block device".to_owned(),
        tar::EntryType::GNUSparse => "a GNU sparse file".to_owned(),
        other => match other.as_byte() {
            printable @ 0x21..=0x7e => {
                format!("of the unknown type `{}`", char::from(printable))
            }
            byte => format!("of the unknown type {byte:#04x}"),
        },
    }
}
