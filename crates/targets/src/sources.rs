//! The build files of a source tree, an sdist (`.tar.gz`, `.zip`) or a single named
//! file, read as text. Trees are walked through folder handles and no link is
//! followed; archives are read as streams and never unpacked.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use cudapkgs_tree::dir::{Dir, Kind};

use crate::Error;
use crate::lang::Language;

/// Build files larger than this are not build files anyone wrote by hand.
pub const MAX_FILE_BYTES: u64 = 8 << 20;
/// Archive members looked at, at most (a source release has thousands, not millions).
const MAX_MEMBERS: usize = 1_000_000;

/// One build file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the tree, or to the archive's top folder.
    pub path: PathBuf,
    pub language: Language,
    pub text: String,
}

/// What the user named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A folder: paths are relative to it.
    Tree,
    /// A source archive: paths are relative to its single top folder, if it has one.
    Sdist,
    /// One build file: its path is its file name.
    File,
}

/// The build files of `path`, in path order.
pub fn read(path: &Path) -> Result<(Origin, Vec<SourceFile>), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if metadata.is_dir() {
        return Ok((Origin::Tree, read_tree(path)?));
    }
    if let Some(format) = archive_format(path) {
        return Ok((Origin::Sdist, read_sdist(path, format)?));
    }
    let language = Language::of(path).ok_or_else(|| Error::NotSource {
        path: path.to_owned(),
    })?;
    let file = cudapkgs_tree::dir::open_named_file(path).map_err(io)?;
    let text = read_text(file, path)?;
    let file_name = PathBuf::from(path.file_name().unwrap_or_default());
    Ok((
        Origin::File,
        text.map(|text| SourceFile {
            path: file_name,
            language,
            text,
        })
        .into_iter()
        .collect(),
    ))
}

/// Reads a file's text: `None` when it is not UTF-8 (not a build file of ours).
fn read_text(reader: impl Read, path: &Path) -> Result<Option<String>, Error> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(String::from_utf8(bytes).ok())
}

fn read_tree(root: &Path) -> Result<Vec<SourceFile>, Error> {
    let io = |path: &Path, source| Error::Io {
        path: root.join(path),
        source,
    };
    let dir = Dir::open(root).map_err(|source| io(Path::new(""), source))?;
    let mut files = Vec::new();
    for relative in dir.files().map_err(|source| io(Path::new(""), source))? {
        let Some(language) = Language::of(&relative) else {
            continue;
        };
        if in_hidden_folder(&relative) {
            continue;
        }
        // Links are never followed: what they name is not part of this tree.
        if dir
            .kind(&relative)
            .map_err(|source| io(&relative, source))?
            != Some(Kind::File)
        {
            continue;
        }
        let file = dir
            .open_file(&relative)
            .map_err(|source| io(&relative, source))?;
        if let Some(text) = read_text(file, &root.join(&relative))? {
            files.push(SourceFile {
                path: relative,
                language,
                text,
            });
        }
    }
    Ok(files)
}

/// How an sdist is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchiveFormat {
    TarGz,
    Zip,
}

fn archive_format(path: &Path) -> Option<ArchiveFormat> {
    let lower = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
    };
    match lower(path).as_deref()? {
        "zip" => Some(ArchiveFormat::Zip),
        "tgz" => Some(ArchiveFormat::TarGz),
        "gz" if lower(Path::new(path.file_stem()?)).as_deref() == Some("tar") => {
            Some(ArchiveFormat::TarGz)
        }
        _ => None,
    }
}

fn read_sdist(path: &Path, format: ArchiveFormat) -> Result<Vec<SourceFile>, Error> {
    let archive = |message: String| Error::Archive {
        path: path.to_owned(),
        message,
    };
    let file = cudapkgs_tree::dir::open_named_file(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut members: Vec<(PathBuf, String)> = Vec::new();
    let mut keep = |member: &Path, reader: &mut dyn Read| -> Result<(), Error> {
        if Language::of(member).is_none() || in_hidden_folder(member) {
            return Ok(());
        }
        let shown = path.join(member);
        if let Some(text) = read_text(reader, &shown)? {
            members.push((member.to_owned(), text));
        }
        Ok(())
    };
    let mut count = 0usize;
    if format == ArchiveFormat::Zip {
        let mut zip =
            cudapkgs_tree::zip_archive::open_zip(file).map_err(|e| archive(e.to_string()))?;
        for index in 0..zip.len() {
            let mut entry = zip.by_index(index).map_err(|e| archive(e.to_string()))?;
            if !entry.is_file() {
                continue;
            }
            let Some(member) = entry.enclosed_name() else {
                return Err(archive(format!(
                    "member `{}` leaves the archive",
                    entry.name()
                )));
            };
            keep(&member, &mut entry)?;
        }
    } else {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().map_err(|e| archive(e.to_string()))? {
            count += 1;
            if count > MAX_MEMBERS {
                return Err(archive(format!("more than {MAX_MEMBERS} members")));
            }
            let mut entry = entry.map_err(|e| archive(e.to_string()))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let member = entry
                .path()
                .map_err(|e| archive(e.to_string()))?
                .into_owned();
            if member
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(archive(format!(
                    "member `{}` leaves the archive",
                    member.display()
                )));
            }
            keep(&member, &mut entry)?;
        }
    }
    let top = single_top_folder(members.iter().map(|(member, _)| member.as_path()));
    let mut files: Vec<SourceFile> = members
        .into_iter()
        .map(|(member, text)| {
            let relative = top
                .as_ref()
                .and_then(|top| member.strip_prefix(top).ok())
                .map_or_else(|| member.clone(), Path::to_owned);
            SourceFile {
                language: Language::of(&member).expect("filtered above"),
                path: relative,
                text,
            }
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Files under a hidden folder (`.github/`, `.gitlab/`, `.circleci/`) belong to the
/// project's CI, not to the build a packager runs.
fn in_hidden_folder(relative: &Path) -> bool {
    let mut folders = relative.components().rev().skip(1);
    folders.any(|component| {
        component
            .as_os_str()
            .to_str()
            .is_some_and(|name| name.starts_with('.') && name != "." && name != "..")
    })
}

/// The one folder every member sits in (`flash_attn-2.8.3/`), if there is one.
fn single_top_folder<'a>(mut members: impl Iterator<Item = &'a Path>) -> Option<PathBuf> {
    let first = members.next()?;
    let mut components = first.components();
    let top = components.next()?;
    components.next()?;
    let top = PathBuf::from(top.as_os_str());
    members
        .all(|member| member.starts_with(&top) && member != top)
        .then_some(top)
}
