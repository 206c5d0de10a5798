//! Issues as Markdown drafts in a folder, for runs without a repository: one file per
//! failure, its state in a header, comments appended, closing rewrites the state.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{OpenIssue, Tracker, read_marker};
use crate::error::Error;

/// A folder of drafts.
#[derive(Debug)]
pub struct Drafts {
    folder: PathBuf,
}

const OPEN: &str = "state: open\n";
const CLOSED: &str = "state: closed\n";

impl Drafts {
    /// Drafts in `folder`, made if missing.
    pub fn new(folder: &Path) -> Result<Drafts, Error> {
        std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
        Ok(Drafts {
            folder: folder.to_owned(),
        })
    }

    fn path(&self, reference: &str) -> Result<PathBuf, Error> {
        // References are names this folder gave; anything else is not one of ours.
        if reference.is_empty() || reference.contains('/') || reference.starts_with('.') {
            return Err(Error::Config(format!(
                "`{reference}` is no draft of {}",
                self.folder.display()
            )));
        }
        Ok(self.folder.join(reference))
    }

    fn read(&self, reference: &str) -> Result<(PathBuf, String), Error> {
        let path = self.path(reference)?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Ok((path, text))
    }

    fn write(path: &Path, text: &str) -> Result<(), Error> {
        cudapkgs_tree::write_file_atomically(path, text.as_bytes()).map_err(|e| Error::io(path, e))
    }
}

impl Tracker for Drafts {
    fn open_issues(&mut self) -> Result<Vec<OpenIssue>, Error> {
        let mut found = Vec::new();
        let entries = std::fs::read_dir(&self.folder).map_err(|e| Error::io(&self.folder, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.folder, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if Path::new(&name).extension().is_none_or(|e| e != "md")
                || !entry.file_type().is_ok_and(|t| t.is_file())
            {
                continue;
            }
            let (_, text) = self.read(&name)?;
            if !text.starts_with(OPEN) {
                continue;
            }
            if let Some((signature, job)) = read_marker(&text) {
                found.push(OpenIssue {
                    reference: name,
                    signature,
                    job,
                });
            }
        }
        found.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(found)
    }

    fn open(&mut self, title: &str, body: &str, labels: &[String]) -> Result<String, Error> {
        let signature = read_marker(body).map(|(s, _)| s).unwrap_or_default();
        let stem: String = signature.chars().take(16).collect();
        // A closed draft of the same failure stays; the new one takes the next name.
        let mut reference = format!("{stem}.md");
        let mut n = 1;
        while self.folder.join(&reference).exists() {
            n += 1;
            reference = format!("{stem}-{n}.md");
        }
        let text = format!("{OPEN}labels: {}\n\n# {title}\n\n{body}", labels.join(", "));
        Self::write(&self.folder.join(&reference), &text)?;
        Ok(reference)
    }

    fn comment(&mut self, reference: &str, body: &str) -> Result<(), Error> {
        let (path, mut text) = self.read(reference)?;
        let _ = write!(text, "\n---\n\n**Comment:** {body}\n");
        Self::write(&path, &text)
    }

    fn close(&mut self, reference: &str, body: &str) -> Result<(), Error> {
        self.comment(reference, body)?;
        let (path, text) = self.read(reference)?;
        let text = text
            .strip_prefix(OPEN)
            .map_or(text.clone(), |rest| format!("{CLOSED}{rest}"));
        Self::write(&path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::marker;

    #[test]
    fn drafts_open_recur_and_close() {
        let dir = tempfile::tempdir().expect("temp");
        let mut drafts = Drafts::new(&dir.path().join("issues")).expect("folder");
        let body = format!("{}\nbody", marker("0123456789abcdef00", "j"));
        let reference = drafts
            .open("title", &body, &["upkeep".to_owned()])
            .expect("open");
        assert_eq!(reference, "0123456789abcdef.md");
        let open = drafts.open_issues().expect("list");
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].signature.as_str(), open[0].job.as_str()),
            ("0123456789abcdef00", "j")
        );
        drafts.comment(&reference, "again").expect("comment");
        drafts.close(&reference, "fixed").expect("close");
        assert!(drafts.open_issues().expect("list").is_empty());
        let text =
            std::fs::read_to_string(dir.path().join("issues").join(&reference)).expect("read");
        assert!(
            text.starts_with("state: closed\nlabels: upkeep\n\n# title\n"),
            "{text}"
        );
        assert!(text.contains("**Comment:** again") && text.contains("**Comment:** fixed"));
        assert_eq!(
            drafts.open("t", &body, &[]).expect("again"),
            "0123456789abcdef-2.md"
        );
        assert!(drafts.comment("../x.md", "no").is_err());
    }
}
