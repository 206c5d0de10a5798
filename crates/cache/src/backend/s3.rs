//! A cache in an S3 bucket (AWS or any S3-compatible server), requests signed with
//! Signature Version 4 (anonymous without credentials), sent with the HTTP client.

use std::ops::Range;
use std::path::Path;

use super::http::{HttpClient, body_reader, error_text};
use super::{Backend, Body, Object, check_key};
use crate::Error;
use crate::location::S3Location;
pub use crate::sigv4::Credentials;
use crate::sigv4::{self, UNSIGNED_PAYLOAD};

/// The largest object one `PUT` may carry in S3.
const MAX_SINGLE_PUT: u64 = 5 << 30;

#[derive(Debug)]
pub struct S3Backend {
    location: S3Location,
    credentials: Option<Credentials>,
    client: HttpClient,
    /// `host[:port]` of the endpoint, as the `Host` header carries it.
    host: String,
}

impl S3Backend {
    pub fn new(
        location: S3Location,
        credentials: Option<Credentials>,
        client: HttpClient,
    ) -> S3Backend {
        let host = location
            .endpoint
            .split_once("://")
            .map_or(location.endpoint.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        S3Backend {
            location,
            credentials,
            client,
            host,
        }
    }

    /// The canonical path of `key` (or of the bucket itself for an empty key).
    fn path(&self, key: &str) -> String {
        sigv4::encode_path(&format!(
            "/{}/{}{key}",
            self.location.bucket,
            if key.is_empty() {
                ""
            } else {
                &self.location.prefix
            }
        ))
    }

    fn remote(&self, key: &str, problem: impl std::fmt::Display) -> Error {
        Error::Remote {
            url: format!("{}/{key}", self.describe()),
            problem: problem.to_string(),
        }
    }

    /// Sends one signed request; `headers` are signed with it, and a request with a
    /// body (`with_body`) is signed without hashing it.
    fn send(
        &self,
        method: &str,
        key: &str,
        headers: &[(&str, String)],
        body: impl ureq::AsSendBody,
        with_body: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let path = self.path(key);
        let payload_hash = if with_body {
            UNSIGNED_PAYLOAD.to_owned()
        } else {
            sigv4::sha256_hex(b"")
        };
        let mut all: Vec<(&str, String)> = headers.to_vec();
        if let Some(credentials) = &self.credentials {
            let request = sigv4::Request {
                method,
                host: &self.host,
                path: &path,
                query: "",
                headers,
                payload_hash: &payload_hash,
            };
            all.extend(sigv4::sign(
                credentials,
                &self.location.region,
                &request,
                &sigv4::now(),
            ));
        }
        let url = format!("{}{path}", self.location.endpoint);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in &all {
            builder = builder.header(*name, value);
        }
        let request = builder.body(body).map_err(|e| self.remote(key, e))?;
        self.client
            .agent
            .run(request)
            .map_err(|e| self.remote(key, e))
    }

    fn put(
        &self,
        key: &str,
        content_type: &str,
        len: u64,
        body: impl ureq::AsSendBody,
    ) -> Result<(), Error> {
        check_key(key)?;
        if len > MAX_SINGLE_PUT {
            return Err(Error::Unsupported(format!(
                "{key}: {len} bytes is more than one S3 upload may carry (5 GiB)"
            )));
        }
        let headers = [("content-type", content_type.to_owned())];
        let response = self.send("PUT", key, &headers, body, true)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.remote(key, error_text(response)))
        }
    }

    /// Creates the bucket (for setting up a cache; pushes never create buckets).
    pub fn create_bucket(&self) -> Result<(), Error> {
        let response = self.send("PUT", "", &[], (), false)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.remote("", error_text(response)))
        }
    }
}

impl Backend for S3Backend {
    fn size(&self, key: &str) -> Result<Option<u64>, Error> {
        check_key(key)?;
        let response = self.send("HEAD", key, &[], (), false)?;
        match response.status().as_u16() {
            200 => Ok(Some(
                response
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            403 => Err(self.remote(
                key,
                "HTTP 403: access denied (check the S3 credentials and the bucket's policy)",
            )),
            _ => Err(self.remote(key, error_text(response))),
        }
    }

    fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<Object>, Error> {
        check_key(key)?;
        let mut headers = Vec::new();
        if let Some(range) = &range {
            if range.is_empty() {
                return Ok(Some(Object {
                    len: 0,
                    body: Body::Stream(Box::new(std::io::empty())),
                }));
            }
            headers.push(("range", format!("bytes={}-{}", range.start, range.end - 1)));
        }
        let response = self.send("GET", key, &headers, (), false)?;
        match response.status().as_u16() {
            200 | 206 => {}
            404 => return Ok(None),
            _ => return Err(self.remote(key, error_text(response))),
        }
        let len = response.body().content_length().unwrap_or(0);
        Ok(Some(Object {
            len: range.map_or(len, |r| r.end - r.start),
            body: Body::Stream(body_reader(response)),
        }))
    }

    fn put_file(&self, key: &str, file: &Path, content_type: &str) -> Result<(), Error> {
        let opened = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        let len = opened.metadata().map_err(|e| Error::io(file, e))?.len();
        self.put(key, content_type, len, opened)
    }

    fn put_bytes(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error> {
        self.put(key, content_type, bytes.len() as u64, bytes)
    }

    fn describe(&self) -> String {
        format!(
            "s3://{}/{}",
            self.location.bucket,
            self.location.prefix.trim_end_matches('/')
        )
        .trim_end_matches('/')
        .to_owned()
    }
}
