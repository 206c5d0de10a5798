//! A cache over HTTP: `GET`/`HEAD` for reading, `PUT` (with a bearer token) for pushes,
//! as `cudapkgs serve` and Nix's `http://` stores speak it.

use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use super::{Backend, Body, Object, check_key};
use crate::Error;

/// The HTTP client every remote backend uses, with its time limits.
/// The length a response's head declares; 0 when it declares none (or none readable).
pub(crate) fn content_length(response: &ureq::http::Response<ureq::Body>) -> u64 {
    response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
pub struct HttpClient {
    pub(crate) agent: ureq::Agent,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new(Duration::from_secs(60))
    }
}

impl HttpClient {
    /// A client that gives up on a server that sends nothing for `stall`.
    pub fn new(stall: Duration) -> HttpClient {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(stall))
            .timeout_per_write(Some(stall))
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build();
        HttpClient {
            agent: config.into(),
        }
    }
}

/// The reader of a response's body, with no limit beyond what the caller sets.
pub(crate) fn body_reader(response: ureq::http::Response<ureq::Body>) -> Box<dyn Read + Send> {
    Box::new(
        response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader(),
    )
}

/// A small response body as text (at most `limit` bytes of it).
pub(crate) fn body_text(response: ureq::http::Response<ureq::Body>, limit: u64) -> String {
    let mut text = String::new();
    let _ = body_reader(response).take(limit).read_to_string(&mut text);
    text
}

/// The start of an error response's body, for messages.
pub(crate) fn error_text(response: ureq::http::Response<ureq::Body>) -> String {
    let status = response.status();
    let mut text = String::new();
    let _ = body_reader(response).take(500).read_to_string(&mut text);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

#[derive(Debug, Clone)]
pub struct HttpBackend {
    base: String,
    token: Option<String>,
    client: HttpClient,
}

impl HttpBackend {
    pub fn new(base: &str, token: Option<String>, client: HttpClient) -> HttpBackend {
        HttpBackend {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client,
        }
    }

    fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.base)
    }

    /// Runs an idempotent request, again (twice at most) when the connection failed
    /// before an answer came: a server may close a kept-alive connection at any time.
    fn idempotent(
        &self,
        key: &str,
        send: impl Fn() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let mut attempt = 0;
        loop {
            match send() {
                Err(ureq::Error::Io(_) | ureq::Error::ConnectionFailed) if attempt < 2 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
                outcome => {
                    return outcome.map_err(|e| match e {
                        ureq::Error::Io(_) | ureq::Error::ConnectionFailed => Error::Unreachable {
                            url: self.url(key),
                            source: e,
                        },
                        other => self.remote(key, other),
                    });
                }
            }
        }
    }

    fn remote(&self, key: &str, problem: impl std::fmt::Display) -> Error {
        Error::Remote {
            url: self.url(key),
            problem: problem.to_string(),
        }
    }

    /// The rest of the object at `key` from byte `offset` (`Range: bytes=OFFSET-`, which
    /// every server that takes ranges understands).
    fn get_from(&self, key: &str, offset: u64) -> Result<Box<dyn Read + Send>, Error> {
        let response = self.idempotent(key, || {
            self.client
                .agent
                .get(self.url(key))
                .header("Range", format!("bytes={offset}-"))
                .call()
        })?;
        let starts_there = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .is_some_and(|start| start.parse() == Ok(offset));
        match response.status().as_u16() {
            206 if starts_there => Ok(body_reader(response)),
            206 | 200 => Err(self.remote(key, "the server ignored the byte range asked for")),
            _ => Err(self.remote(key, error_text(response))),
        }
    }

    fn put(&self, key: &str, content_type: &str, body: impl ureq::AsSendBody) -> Result<(), Error> {
        check_key(key)?;
        let mut request = self
            .client
            .agent
            .put(self.url(key))
            .header("Content-Type", content_type);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.send(body).map_err(|e| self.remote(key, e))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(self.remote(
                key,
                format!(
                    "{} (the cache refuses pushes without its token)",
                    error_text(response)
                ),
            )),
            _ => Err(self.remote(key, error_text(response))),
        }
    }
}

impl Backend for HttpBackend {
    fn size(&self, key: &str) -> Result<Option<u64>, Error> {
        check_key(key)?;
        let response = self.idempotent(key, || self.client.agent.head(self.url(key)).call())?;
        match response.status().as_u16() {
            200 => Ok(Some(content_length(&response))),
            // Nix takes a 403 for "not there" too (S3 answers so for missing keys).
            404 | 403 => Ok(None),
            _ => Err(self.remote(key, error_text(response))),
        }
    }

    fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<Object>, Error> {
        check_key(key)?;
        if range.as_ref().is_some_and(std::ops::Range::is_empty) {
            return Ok(Some(Object {
                len: 0,
                body: Body::Stream(Box::new(std::io::empty())),
            }));
        }
        let response = self.idempotent(key, || {
            let request = self.client.agent.get(self.url(key));
            match &range {
                Some(range) => request
                    .header("Range", format!("bytes={}-{}", range.start, range.end - 1))
                    .call(),
                None => request.call(),
            }
        })?;
        let status = response.status().as_u16();
        match status {
            200 | 206 => {}
            404 | 403 => return Ok(None),
            _ => return Err(self.remote(key, error_text(response))),
        }
        if range.is_some() && status != 206 {
            return Err(self.remote(key, "the server ignored the byte range asked for"));
        }
        let len = response.body().content_length();
        // Resumed with a byte range even when the server does not announce
        // `Accept-Ranges` (a server that ignores the range fails the resume cleanly).
        let resumable = range.is_none();
        let body = body_reader(response);
        let body = match len {
            Some(len) if resumable => {
                let (backend, key) = (self.clone(), key.to_owned());
                let reopen = move |offset: u64| backend.get_from(&key, offset);
                Box::new(super::Resuming::new(body, len, Box::new(reopen)))
            }
            _ => body,
        };
        Ok(Some(Object {
            len: range.map_or(len.unwrap_or(0), |r| r.end - r.start),
            body: Body::Stream(body),
        }))
    }

    fn put_file(&self, key: &str, file: &Path, content_type: &str) -> Result<(), Error> {
        let opened = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        self.put(key, content_type, opened)
    }

    fn put_bytes(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error> {
        self.put(key, content_type, bytes)
    }

    fn describe(&self) -> String {
        self.base.clone()
    }
}
