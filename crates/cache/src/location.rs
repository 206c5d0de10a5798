//! Where a cache is, from its URL: `file:///folder`, `http(s)://host[:port][/prefix]`,
//! `s3://bucket[/prefix]?endpoint=…&region=…` (the forms Nix accepts, plus `endpoint`
//! with a scheme).

use std::path::PathBuf;

use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Folder(PathBuf),
    /// A base URL without a trailing slash.
    Http(String),
    S3(S3Location),
}

/// An S3 bucket, addressed path-style (`<endpoint>/<bucket>/<key>`), which every
/// S3-compatible server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `http(s)://host[:port]`, no trailing slash.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Keys start with this (`prefix/`), or nothing.
    pub prefix: String,
}

impl Location {
    pub fn parse(url: &str) -> Result<Location, Error> {
        let bad = |problem: &str| {
            Error::Location(format!(
                "{url:?}: {problem} (a cache is file:///FOLDER, http(s)://HOST[:PORT][/PATH] or s3://BUCKET?endpoint=URL&region=REGION)"
            ))
        };
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') || path.contains('?') {
                return Err(bad(
                    "a file:// cache needs an absolute folder and no options",
                ));
            }
            return Ok(Location::Folder(PathBuf::from(path)));
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            if url.contains('?') || url.contains('#') {
                return Err(bad("an HTTP cache takes no options"));
            }
            let host = url.split_once("://").map_or("", |(_, rest)| rest);
            if host.is_empty() || host.starts_with('/') {
                return Err(bad("no host"));
            }
            return Ok(Location::Http(url.trim_end_matches('/').to_owned()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
            if bucket.is_empty()
                || !bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
            {
                return Err(bad(
                    "the bucket name must be lower-case letters, digits, '-' and '.'",
                ));
            }
            let mut endpoint = None;
            let mut scheme = "https";
            let mut region = "us-east-1".to_owned();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                match key {
                    "endpoint" => endpoint = Some(value.to_owned()),
                    "region" => value.clone_into(&mut region),
                    "scheme" if value == "http" || value == "https" => {
                        scheme = if value == "http" { "http" } else { "https" };
                    }
                    // Nix's options that name credentials or upload settings elsewhere.
                    "profile" | "multipart-upload" | "buffer-size" => {}
                    _ => return Err(bad(&format!("unknown option {key:?}"))),
                }
            }
            let endpoint = match endpoint {
                None => format!("https://s3.{region}.amazonaws.com"),
                Some(e) if e.starts_with("http://") || e.starts_with("https://") => e,
                Some(e) if !e.is_empty() => format!("{scheme}://{e}"),
                Some(_) => return Err(bad("endpoint is empty")),
            };
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|p| p == "." || p == "..") {
                return Err(bad("the prefix may not hold '.' or '..'"));
            }
            return Ok(Location::S3(S3Location {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                region,
                bucket: bucket.to_owned(),
                prefix: if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                },
            }));
        }
        Err(bad("unknown kind of cache"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind() {
        assert_eq!(
            Location::parse("file:///srv/cache").expect("file"),
            Location::Folder("/srv/cache".into())
        );
        assert_eq!(
            Location::parse("http://127.0.0.1:8080/").expect("http"),
            Location::Http("http://127.0.0.1:8080".into())
        );
        assert_eq!(
            Location::parse("s3://cache/cuda?endpoint=127.0.0.1:8333&scheme=http&region=eu")
                .expect("s3"),
            Location::S3(S3Location {
                endpoint: "http://127.0.0.1:8333".into(),
                region: "eu".into(),
                bucket: "cache".into(),
                prefix: "cuda/".into(),
            })
        );
        let Location::S3(aws) = Location::parse("s3://b").expect("s3") else {
            panic!("s3")
        };
        assert_eq!(aws.endpoint, "https://s3.us-east-1.amazonaws.com");
        for bad in [
            "file://relative",
            "ftp://x",
            "http://",
            "s3://Bad_Bucket",
            "s3://b?secret=x",
            "s3://b/../x",
            "/plain/path",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}
