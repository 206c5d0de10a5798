//! AWS Signature Version 4 for S3 requests, in headers: the canonical request, the
//! string to sign and the derived key, as AWS's documentation defines them.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;
use sha2::{Digest, Sha256};

/// The payload hash S3 accepts for bodies sent without hashing them first.
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// An access key.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    /// For temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// One request to sign. `path` is the canonical (already encoded) URI path, `query` the
/// canonical query string; `headers` are the request's headers besides `host` and the
/// `x-amz-*` ones this adds, names in lower case.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub payload_hash: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hmac_sha256(key: &[u8], message: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message.as_bytes())
}

/// `YYYYMMDD'T'HHMMSS'Z'` for a time in seconds since 1970 (UTC).
pub(crate) fn amz_date(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let rest = seconds % 86_400;
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

pub(crate) fn now() -> String {
    amz_date(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// The headers to add to `request` (`x-amz-date`, `x-amz-content-sha256`, the session
/// token if any, and `authorization`), signed at `date` (`amz_date`) for `region`.
pub(crate) fn sign(
    credentials: &Credentials,
    region: &str,
    request: &Request<'_>,
    date: &str,
) -> Vec<(&'static str, String)> {
    let mut added = vec![
        ("x-amz-content-sha256", request.payload_hash.to_owned()),
        ("x-amz-date", date.to_owned()),
    ];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .chain(std::iter::once((
            "host".to_owned(),
            request.host.to_owned(),
        )))
        .chain(added.iter().map(|(n, v)| ((*n).to_owned(), v.clone())))
        .collect();
    headers.sort();
    let canonical_headers = headers.iter().fold(String::new(), |mut text, (n, v)| {
        let _ = writeln!(text, "{n}:{v}");
        text
    });
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method, request.path, request.query, request.payload_hash
    );
    let day = &date[..8];
    let scope = format!("{day}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let key = [day, region, "s3", "aws4_request"].iter().fold(
        format!("AWS4{}", credentials.secret_key).into_bytes(),
        |key, part| hmac_sha256(&key, part).as_ref().to_vec(),
    );
    let signature = hex(hmac_sha256(&key, &string_to_sign).as_ref());
    added.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key
        ),
    ));
    added
}

/// Percent-encodes a URI path as S3's canonical form wants it: everything but
/// unreserved characters and `/`.
pub(crate) fn encode_path(path: &str) -> String {
    path.bytes().fold(String::new(), |mut text, b| {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            text.push(char::from(b));
        } else {
            let _ = write!(text, "%{b:02X}");
        }
        text
    })
}

/// Percent-encodes a query name or value: everything but unreserved characters.
pub(crate) fn encode_query(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of AWS's Signature Version 4 documentation for S3
    /// ("Examples: Signature Calculations in AWS Signature Version 4").
    #[test]
    fn matches_aws_documented_example() {
        let credentials = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let headers = [("range", "bytes=0-9".to_owned())];
        let request = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: "",
            headers: &headers,
            payload_hash: &sha256_hex(b""),
        };
        let added = sign(&credentials, "us-east-1", &request, "20130524T000000Z");
        let authorization = &added
            .iter()
            .find(|(n, _)| *n == "authorization")
            .expect("auth")
            .1;
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        // 2024-02-29 23:59:59, a leap day.
        assert_eq!(amz_date(1_709_251_199), "20240229T235959Z");
        assert_eq!(amz_date(4_102_444_800), "21000101T000000Z");
    }

    #[test]
    fn query_values_are_encoded_whole() {
        assert_eq!(encode_query("a/b+c=d e"), "a%2Fb%2Bc%3Dd%20e");
        assert_eq!(encode_query(""), "");
    }

    #[test]
    fn paths_are_encoded_once() {
        assert_eq!(encode_path("/b/nar/a+b=c.nar"), "/b/nar/a%2Bb%3Dc.nar");
        assert_eq!(encode_path("/b/x-y_z.~"), "/b/x-y_z.~");
    }
}
