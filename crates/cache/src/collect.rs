//! Collecting a folder cache's garbage: NAR files that no narinfo points to (what a push
//! killed between its NAR and its narinfo leaves). Only files below `nar/` that no
//! narinfo names and that are older than a grace period go: a push in progress uploads
//! its NAR before its narinfo, so a young NAR may be about to be named.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cudapkgs_nix::cache_info::CacheInfo;
use cudapkgs_nix::narinfo::NarInfo;
use cudapkgs_nix::store_path;
use cudapkgs_tree::dir::{Dir, Kind};

use crate::{CACHE_INFO_KEY, Error, NARINFO_LIMIT};

/// What a collection found.
#[derive(Debug, Default)]
pub struct Collection {
    /// NAR files no narinfo names, with their sizes: removed, or (dry run) to be removed.
    pub unreferenced: Vec<(String, u64)>,
    /// Unreferenced NAR files kept because they are younger than the grace period.
    pub young: Vec<String>,
    /// NAR files that narinfos name.
    pub referenced: usize,
}

/// Finds (and unless `dry_run` removes) the unreferenced NAR files of the cache folder
/// `folder` older than `grace`. A narinfo that cannot be read or parsed stops the
/// collection before anything is removed: what it names cannot be told.
pub fn collect(folder: &Path, grace: Duration, dry_run: bool) -> Result<Collection, Error> {
    let root = Dir::open(folder).map_err(|e| Error::io(folder, e))?;
    let at = |name: &Path| folder.join(name);
    let info = root
        .read(Path::new(CACHE_INFO_KEY), 64 << 10)
        .map_err(|e| Error::io(at(Path::new(CACHE_INFO_KEY)), e))?;
    let store_dir = CacheInfo::parse(&String::from_utf8_lossy(&info))
        .map_err(|e| {
            Error::untrusted(
                at(Path::new(CACHE_INFO_KEY)).display().to_string(),
                e.to_string(),
            )
        })?
        .store_dir;
    let mut named = HashSet::new();
    for (name, kind) in root
        .entries(Path::new(""))
        .map_err(|e| Error::io(folder, e))?
    {
        if narinfo_hash(&name).is_none() {
            continue;
        }
        let path = at(Path::new(&name));
        if kind != Kind::File {
            return Err(Error::untrusted(
                path.display().to_string(),
                format!(
                    "a narinfo that is {}; nothing was removed",
                    kind.described()
                ),
            ));
        }
        let text = root
            .read(Path::new(&name), NARINFO_LIMIT)
            .map_err(|e| Error::io(&path, e))?;
        let parsed = std::str::from_utf8(&text)
            .map_err(|_| "not UTF-8 text".to_owned())
            .and_then(|text| NarInfo::parse(text, &store_dir).map_err(|e| e.to_string()));
        let info = parsed.map_err(|problem| {
            Error::untrusted(
                path.display().to_string(),
                format!("{problem}; nothing was removed (what it names cannot be told)"),
            )
        })?;
        named.insert(info.url);
    }
    let mut collection = Collection::default();
    let nar = Path::new("nar");
    let entries = match root.entries(nar) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(at(nar), e)),
    };
    let now = SystemTime::now();
    for (name, kind) in entries {
        let Some(name) = name.to_str().filter(|_| kind == Kind::File) else {
            continue;
        };
        let key = format!("nar/{name}");
        if named.contains(&key) {
            collection.referenced += 1;
            continue;
        }
        let relative = nar.join(name);
        let metadata = root
            .open_file(&relative)
            .and_then(|file| file.metadata())
            .map_err(|e| Error::io(at(&relative), e))?;
        let age = metadata
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .unwrap_or_default();
        if age < grace {
            collection.young.push(key);
            continue;
        }
        if !dry_run {
            root.remove_file(&relative)
                .map_err(|e| Error::io(at(&relative), e))?;
        }
        collection.unreferenced.push((key, metadata.len()));
    }
    Ok(collection)
}

/// The hash part of a narinfo's file name (`<hash>.narinfo`).
fn narinfo_hash(name: &OsString) -> Option<&str> {
    name.to_str()?
        .strip_suffix(".narinfo")
        .filter(|hash| store_path::is_hash_part(hash))
}
