//! Issues on GitHub through its REST API (or GitHub Enterprise's, at another base URL):
//! open issues listed by label, created, commented on and closed.

use std::time::Duration;

use serde_json::{Value, json};

use super::{OpenIssue, Tracker, read_marker};
use crate::error::Error;

/// A repository's issues.
#[derive(Debug)]
pub struct GitHub {
    /// `https://api.github.com`, or `https://HOST/api/v3`.
    api: String,
    /// `OWNER/NAME`.
    repository: String,
    token: String,
    /// The label that finds this tool's issues.
    label: String,
    agent: ureq::Agent,
}

/// Pages of open issues read at most (100 each).
const MAX_PAGES: usize = 100;

impl GitHub {
    pub fn new(api: &str, repository: &str, token: &str, label: &str) -> Result<GitHub, Error> {
        let valid = repository.split_once('/').is_some_and(|(owner, name)| {
            !owner.is_empty() && !name.is_empty() && !name.contains('/')
        });
        if !valid {
            return Err(Error::BadRepository(repository.to_owned()));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build()
            .into();
        Ok(GitHub {
            api: api.trim_end_matches('/').to_owned(),
            repository: repository.to_owned(),
            token: token.to_owned(),
            label: label.to_owned(),
            agent,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/repos/{}/{path}", self.api, self.repository)
    }

    /// Sends a request with GitHub's headers; the JSON answer of a 2xx status.
    fn send(&self, method: &'static str, url: &str, body: Option<&Value>) -> Result<Value, Error> {
        let failed = |problem: String| Error::Tracker {
            method,
            url: url.to_owned(),
            problem,
        };
        let sent = match (method, body) {
            ("POST", Some(body)) => self.headers(self.agent.post(url)).send(body.to_string()),
            ("PATCH", Some(body)) => self.headers(self.agent.patch(url)).send(body.to_string()),
            _ => self.headers(self.agent.get(url)).call(),
        };
        let unreachable = |source: ureq::Error| Error::TrackerUnreachable {
            method,
            url: url.to_owned(),
            source,
        };
        let mut response = sent.map_err(unreachable)?;
        let status = response.status();
        let text = response.body_mut().read_to_string().map_err(unreachable)?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(failed(format!("HTTP {status}: {message}")));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|source| Error::TrackerAnswer {
            method,
            url: url.to_owned(),
            source,
        })
    }

    /// GitHub's headers: its media type, the API version this speaks, the token.
    fn headers<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        request
            .header("Accept", "application/vnd.github+json")
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(
                "User-Agent",
                concat!("cudapkgs-upkeep/", env!("CARGO_PKG_VERSION")),
            )
            .header("Content-Type", "application/json")
    }

    fn number(reference: &str) -> &str {
        reference.trim_start_matches('#')
    }
}

/// `text` for a URL's query: unreserved characters as they are, the rest percent-encoded.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Tracker for GitHub {
    fn open_issues(&mut self) -> Result<Vec<OpenIssue>, Error> {
        let mut found = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = self.url(&format!(
                "issues?state=open&labels={}&per_page=100&page={page}",
                query_value(&self.label)
            ));
            let answer = self.send("GET", &url, None)?;
            let issues = answer.as_array().cloned().unwrap_or_default();
            for issue in &issues {
                // The issues endpoint lists pull requests too.
                if issue.get("pull_request").is_some() {
                    continue;
                }
                let Some((signature, job)) = issue["body"].as_str().and_then(read_marker) else {
                    continue;
                };
                if let Some(number) = issue["number"].as_u64() {
                    found.push(OpenIssue {
                        reference: format!("#{number}"),
                        signature,
                        job,
                    });
                }
            }
            if issues.len() < 100 {
                break;
            }
        }
        Ok(found)
    }

    fn open(&mut self, title: &str, body: &str, labels: &[String]) -> Result<String, Error> {
        let url = self.url("issues");
        let answer = self.send(
            "POST",
            &url,
            Some(&json!({"title": title, "body": body, "labels": labels})),
        )?;
        answer["number"]
            .as_u64()
            .map(|number| format!("#{number}"))
            .ok_or_else(|| Error::Tracker {
                method: "POST",
                url,
                problem: "the answer names no issue number".to_owned(),
            })
    }

    fn comment(&mut self, reference: &str, body: &str) -> Result<(), Error> {
        let url = self.url(&format!("issues/{}/comments", Self::number(reference)));
        self.send("POST", &url, Some(&json!({ "body": body })))
            .map(drop)
    }

    fn close(&mut self, reference: &str, body: &str) -> Result<(), Error> {
        self.comment(reference, body)?;
        let url = self.url(&format!("issues/{}", Self::number(reference)));
        self.send(
            "PATCH",
            &url,
            Some(&json!({"state": "closed", "state_reason": "completed"})),
        )
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_and_labels() {
        for bad in ["owner", "/name", "owner/", "a/b/c"] {
            assert!(
                GitHub::new("https://api.github.com", bad, "t", "upkeep").is_err(),
                "{bad}"
            );
        }
        let github = GitHub::new("https://ghe.example/api/v3/", "o/r", "t", "x").expect("valid");
        assert_eq!(
            github.url("issues"),
            "https://ghe.example/api/v3/repos/o/r/issues"
        );
        assert_eq!(query_value("build failure/ä"), "build%20failure%2F%C3%A4");
    }
}
