//! Downloads into a content-addressed cache: streamed SHA-256 verification, resumption
//! with HTTP `Range`, bounded retries with backoff, one download per file even across
//! processes, and bounded parallelism.
//!
//! Layout of the cache folder: `sha256/<hex>` holds verified files (never downloaded
//! again), `partial/<hex>` the bytes of an interrupted download, `partial/<hex>.lock`
//! the lock of the process downloading it, `named/<hex>/<file name>` a link to a
//! verified file under the name tools such as pip need (a wheel's own file name).
//! `<hex>` is always 64 hex digits and a file name has no `/`, so no
//! request names a file outside the cache; no download grows past its size, or past
//! `Fetcher::max_size` when its size is unknown. What interrupted downloads keep is
//! bounded all together by `Fetcher::max_partial` (the oldest go first), so that an index
//! that breaks off every file it names cannot fill the disk run after run.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cudapkgs_nix::lock::LockFile;
use cudapkgs_report::{Phase, Reporter, Task};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The largest download of unknown size, and the largest size an index or manifest may
/// declare: NVIDIA's largest archives (TensorRT) are near 7 GB.
pub const DEFAULT_MAX_SIZE: u64 = 16 << 30;

/// What interrupted downloads keep all together: the largest single download, so that
/// any one of them can resume.
pub const DEFAULT_MAX_PARTIAL: u64 = DEFAULT_MAX_SIZE;

/// How long a server may take to send a response's status and headers once asked: an
/// index that accepts the connection and never answers fails rather than hangs.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The download cache's default folder: `$XDG_CACHE_HOME/cudapkgs`, else
/// `~/.cache/cudapkgs`; `None` when neither is known.
pub fn default_cache_dir(xdg_cache_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    xdg_cache_home
        .map(|dir| PathBuf::from(dir).join("cudapkgs"))
        .or_else(|| home.map(|home| PathBuf::from(home).join(".cache/cudapkgs")))
}

/// A SHA-256 as 64 hex digits, lower case: `None` when `text` is anything else.
pub fn parse_sha256(text: &str) -> Option<String> {
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

fn is_cache_key(sha256: &str) -> bool {
    parse_sha256(sha256).is_some_and(|parsed| parsed == sha256)
}

/// What to download, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `http://`, `https://` or `file://`.
    pub url: String,
    /// Lower-case hex SHA-256 of the file (64 digits; anything else is refused).
    pub sha256: String,
    /// Byte count, when known.
    pub size: Option<u64>,
}

impl Request {
    /// The last segment of the URL: what a person calls the file.
    pub fn file_name(&self) -> &str {
        let path = self.url.split(['?', '#']).next().unwrap_or_default();
        path.rsplit('/').next().unwrap_or_default()
    }
}

/// Told of each download as it goes (a [`Phase::Download`] task per file transferred).
pub type Progress<'a> = &'a dyn Reporter;

/// The HTTP agent of a fetcher: bounded waits for a connection, a response and a body.
fn agent(response_timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(response_timeout))
        // A transfer that stalls (no byte for that long) fails and is resumed rather than
        // hanging; a slow one that keeps going is never cut (ureq's body timeout would
        // bound the whole body).
        .timeout_per_read(Some(response_timeout))
        .http_status_as_error(false)
        // The system's trust store (with `SSL_CERT_FILE`), as pip and curl use it:
        // behind a company proxy, its certificate authority is there and not in
        // Mozilla's list.
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into()
}

/// A download cache.
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache: PathBuf,
    agent: ureq::Agent,
    /// Set with [`Fetcher::set_response_timeout`]: the agent is built with it.
    response_timeout: Duration,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// The first pause between attempts; doubled each time.
    pub backoff: Duration,
    /// The most bytes a download of unknown size may bring, and the largest size a
    /// request may declare.
    pub max_size: u64,
    /// The most bytes interrupted downloads keep for resumption, all together.
    pub max_partial: u64,
    /// Nothing from the network: documents (index pages, manifests) come from the copies
    /// the last online run kept, files from the cache; anything not there is an error.
    pub offline: bool,
}

impl Fetcher {
    pub fn new(cache: &Path) -> Fetcher {
        Fetcher {
            cache: cache.to_owned(),
            agent: agent(DEFAULT_RESPONSE_TIMEOUT),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            retries: 4,
            backoff: Duration::from_millis(500),
            max_size: DEFAULT_MAX_SIZE,
            max_partial: DEFAULT_MAX_PARTIAL,
            offline: false,
        }
    }

    /// How long a server may take to send a response's status and headers once asked
    /// ([`DEFAULT_RESPONSE_TIMEOUT`] unless set).
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    pub fn set_response_timeout(&mut self, timeout: Duration) {
        self.agent = agent(timeout);
        self.response_timeout = timeout;
    }

    /// Why a request failed, for its error: a response timeout says how long was waited.
    fn describe(&self, error: &ureq::Error) -> String {
        match error {
            ureq::Error::Timeout(ureq::Timeout::RecvResponse) => format!(
                "the server accepted the connection but sent no response within {} s",
                self.response_timeout.as_secs_f64()
            ),
            ureq::Error::Timeout(ureq::Timeout::Global) => self.document_late(),
            other => other.to_string(),
        }
    }

    /// How long a small body (a page, a manifest, metadata) may take to arrive whole:
    /// twice the response timeout.
    fn document_timeout(&self) -> Duration {
        self.response_timeout * 2
    }

    fn document_late(&self) -> String {
        format!(
            "the server did not send the whole document within {} s",
            self.document_timeout().as_secs_f64()
        )
    }

    /// Where the copy of the document at `url` (asked for as `accept`) is kept: named by
    /// a hash of both, so that a URL cannot name a path.
    fn document_copy(&self, url: &str, accept: &str) -> PathBuf {
        let name = hex(&Sha256::digest(format!("{accept} {url}").as_bytes()));
        self.cache.join("documents").join(name)
    }

    /// The error for what an offline run would have to fetch.
    fn offline_miss(url: &str) -> Error {
        Error::Offline {
            url: url.to_owned(),
        }
    }

    /// A small document (a manifest, an index page) read whole into memory; `accept`
    /// is the `Accept` header for HTTP.
    /// Offline, the copy an online run kept (see [`Fetcher::get_document`]).
    pub fn get_text(&self, url: &str, accept: &str) -> Result<String, Error> {
        let bytes = if self.offline && !url.starts_with("file://") {
            let copy = self.document_copy(url, accept);
            let mut bytes = Vec::new();
            open_regular(&copy)
                .map_err(|_| Self::offline_miss(url))?
                .take(TEXT_LIMIT + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(&copy, e))?;
            bytes
        } else {
            self.get_bytes(url, accept, TEXT_LIMIT)?
        };
        String::from_utf8(bytes).map_err(|_| Error::Download {
            url: url.to_owned(),
            problem: "not UTF-8 text".to_owned(),
        })
    }

    /// A document read by `parse`; online, one that parses is kept (in place of the last
    /// copy) for offline runs, and one that does not leaves nothing.
    pub fn get_document<T>(
        &self,
        url: &str,
        accept: &str,
        parse: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let text = self.get_text(url, accept)?;
        let parsed = parse(&text)?;
        if !self.offline && !url.starts_with("file://") {
            keep_copy(&self.document_copy(url, accept), text.as_bytes())?;
        }
        Ok(parsed)
    }

    /// A small file (a wheel's metadata, a metapackage) read whole into memory, at most
    /// `limit` bytes, and kept only when its size (where given) and SHA-256 match.
    pub fn get_verified(&self, request: &Request, limit: u64) -> Result<Vec<u8>, Error> {
        if !is_cache_key(&request.sha256) {
            return Err(Error::Download {
                url: request.url.clone(),
                problem: format!(
                    "`{}` is not a SHA-256 (64 lower-case hex digits), so the file cannot be verified",
                    request.sha256
                ),
            });
        }
        let limit = request.size.map_or(limit, |size| size.min(limit));
        // Verified small files are kept by their hash like any download.
        let kept = self.cached_path(&request.sha256)?;
        let bytes = match std::fs::read(&kept) {
            Ok(bytes) => bytes,
            Err(_) if self.offline && !request.url.starts_with("file://") => {
                return Err(Self::offline_miss(&request.url));
            }
            Err(_) => self.get_bytes(&request.url, "*/*", limit)?,
        };
        if let Some(size) = request.size.filter(|&size| size != bytes.len() as u64) {
            return Err(Error::Download {
                url: request.url.clone(),
                problem: format!("size mismatch: expected {size} bytes, got {}", bytes.len()),
            });
        }
        let actual = hex(&Sha256::digest(&bytes));
        if actual != request.sha256 {
            return Err(Error::HashMismatch {
                url: request.url.clone(),
                expected: request.sha256.clone(),
                actual,
            });
        }
        if !kept.is_file() {
            keep_copy(&kept, &bytes)?;
        }
        Ok(bytes)
    }

    /// The bytes of `url` (`file://` reads only regular files), refused past `limit`,
    /// with retries for the failures worth another attempt.
    fn get_bytes(&self, url: &str, accept: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let bounded = |bytes: Vec<u8>| {
            if bytes.len() as u64 > limit {
                Err(Error::TooLarge {
                    url: url.to_owned(),
                    problem: format!("more than {limit} bytes; nothing was kept"),
                })
            } else {
                Ok(bytes)
            }
        };
        if let Some(path) = url.strip_prefix("file://") {
            let path = Path::new(path);
            let mut bytes = Vec::new();
            open_regular(path)?
                .take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(path, e))?;
            return bounded(bytes);
        }
        let failed = |problem: String| Error::Download {
            url: url.to_owned(),
            problem,
        };
        let mut attempt = 0;
        loop {
            // Small bodies (pages, manifests, metadata) have the response's time to
            // arrive whole: one that trickles a byte at a time is no download to wait for.
            let outcome = self
                .agent
                .get(url)
                .header("Accept", accept)
                .config()
                .timeout_global(Some(self.document_timeout()))
                .build()
                .call()
                .map_err(|e| (true, failed(self.describe(&e))))
                .and_then(|response| match response.status().as_u16() {
                    200 => {
                        let mut bytes = Vec::new();
                        response
                            .into_body()
                            .into_reader()
                            .take(limit + 1)
                            .read_to_end(&mut bytes)
                            .map(|_| bytes)
                            .map_err(|e| {
                                match e.get_ref().and_then(|e| e.downcast_ref::<ureq::Error>()) {
                                    Some(inner) => (true, failed(self.describe(inner))),
                                    None => (true, failed(e.to_string())),
                                }
                            })
                    }
                    status @ (408 | 429 | 500..=599) => {
                        Err((true, failed(format!("HTTP {status}"))))
                    }
                    404 => Err((
                        false,
                        Error::Absent {
                            url: url.to_owned(),
                        },
                    )),
                    status => Err((false, failed(format!("HTTP {status}")))),
                });
            match outcome {
                Ok(bytes) => return bounded(bytes),
                Err((true, _)) if attempt < self.retries => {
                    std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt));
                    attempt += 1;
                }
                Err((_, error)) => return Err(error),
            }
        }
    }

    /// Where a verified file with this hash lives (whether or not it is there yet);
    /// `sha256` must be 64 lower-case hex digits.
    pub fn cached_path(&self, sha256: &str) -> Result<PathBuf, Error> {
        if !is_cache_key(sha256) {
            return Err(Error::NotFound(format!(
                "`{sha256}` is not a SHA-256 (64 lower-case hex digits): no file in the cache has it"
            )));
        }
        Ok(self.cache.join("sha256").join(sha256))
    }

    /// The verified file with this hash under `file_name` (`named/<hex>/<file_name>`, a
    /// hard link, or a copy where the file system has none), for tools that read a
    /// file's kind from its name: pip takes a wheel only as `….whl`.
    pub fn named(&self, sha256: &str, file_name: &str) -> Result<PathBuf, Error> {
        let kept = self.cached_path(sha256)?;
        if !cudapkgs_tree::dir::is_file_name(file_name) {
            return Err(Error::NotFound(format!(
                "`{file_name}` is not a plain file name, so no file of the cache is named so"
            )));
        }
        let folder = self.cache.join("named").join(sha256);
        let named = folder.join(file_name);
        if named.is_file() {
            return Ok(named);
        }
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        // Made beside and renamed into place, so a reader never sees half a copy.
        let partial = folder.join(format!(".{file_name}.partial"));
        let _ = std::fs::remove_file(&partial);
        if std::fs::hard_link(&kept, &partial).is_err() {
            std::fs::copy(&kept, &partial).map_err(|e| Error::io(&partial, e))?;
        }
        std::fs::rename(&partial, &named).map_err(|e| Error::io(&named, e))?;
        Ok(named)
    }

    /// The verified file for `request`, downloaded unless the cache has it.
    pub fn fetch(&self, request: &Request, progress: Progress<'_>) -> Result<PathBuf, Error> {
        if !is_cache_key(&request.sha256) {
            return Err(Error::Download {
                url: request.url.clone(),
                problem: format!(
                    "`{}` is not a SHA-256 (64 lower-case hex digits), so the download cannot be verified; nothing was downloaded",
                    request.sha256
                ),
            });
        }
        if let Some(size) = request.size.filter(|&size| size > self.max_size) {
            return Err(Error::TooLarge {
                url: request.url.clone(),
                problem: format!(
                    "its size is given as {size} bytes, more than the maximum download of {} bytes; nothing was downloaded",
                    self.max_size
                ),
            });
        }
        let done = self.cached_path(&request.sha256)?;
        if done.is_file() {
            return Ok(done);
        }
        if self.offline && !request.url.starts_with("file://") {
            return Err(Self::offline_miss(&request.url));
        }
        let partial_dir = self.cache.join("partial");
        for dir in [&partial_dir, &self.cache.join("sha256")] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let partial = partial_dir.join(&request.sha256);
        let lock_path = partial_dir.join(format!("{}.lock", request.sha256));
        let _lock = LockFile::take(&lock_path, true)
            .map_err(|e| Error::io(&lock_path, e))?
            .expect("a waiting lock is always taken");
        // Another process may have finished it while this one waited for the lock.
        if done.is_file() {
            return Ok(done);
        }
        // Downloads interrupted without a last failure (a killed process) count too.
        trim_partials(&partial_dir, &partial, self.max_partial)?;
        let mut attempt = 0;
        let task = Task::start(progress, Phase::Download, request.file_name(), request.size);
        let (hasher, size) = loop {
            match self.transfer(request, &partial, &task) {
                Ok(hashed) => break hashed,
                Err(Transfer::Fatal(error)) => return Err(error),
                Err(Transfer::Retry(problem)) if attempt >= self.retries => {
                    let kept = trim_partials(&partial_dir, &partial, self.max_partial)?;
                    return Err(Error::Download {
                        url: request.url.clone(),
                        problem: format!(
                            "{problem} (after {} attempts; {})",
                            attempt + 1,
                            if kept {
                                "the bytes so far are kept, and the next run resumes"
                            } else {
                                "the bytes so far are more than interrupted downloads may keep, and were removed"
                            }
                        ),
                    });
                }
                Err(Transfer::Retry(_)) => {
                    std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt));
                    attempt += 1;
                }
            }
        };
        drop(task);
        verify_and_place(request, hasher, size, &partial, &done)?;
        Ok(done)
    }

    /// Fetches every request, `jobs` at a time; results in the order of `requests`.
    pub fn fetch_all(
        &self,
        requests: &[Request],
        jobs: usize,
        progress: Progress<'_>,
    ) -> Vec<Result<PathBuf, Error>> {
        crate::parallel::map(requests, jobs, |request| self.fetch(request, progress))
    }

    /// Brings `partial` to the whole file, hashing it on the way: appends from where it
    /// stops when the server honours `Range` (hashing the bytes already there first),
    /// else starts over.
    fn transfer(
        &self,
        request: &Request,
        partial: &Path,
        task: &Task<'_>,
    ) -> Result<(Sha256, u64), Transfer> {
        let fatal = |e: std::io::Error| Transfer::Fatal(Error::io(partial, e));
        // A local file is opened first: one that cannot be read leaves no partial file.
        let local = match request.url.strip_prefix("file://") {
            Some(path) => Some(open_regular(Path::new(path)).map_err(Transfer::Fatal)?),
            None => None,
        };
        let mut out = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(partial)
            .map_err(fatal)?;
        let body: Box<dyn Read> = if let Some(file) = local {
            out.set_len(0).map_err(fatal)?;
            Box::new(file)
        } else {
            let have = out.metadata().map_err(fatal)?.len();
            let mut call = self.agent.get(&request.url);
            if have > 0 {
                call = call.header("Range", format!("bytes={have}-"));
            }
            let response = call
                .call()
                .map_err(|e| Transfer::Retry(self.describe(&e)))?;
            let resumed = match response.status().as_u16() {
                206 if have > 0 => true,
                // The whole file again (the server ignores `Range`): it starts over.
                200 => {
                    out.set_len(0).map_err(fatal)?;
                    false
                }
                416 => {
                    // What is here is already as long as the file, or longer: start over.
                    out.set_len(0).map_err(fatal)?;
                    return Err(Transfer::Retry(
                        "the server refused the resumption range".to_owned(),
                    ));
                }
                status @ (408 | 429 | 500..=599) => {
                    return Err(Transfer::Retry(format!("HTTP {status}")));
                }
                status => {
                    return Err(Transfer::Fatal(Error::Download {
                        url: request.url.clone(),
                        problem: format!("HTTP {status}"),
                    }));
                }
            };
            let kept = if resumed { have } else { 0 };
            let promised = response.body().content_length().map(|n| n + kept);
            if let Some(promised) = promised.filter(|&n| n > self.limit(request)) {
                drop(out);
                let _ = std::fs::remove_file(partial);
                return Err(Transfer::Fatal(self.too_large(request, promised)));
            }
            Box::new(response.into_body().into_reader())
        };
        // The bytes kept from an earlier attempt are hashed first.
        let mut hasher = Sha256::new();
        out.seek(std::io::SeekFrom::Start(0)).map_err(fatal)?;
        let mut written = std::io::copy(&mut &out, &mut HashWriter(&mut hasher)).map_err(fatal)?;
        let mut body = body;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Transfer::Retry(format!(
                        "transfer broke off after {written} bytes: {e}"
                    )));
                }
            };
            // Refused before it is written: a server that never stops fills no disk.
            if written + n as u64 > self.limit(request) {
                drop(out);
                let _ = std::fs::remove_file(partial);
                return Err(Transfer::Fatal(self.too_large(request, written + n as u64)));
            }
            out.write_all(&buffer[..n]).map_err(fatal)?;
            hasher.update(&buffer[..n]);
            written += n as u64;
            task.set(written);
        }
        if let Some(size) = request.size.filter(|&size| written < size) {
            return Err(Transfer::Retry(format!(
                "transfer ended after {written} of {size} bytes"
            )));
        }
        out.sync_all().map_err(fatal)?;
        Ok((hasher, written))
    }
}

impl Fetcher {
    /// The most bytes `request` may bring.
    fn limit(&self, request: &Request) -> u64 {
        request.size.unwrap_or(self.max_size)
    }

    /// The refusal of a download that reached `bytes`, past its limit.
    fn too_large(&self, request: &Request, bytes: u64) -> Error {
        let problem = match request.size {
            Some(size) => format!(
                "the download reaches {bytes} bytes, more than the {size} bytes expected; it was stopped and nothing was kept"
            ),
            None => format!(
                "no size was given and the download reaches {bytes} bytes, more than the maximum download of {} bytes; it was stopped and nothing was kept",
                self.max_size
            ),
        };
        Error::TooLarge {
            url: request.url.clone(),
            problem,
        }
    }
}

/// The most a manifest or index page may hold.
const TEXT_LIMIT: u64 = 256 << 20;

/// Opens a regular file for reading; anything else (a FIFO, a device, a folder) is
/// Replaces the kept copy of a document: written beside it, then renamed, so a reader
/// never sees half of one.
fn keep_copy(copy: &Path, bytes: &[u8]) -> Result<(), Error> {
    let folder = copy.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
    let mut temporary =
        tempfile::NamedTempFile::new_in(folder).map_err(|e| Error::io(folder, e))?;
    std::io::Write::write_all(&mut temporary, bytes).map_err(|e| Error::io(folder, e))?;
    temporary
        .persist(copy)
        .map(drop)
        .map_err(|e| Error::io(copy, e.error))
}

/// refused at once, without blocking on it.
fn open_regular(path: &Path) -> Result<File, Error> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(path, e.into()))?;
    let file = File::from(fd);
    let kind = file.metadata().map_err(|e| Error::io(path, e))?.file_type();
    if !kind.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file: only files are read from file:// locations",
            ),
        ));
    }
    Ok(file)
}

enum Transfer {
    /// Worth another attempt (network, server trouble); the bytes so far are kept.
    Retry(String),
    Fatal(Error),
}

/// Checks size and hash of a finished download and moves it into the cache; a file
/// that does not match is deleted.
fn verify_and_place(
    request: &Request,
    hasher: Sha256,
    size: u64,
    partial: &Path,
    done: &Path,
) -> Result<(), Error> {
    let actual = hex(&hasher.finalize());
    if let Some(expected) = request.size.filter(|&expected| expected != size) {
        let _ = std::fs::remove_file(partial);
        return Err(Error::Download {
            url: request.url.clone(),
            problem: format!(
                "size mismatch: expected {expected} bytes, got {size}; the download was deleted"
            ),
        });
    }
    if actual != request.sha256 {
        let _ = std::fs::remove_file(partial);
        return Err(Error::HashMismatch {
            url: request.url.clone(),
            expected: request.sha256.clone(),
            actual,
        });
    }
    std::fs::rename(partial, done).map_err(|e| Error::io(done, e))
}

fn hex(digest: &[u8]) -> String {
    digest
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Holds an exclusive `flock` on `path` until the file is dropped.
/// Keeps the interrupted downloads in `folder` within `cap` bytes all together after
/// `kept` broke off: the others go oldest first (those another process is downloading
/// stay), then `kept` itself if it alone is more. Returns whether `kept` stays.
fn trim_partials(folder: &Path, kept: &Path, cap: u64) -> Result<bool, Error> {
    let size_of = |path: &Path| path.metadata().map_or(0, |m| m.len());
    let mut others = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))? {
        let entry = entry.map_err(|e| Error::io(folder, e))?;
        let path = entry.path();
        let is_lock = path.extension().is_some_and(|e| e == "lock");
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !is_lock && path != kept && metadata.is_file() {
            let modified = metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
            others.push((modified, metadata.len(), path));
        }
    }
    others.sort();
    let mut total = size_of(kept) + others.iter().map(|(_, size, _)| size).sum::<u64>();
    for (_, size, path) in others {
        if total <= cap {
            break;
        }
        let mut lock_name = path.clone().into_os_string();
        lock_name.push(".lock");
        let lock_path = Path::new(&lock_name);
        let Some(_held) = LockFile::take(lock_path, false).map_err(|e| Error::io(lock_path, e))?
        else {
            continue;
        };
        match std::fs::remove_file(&path) {
            Ok(()) => total -= size,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= size,
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    if total > cap {
        std::fs::remove_file(kept).map_err(|e| Error::io(kept, e))?;
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod cache_dir_tests {
    use super::*;

    #[test]
    fn a_request_names_its_file_without_query_or_fragment() {
        let request = |url: &str| Request {
            url: url.to_owned(),
            sha256: String::new(),
            size: None,
        };
        for (url, name) in [
            ("https://x/a/b/libcublas-13.0.whl", "libcublas-13.0.whl"),
            ("https://x/a/x.whl?from=index#sha256=ab", "x.whl"),
            ("file:///tmp/c.tar.xz", "c.tar.xz"),
        ] {
            assert_eq!(request(url).file_name(), name);
        }
    }

    #[test]
    fn the_cache_folder_follows_xdg() {
        assert_eq!(
            default_cache_dir(Some("/c"), Some("/home/u")),
            Some(PathBuf::from("/c/cudapkgs"))
        );
        assert_eq!(
            default_cache_dir(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/cudapkgs"))
        );
        assert_eq!(default_cache_dir(None, None), None);
    }
}

#[cfg(test)]
mod named_tests {
    use super::*;

    #[test]
    fn a_name_that_is_no_plain_file_name_names_nothing_and_writes_nothing() {
        let cache = tempfile::tempdir().expect("temp");
        let fetcher = Fetcher::new(cache.path());
        let sha256 = "a".repeat(64);
        let kept = fetcher.cached_path(&sha256).expect("a key");
        std::fs::create_dir_all(kept.parent().expect("folder")).expect("mkdir");
        std::fs::write(&kept, b"wheel").expect("write");
        for hostile in ["../escaped.whl", "a/b.whl", "..", ".", ""] {
            assert!(fetcher.named(&sha256, hostile).is_err(), "{hostile:?}");
        }
        assert!(!cache.path().join("named").exists());
        assert!(fetcher.named("../x", "ok.whl").is_err());
        // A plain name is the same bytes under that name, inside the cache.
        let named = fetcher
            .named(&sha256, "ok-1.0-py3-none-any.whl")
            .expect("named");
        assert!(named.starts_with(cache.path().join("named")));
        assert_eq!(std::fs::read(&named).expect("read"), b"wheel");
        assert_eq!(
            fetcher
                .named(&sha256, "ok-1.0-py3-none-any.whl")
                .expect("again"),
            named
        );
    }
}
