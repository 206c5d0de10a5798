//! Downloads into a content-addressed cache: streamed SHA-256 verification, resumption
//! with HTTP `Range`, bounded retries with backoff, one download per file even across
//! processes, and bounded parallelism.
//!
//! Layout of the cache folder: `sha256/<hex>` holds verified files (never downloaded
//! again), `partial/<hex>` the bytes of an interrupted download, `partial/<hex>.lock`
//! the lock of the process downloading it.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::Error;

/// What to download, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `http://`, `https://` or `file://`.
    pub url: String,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Byte count, when known.
    pub size: Option<u64>,
}

/// Called with (bytes so far, total when known) as a download goes.
pub type Progress<'a> = &'a (dyn Fn(&Request, u64, Option<u64>) + Sync);

/// A download cache.
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache: PathBuf,
    agent: ureq::Agent,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// The first pause between attempts; doubled each time.
    pub backoff: Duration,
}

impl Fetcher {
    pub fn new(cache: &Path) -> Fetcher {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            // A stalled transfer fails and is resumed rather than hanging.
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .http_status_as_error(false)
            // The system's trust store (with `SSL_CERT_FILE`), as pip and curl use it:
            // behind a company proxy, its certificate authority is there and not in
            // Mozilla's list.
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build();
        Fetcher {
            cache: cache.to_owned(),
            agent: config.into(),
            retries: 4,
            backoff: Duration::from_millis(500),
        }
    }

    /// A small document (a manifest, an index page) read whole into memory; `accept`
    /// is the `Accept` header for HTTP.
    pub fn get_text(&self, url: &str, accept: &str) -> Result<String, Error> {
        if let Some(path) = url.strip_prefix("file://") {
            return std::fs::read_to_string(path).map_err(|e| Error::io(Path::new(path), e));
        }
        let failed = |problem: String| Error::Download {
            url: url.to_owned(),
            problem,
        };
        let mut attempt = 0;
        loop {
            let outcome = self
                .agent
                .get(url)
                .header("Accept", accept)
                .call()
                .map_err(|e| (true, e.to_string()))
                .and_then(|response| match response.status().as_u16() {
                    200 => response
                        .into_body()
                        .with_config()
                        .limit(256 << 20)
                        .read_to_string()
                        .map_err(|e| (true, e.to_string())),
                    status @ (408 | 429 | 500..=599) => Err((true, format!("HTTP {status}"))),
                    404 => Err((false, "HTTP 404: not found".to_owned())),
                    status => Err((false, format!("HTTP {status}"))),
                });
            match outcome {
                Ok(text) => return Ok(text),
                Err((true, _)) if attempt < self.retries => {
                    std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt));
                    attempt += 1;
                }
                Err((_, problem)) => return Err(failed(problem)),
            }
        }
    }

    /// Where a verified file with this hash lives (whether or not it is there yet).
    pub fn cached_path(&self, sha256: &str) -> PathBuf {
        self.cache.join("sha256").join(sha256)
    }

    /// The verified file for `request`, downloaded unless the cache has it.
    pub fn fetch(&self, request: &Request, progress: Progress<'_>) -> Result<PathBuf, Error> {
        let done = self.cached_path(&request.sha256);
        if done.is_file() {
            return Ok(done);
        }
        let partial_dir = self.cache.join("partial");
        for dir in [&partial_dir, &self.cache.join("sha256")] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let partial = partial_dir.join(&request.sha256);
        let _lock = lock(&partial_dir.join(format!("{}.lock", request.sha256)))?;
        // Another process may have finished it while this one waited for the lock.
        if done.is_file() {
            return Ok(done);
        }
        let mut attempt = 0;
        let (hasher, size) = loop {
            match self.transfer(request, &partial, progress) {
                Ok(hashed) => break hashed,
                Err(Transfer::Fatal(error)) => return Err(error),
                Err(Transfer::Retry(problem)) if attempt >= self.retries => {
                    return Err(Error::Download {
                        url: request.url.clone(),
                        problem: format!(
                            "{problem} (after {} attempts; the bytes so far are kept, and the next run resumes)",
                            attempt + 1
                        ),
                    });
                }
                Err(Transfer::Retry(_)) => {
                    std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt));
                    attempt += 1;
                }
            }
        };
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
        progress: Progress<'_>,
    ) -> Result<(Sha256, u64), Transfer> {
        let fatal = |e: std::io::Error| Transfer::Fatal(Error::io(partial, e));
        let mut out = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(partial)
            .map_err(fatal)?;
        let body: Box<dyn Read> = if let Some(path) = request.url.strip_prefix("file://") {
            out.set_len(0).map_err(fatal)?;
            Box::new(File::open(path).map_err(|e| Transfer::Fatal(Error::io(Path::new(path), e)))?)
        } else {
            let have = out.metadata().map_err(fatal)?.len();
            let mut call = self.agent.get(&request.url);
            if have > 0 {
                call = call.header("Range", format!("bytes={have}-"));
            }
            let response = call.call().map_err(|e| Transfer::Retry(e.to_string()))?;
            match response.status().as_u16() {
                206 if have > 0 => {}
                200 => out.set_len(0).map_err(fatal)?,
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
            out.write_all(&buffer[..n]).map_err(fatal)?;
            hasher.update(&buffer[..n]);
            written += n as u64;
            progress(request, written, request.size);
            if request.size.is_some_and(|size| written > size) {
                break;
            }
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
    let actual = hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        });
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
fn lock(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io(path, e.into()))?;
    Ok(file)
}
