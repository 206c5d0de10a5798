//! Issues: one per distinct failure, found again by the signature each issue carries in
//! a hidden marker, so that deduplication needs nothing but the tracker itself (a CI
//! runner may start without the last run's database).

pub mod drafts;
pub mod file;
pub mod github;
pub mod text;

use crate::error::Error;

/// An open issue this tool filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIssue {
    /// `#12` on GitHub, the file name of a draft.
    pub reference: String,
    pub signature: String,
    pub job: String,
}

/// Where issues go.
pub trait Tracker {
    /// The open issues that carry a marker.
    fn open_issues(&mut self) -> Result<Vec<OpenIssue>, Error>;
    /// Files an issue; returns its reference.
    fn open(&mut self, title: &str, body: &str, labels: &[String]) -> Result<String, Error>;
    fn comment(&mut self, reference: &str, body: &str) -> Result<(), Error>;
    /// Comments, then closes.
    fn close(&mut self, reference: &str, body: &str) -> Result<(), Error>;
}

const MARKER: &str = "<!-- cudapkgs-upkeep";

/// The hidden line an issue body starts with.
pub fn marker(signature: &str, job: &str) -> String {
    format!("{MARKER} signature={signature} job={job} -->")
}

/// The signature and job of a body's marker.
pub fn read_marker(body: &str) -> Option<(String, String)> {
    let line = body.lines().find(|line| line.starts_with(MARKER))?;
    let fields = line.strip_prefix(MARKER)?.strip_suffix("-->")?;
    let mut signature = None;
    let mut job = None;
    for field in fields.split_whitespace() {
        if let Some(value) = field.strip_prefix("signature=") {
            signature = Some(value.to_owned());
        } else if let Some(value) = field.strip_prefix("job=") {
            job = Some(value.to_owned());
        }
    }
    signature.zip(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_read_back() {
        let body = format!(
            "{}\nrest",
            marker("ab12", "libfoo/cuda-13/linux-x86_64/any")
        );
        assert_eq!(
            read_marker(&body),
            Some((
                "ab12".to_owned(),
                "libfoo/cuda-13/linux-x86_64/any".to_owned()
            ))
        );
        assert_eq!(read_marker("no marker"), None);
        assert_eq!(read_marker("<!-- cudapkgs-upkeep job=x -->"), None);
    }
}
