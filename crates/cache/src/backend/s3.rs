//! A cache in an S3 bucket (AWS or any S3-compatible server), requests signed with
//! Signature Version 4 (anonymous without credentials), sent with the HTTP client.

use std::ops::Range;
use std::path::Path;

use super::http::{HttpClient, body_reader, content_length, error_text};
use super::{Backend, Body, Object, check_key};
use crate::Error;
use crate::location::S3Location;
pub use crate::sigv4::Credentials;
use crate::sigv4::{self, UNSIGNED_PAYLOAD};
use std::fmt::Write as _;

/// Objects larger than this go up in parts of this size (S3 allows 5 MiB to 5 GiB).
const PART_SIZE: u64 = 32 << 20;

/// Parts of one object uploaded at once.
const PARTS_IN_FLIGHT: u64 = 4;

/// The text of the first `<tag>` element of an XML answer.
fn xml_value(text: &str, tag: &str) -> Option<String> {
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + text[start..].find(&format!("</{tag}>"))?;
    Some(
        text[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Debug, Clone)]
pub struct S3Backend {
    location: S3Location,
    credentials: Option<Credentials>,
    client: HttpClient,
    /// `host[:port]` of the endpoint, as the `Host` header carries it.
    host: String,
    /// Files larger than this are uploaded in parts of this size.
    part_size: u64,
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
            part_size: PART_SIZE,
        }
    }

    /// Uploads files larger than `bytes` in parts of that size (at least 5 MiB, as S3
    /// requires of every part but the last).
    pub fn with_part_size(mut self, bytes: u64) -> S3Backend {
        self.part_size = bytes.max(5 << 20);
        self
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

    /// Sends one signed request: `query` pairs (not yet encoded) and `headers` are
    /// signed with it; `payload_hash` is the body's SHA-256 in hex, or
    /// `UNSIGNED-PAYLOAD` for a body sent without hashing it first.
    fn send(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        payload_hash: &str,
        body: impl ureq::AsSendBody,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let path = self.path(key);
        let mut pairs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", sigv4::encode_query(k), sigv4::encode_query(v)))
            .collect();
        pairs.sort();
        let query = pairs.join("&");
        let mut all: Vec<(&str, String)> = headers.to_vec();
        if let Some(credentials) = &self.credentials {
            let request = sigv4::Request {
                method,
                host: &self.host,
                path: &path,
                query: &query,
                headers,
                payload_hash,
            };
            all.extend(sigv4::sign(
                credentials,
                &self.location.region,
                &request,
                &sigv4::now(),
            ));
        }
        let url = if query.is_empty() {
            format!("{}{path}", self.location.endpoint)
        } else {
            format!("{}{path}?{query}", self.location.endpoint)
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in &all {
            builder = builder.header(*name, value);
        }
        let request = builder.body(body).map_err(|e| self.remote(key, e))?;
        self.client.agent.run(request).map_err(|e| match e {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed => Error::Unreachable {
                url: format!("{}/{key}", self.describe()),
                source: e,
            },
            other => self.remote(key, other),
        })
    }

    /// A request without a body.
    fn send_empty(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        // Without a body a request can be sent again (twice at most) when its connection
        // failed before an answer: a server may close a kept-alive connection any time.
        let mut attempt = 0;
        loop {
            match self.send(method, key, query, headers, &sigv4::sha256_hex(b""), ()) {
                Err(Error::Unreachable { .. }) if attempt < 2 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
                }
                outcome => return outcome,
            }
        }
    }

    /// Fails unless the response is a success, with S3's message.
    fn expect_success(
        &self,
        key: &str,
        response: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.remote(key, error_text(response)))
        }
    }

    fn put(
        &self,
        key: &str,
        content_type: &str,
        payload_hash: &str,
        body: impl ureq::AsSendBody,
    ) -> Result<(), Error> {
        check_key(key)?;
        let headers = [("content-type", content_type.to_owned())];
        let response = self.send("PUT", key, &[], &headers, payload_hash, body)?;
        self.expect_success(key, response).map(drop)
    }

    /// Uploads the file in parts of `part_size`, several at once; an upload that fails
    /// is aborted, so the bucket keeps no parts of it.
    fn put_multipart(
        &self,
        key: &str,
        file: &std::fs::File,
        len: u64,
        content_type: &str,
    ) -> Result<(), Error> {
        let headers = [("content-type", content_type.to_owned())];
        let response = self.send_empty("POST", key, &[("uploads", "")], &headers)?;
        let text = super::http::body_text(self.expect_success(key, response)?, 64 << 10);
        let upload_id = xml_value(&text, "UploadId")
            .ok_or_else(|| self.remote(key, format!("no UploadId in {text:?}")))?;
        let uploaded = self
            .upload_parts(key, &upload_id, file, len)
            .and_then(|etags| self.complete(key, &upload_id, &etags));
        if uploaded.is_err() {
            let _ = self.send_empty("DELETE", key, &[("uploadId", &upload_id)], &[]);
        }
        uploaded
    }

    /// Sends every part, `PARTS_IN_FLIGHT` at once; returns their ETags in order.
    fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        file: &std::fs::File,
        len: u64,
    ) -> Result<Vec<String>, Error> {
        use std::os::unix::fs::FileExt;
        let parts = len.div_ceil(self.part_size).max(1);
        let next = std::sync::atomic::AtomicU64::new(0);
        let etags = std::sync::Mutex::new(vec![String::new(); usize::try_from(parts).unwrap_or(0)]);
        let failed = std::sync::Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..PARTS_IN_FLIGHT.min(parts) {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if index >= parts || failed.lock().map_or(true, |f| f.is_some()) {
                            return;
                        }
                        let start = index * self.part_size;
                        let size = self.part_size.min(len - start);
                        let mut bytes = vec![0; usize::try_from(size).unwrap_or(0)];
                        let sent = file
                            .read_exact_at(&mut bytes, start)
                            .map_err(|e| Error::io(key, e))
                            .and_then(|()| {
                                let number = (index + 1).to_string();
                                let query =
                                    [("partNumber", number.as_str()), ("uploadId", upload_id)];
                                let response = self.send(
                                    "PUT",
                                    key,
                                    &query,
                                    &[],
                                    UNSIGNED_PAYLOAD,
                                    &bytes[..],
                                )?;
                                let response = self.expect_success(key, response)?;
                                response
                                    .headers()
                                    .get("etag")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned)
                                    .ok_or_else(|| self.remote(key, "a part's answer has no ETag"))
                            });
                        match sent {
                            Ok(etag) => {
                                if let Ok(mut etags) = etags.lock() {
                                    etags[usize::try_from(index).unwrap_or(0)] = etag;
                                }
                            }
                            Err(error) => {
                                if let Ok(mut failed) = failed.lock() {
                                    failed.get_or_insert(error);
                                }
                            }
                        }
                    }
                });
            }
        });
        if let Some(error) = failed
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            return Err(error);
        }
        Ok(etags
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn complete(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<(), Error> {
        let mut body = String::from("<CompleteMultipartUpload>");
        for (index, etag) in etags.iter().enumerate() {
            let _ = write!(
                body,
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                index + 1,
                xml_escape(etag)
            );
        }
        body.push_str("</CompleteMultipartUpload>");
        let hash = sigv4::sha256_hex(body.as_bytes());
        let response = self.send(
            "POST",
            key,
            &[("uploadId", upload_id)],
            &[],
            &hash,
            body.as_bytes(),
        )?;
        // S3 may answer 200 with an error document when completing fails late.
        let text = super::http::body_text(self.expect_success(key, response)?, 64 << 10);
        match xml_value(&text, "Code") {
            Some(code) if text.contains("<Error>") => {
                Err(self.remote(key, format!("completing the upload failed: {code}")))
            }
            _ => Ok(()),
        }
    }

    /// Creates the bucket (for setting up a cache; pushes never create buckets).
    pub fn create_bucket(&self) -> Result<(), Error> {
        let response = self.send_empty("PUT", "", &[], &[])?;
        self.expect_success("", response).map(drop)
    }
}

impl Backend for S3Backend {
    fn size(&self, key: &str) -> Result<Option<u64>, Error> {
        check_key(key)?;
        let response = self.send_empty("HEAD", key, &[], &[])?;
        match response.status().as_u16() {
            200 => Ok(Some(content_length(&response))),
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
        let response = self.send_empty("GET", key, &[], &headers)?;
        match response.status().as_u16() {
            200 | 206 => {}
            404 => return Ok(None),
            _ => return Err(self.remote(key, error_text(response))),
        }
        let len = response.body().content_length().unwrap_or(0);
        let body = body_reader(response);
        let body: Box<dyn std::io::Read + Send> = if range.is_none() {
            let (backend, key) = (self.clone(), key.to_owned());
            let reopen = move |offset: u64| -> Result<Box<dyn std::io::Read + Send>, Error> {
                let object = backend.get(&key, Some(offset..len))?.ok_or_else(|| {
                    Error::Missing(format!("{key} went away during its download"))
                })?;
                Ok(object.body.into_reader())
            };
            Box::new(super::Resuming::new(body, len, Box::new(reopen)))
        } else {
            body
        };
        Ok(Some(Object {
            len: range.map_or(len, |r| r.end - r.start),
            body: Body::Stream(body),
        }))
    }

    fn put_file(&self, key: &str, file: &Path, content_type: &str) -> Result<(), Error> {
        check_key(key)?;
        let opened = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        let len = opened.metadata().map_err(|e| Error::io(file, e))?.len();
        if len > self.part_size {
            return self.put_multipart(key, &opened, len, content_type);
        }
        self.put(key, content_type, UNSIGNED_PAYLOAD, opened)
    }

    fn put_bytes(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error> {
        self.put(key, content_type, &sigv4::sha256_hex(bytes), bytes)
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
