//! Where a cache's objects live: a folder, an HTTP cache, an S3 bucket. Keys are
//! relative paths of plain names (`nar/x.nar.zst`); backends check them.

mod folder;
mod http;
mod s3;

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

pub use folder::FolderBackend;
pub use http::{HttpBackend, HttpClient};
pub use s3::{Credentials, S3Backend};

use crate::Error;
use crate::location::Location;

/// The bytes of an object (or of the range asked for).
pub enum Body {
    /// A file positioned at the start of the bytes (a folder's object).
    File(File),
    Stream(Box<dyn Read + Send>),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Body::File(_) => "Body::File",
            Body::Stream(_) => "Body::Stream",
        })
    }
}

impl Body {
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        match self {
            Body::File(file) => Box::new(file),
            Body::Stream(stream) => stream,
        }
    }
}

/// An object as fetched: its bytes and how many there are (of the range, if one was
/// asked for).
#[derive(Debug)]
pub struct Object {
    pub len: u64,
    pub body: Body,
}

/// A store of cache objects.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The size of the object at `key`, or `None` when there is none.
    fn size(&self, key: &str) -> Result<Option<u64>, Error>;
    /// The object at `key` (only `range` of it when given, which must lie within it),
    /// or `None` when there is none.
    fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<Object>, Error>;
    /// Stores the file at `file` under `key`; readers see the old object or the whole
    /// new one, never part of it.
    fn put_file(&self, key: &str, file: &Path, content_type: &str) -> Result<(), Error>;
    /// Stores `bytes` under `key`, as `put_file` does.
    fn put_bytes(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error>;
    /// The cache's URL, for messages.
    fn describe(&self) -> String;

    /// A folder where a caller should make the temporary files it will hand to
    /// `put_temporary` (one on the cache's file system, so they can be renamed).
    fn staging_folder(&self) -> Result<Option<std::path::PathBuf>, Error> {
        Ok(None)
    }

    /// Stores a temporary file that is the caller's to give away (moved if possible).
    fn put_temporary(
        &self,
        key: &str,
        file: tempfile::TempPath,
        content_type: &str,
    ) -> Result<(), Error> {
        self.put_file(key, &file, content_type)
    }

    /// A small object read whole: at most `limit` bytes, else an error.
    fn get_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, Error> {
        let Some(object) = self.get(key, None)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        object
            .body
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Remote {
                url: format!("{}/{key}", self.describe()),
                problem: e.to_string(),
            })?;
        if bytes.len() as u64 > limit {
            return Err(Error::untrusted(
                format!("{}/{key}", self.describe()),
                format!("larger than {limit} bytes"),
            ));
        }
        Ok(Some(bytes))
    }
}

/// Opens an object again from a byte offset to its end.
pub(crate) type Reopen = Box<dyn FnMut(u64) -> Result<Box<dyn Read + Send>, Error> + Send>;

/// Attempts to continue a transfer that broke off.
const RESUMES: u32 = 4;

/// Reads a remote object of `len` bytes; when a read fails (a dropped connection, a
/// stall, an early end), the object is asked for again from the byte where it broke off,
/// up to `RESUMES` times with a growing pause, as Nix resumes downloads.
pub(crate) struct Resuming {
    inner: Box<dyn Read + Send>,
    reopen: Reopen,
    offset: u64,
    len: u64,
    resumes_left: u32,
}

impl Resuming {
    pub(crate) fn new(inner: Box<dyn Read + Send>, len: u64, reopen: Reopen) -> Resuming {
        Resuming {
            inner,
            reopen,
            offset: 0,
            len,
            resumes_left: RESUMES,
        }
    }
}

impl Read for Resuming {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let failure = match self.inner.read(buf) {
                Ok(0) if self.offset < self.len && !buf.is_empty() => std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "the transfer ended after {} of {} bytes",
                        self.offset, self.len
                    ),
                ),
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            if self.resumes_left == 0 {
                return Err(failure);
            }
            let attempt = RESUMES - self.resumes_left;
            self.resumes_left -= 1;
            std::thread::sleep(std::time::Duration::from_millis(250 << attempt));
            self.inner = (self.reopen)(self.offset)
                .map_err(|e| std::io::Error::other(format!("{failure}; resuming failed: {e}")))?;
        }
    }
}

/// How to reach remote caches.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `Authorization: Bearer` token for HTTP caches that take pushes.
    pub token: Option<String>,
    /// Credentials for S3 (anonymous requests without).
    pub s3: Option<Credentials>,
    pub client: HttpClient,
}

/// The backend for `location`. A folder is created when `create` (pushes) and must
/// exist otherwise.
pub fn open(location: &Location, access: &Access, create: bool) -> Result<Box<dyn Backend>, Error> {
    Ok(match location {
        Location::Folder(path) => Box::new(FolderBackend::open(path, create)?),
        Location::Http(base) => Box::new(HttpBackend::new(
            base,
            access.token.clone(),
            access.client.clone(),
        )),
        Location::S3(s3) => Box::new(S3Backend::new(
            s3.clone(),
            access.s3.clone(),
            access.client.clone(),
        )),
    })
}

/// Checks that `key` is a relative path of plain names, as a narinfo's `URL` must be.
pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    cudapkgs_nix::narinfo::check_url(key).map_err(Error::Location)
}

/// A new temporary file where `backend` wants the files handed to `put_temporary`.
pub(crate) fn temporary_file(backend: &dyn Backend) -> Result<tempfile::NamedTempFile, Error> {
    let staging = backend.staging_folder()?;
    match &staging {
        Some(folder) => tempfile::NamedTempFile::new_in(folder),
        None => tempfile::NamedTempFile::new(),
    }
    .map_err(|e| Error::io(staging.unwrap_or_else(std::env::temp_dir), e))
}
