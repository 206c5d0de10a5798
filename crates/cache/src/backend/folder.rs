//! A cache in a folder (`file://`): objects are files below it, written beside their
//! place in a private work folder and renamed into it, so a reader (or a killed push)
//! never leaves a partial object. No link below the folder is followed.

use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cudapkgs_tree::dir::Dir;
use cudapkgs_tree::scratch::{self, Scratch};

use super::{Backend, Body, Object, check_key};
use crate::Error;

/// The work folders of writers, in the cache folder; a killed writer's are removed by
/// the next one.
const WORK_PREFIX: &str = ".cudapkgs-upload-";

#[derive(Debug)]
pub struct FolderBackend {
    root: Dir,
    /// Created by the first write.
    work: Mutex<Option<Scratch>>,
}

impl FolderBackend {
    /// Opens the cache folder `path`; with `create` it is created if missing (and work
    /// folders of killed writers are removed).
    pub fn open(path: &Path, create: bool) -> Result<FolderBackend, Error> {
        if create {
            std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
            scratch::remove_abandoned(path, WORK_PREFIX).map_err(|e| Error::io(path, e))?;
        }
        let root = Dir::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::Missing(format!("{}: no such cache folder", path.display()))
            }
            _ => Error::io(path, e),
        })?;
        Ok(FolderBackend {
            root,
            work: Mutex::new(None),
        })
    }

    /// The work folder (made on first use), opened.
    fn work(&self) -> std::io::Result<(Dir, std::path::PathBuf)> {
        // Held only to make the work folder: writes of one process go on side by side.
        let mut scratch = self
            .work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if scratch.is_none() {
            *scratch = Some(Scratch::create(self.root.path(), WORK_PREFIX)?);
        }
        let scratch = scratch.as_ref().expect("created above");
        Ok((scratch.dir()?, scratch.path()))
    }

    /// Makes the folder of `key`.
    fn make_parent(&self, key: &str) -> std::io::Result<()> {
        match key.rsplit_once('/') {
            Some((folder, _)) => self.root.create_dir_all(Path::new(folder)),
            None => Ok(()),
        }
    }

    /// The path of `key`, for messages.
    fn path_of(&self, key: &str) -> std::path::PathBuf {
        self.root.path().join(key)
    }

    /// Writes through `fill` into a new file of the work folder, then renames it to `key`.
    fn put_with(
        &self,
        key: &str,
        fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        check_key(key)?;
        let at = |e| Error::io(self.path_of(key), e);
        self.make_parent(key).map_err(at)?;
        let (work, _) = self.work().map_err(at)?;
        let temporary = format!("{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        let temporary = Path::new(&temporary);
        let mut created = work.create_file(temporary, 0o644).map_err(at)?;
        let written = fill(&mut created)
            .and_then(|()| created.sync_all())
            .and_then(|()| work.rename(temporary, &self.root, Path::new(key)));
        if let Err(error) = written {
            let _ = work.remove_file(temporary);
            return Err(at(error));
        }
        Ok(())
    }
}

impl Backend for FolderBackend {
    fn size(&self, key: &str) -> Result<Option<u64>, Error> {
        check_key(key)?;
        match self.root.open_file(Path::new(key)) {
            Ok(file) => Ok(Some(
                file.metadata()
                    .map_err(|e| Error::io(self.path_of(key), e))?
                    .len(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(self.path_of(key), e)),
        }
    }

    fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<Object>, Error> {
        check_key(key)?;
        let at = |e| Error::io(self.path_of(key), e);
        let mut file = match self.root.open_file(Path::new(key)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(at(e)),
        };
        let size = file.metadata().map_err(at)?.len();
        let range = range.unwrap_or(0..size);
        if range.end > size || range.start > range.end {
            return Err(Error::Missing(format!(
                "{}: bytes {}..{} are not in a file of {size} bytes",
                self.path_of(key).display(),
                range.start,
                range.end
            )));
        }
        file.seek(SeekFrom::Start(range.start)).map_err(at)?;
        Ok(Some(Object {
            len: range.end - range.start,
            body: Body::File(file),
        }))
    }

    fn put_file(&self, key: &str, file: &Path, _content_type: &str) -> Result<(), Error> {
        let mut source = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        self.put_with(key, |out| std::io::copy(&mut source, out).map(drop))
    }

    fn put_bytes(&self, key: &str, bytes: &[u8], _content_type: &str) -> Result<(), Error> {
        self.put_with(key, |out| out.write_all(bytes))
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.path().display())
    }

    fn staging_folder(&self) -> Result<Option<std::path::PathBuf>, Error> {
        let (_, path) = self.work().map_err(|e| Error::io(self.root.path(), e))?;
        Ok(Some(path))
    }

    fn put_temporary(
        &self,
        key: &str,
        file: tempfile::TempPath,
        content_type: &str,
    ) -> Result<(), Error> {
        check_key(key)?;
        let (work, work_path) = self.work().map_err(|e| Error::io(self.root.path(), e))?;
        let name = file.strip_prefix(&work_path).ok().map(Path::to_owned);
        let Some(name) = name.filter(|n| n.components().count() == 1) else {
            return self.put_file(key, &file, content_type);
        };
        let at = |e| Error::io(self.path_of(key), e);
        self.make_parent(key).map_err(at)?;
        // Temporary files are private (0600); objects are for every reader of the folder.
        std::fs::File::open(&file)
            .and_then(|f| {
                f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
                f.sync_all()
            })
            .map_err(at)?;
        work.rename(&name, &self.root, Path::new(key)).map_err(at)?;
        // Renamed away: nothing is left to delete.
        let _ = file.keep();
        Ok(())
    }
}
