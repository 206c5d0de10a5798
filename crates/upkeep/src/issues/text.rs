//! What an issue says: the package, release, system, failing step, the missing
//! library or the message, the log, and how to run the build again.

use std::fmt::Write as _;

use crate::regress::Change;
use crate::results::{Failure, JobResult};

/// Where logs are for readers of an issue: the page they are published on (a CI run's,
/// whose artifacts hold the log folder), linked with the log's path below the folder;
/// else the log's path on the machine that ran the job.
#[derive(Debug, Clone, Default)]
pub struct LogLinks {
    pub base_url: Option<String>,
    /// The log folder, stripped from paths shown with the link.
    pub folder: std::path::PathBuf,
}

impl LogLinks {
    pub fn link(&self, result: &JobResult) -> String {
        let relative = crate::run::relative_log(result, &self.folder);
        match &self.base_url {
            Some(base) => format!("[`{}`]({base})", relative.display()),
            None => format!("`{}`", result.log.display()),
        }
    }
}

/// The headline of a failure: the missing libraries, else its first line.
fn headline(failure: &Failure) -> String {
    if !failure.missing.is_empty() {
        return format!(
            "needs {}, which nothing provides",
            failure.missing.join(", ")
        );
    }
    let first = failure.message.lines().next().unwrap_or("").trim();
    let mut line: String = first.chars().take(100).collect();
    if first.chars().count() > 100 {
        line.push('…');
    }
    line
}

fn release(result: &JobResult) -> String {
    let job = &result.job;
    let capabilities = if job.capabilities.is_empty() {
        String::new()
    } else {
        format!(", capabilities {}", job.capabilities)
    };
    format!("CUDA {}, {}{capabilities}", job.cuda, job.system)
}

/// `libevil fails at build (CUDA 13, linux-x86_64): needs libmissing.so.1, …`.
pub fn title(result: &JobResult, failure: &Failure) -> String {
    format!(
        "{} fails at {} ({}): {}",
        result.job.subject(),
        failure.step,
        release(result),
        headline(failure)
    )
}

/// The body of a new issue.
pub fn body(result: &JobResult, failure: &Failure, changes: &[Change], logs: &LogLinks) -> String {
    let job = &result.job;
    let mut text = super::marker(&failure.signature, &job.id());
    let _ = write!(
        text,
        "\n`cudapkgs upkeep` found a failure.\n\n\
         | | |\n|---|---|\n\
         | package | `{}` |\n| CUDA release | {} |\n| system | {} |\n| capabilities | {} |\n\
         | failing step | {} |\n",
        job.subject(),
        job.cuda,
        job.system,
        if job.capabilities.is_empty() {
            "none requested"
        } else {
            &job.capabilities
        },
        failure.step,
    );
    for library in &failure.missing {
        let _ = writeln!(text, "| missing library | `{library}` |");
    }
    for (package, version) in &result.versions {
        let _ = writeln!(text, "| built | {package} {version} |");
    }
    let _ = writeln!(text, "| signature | `{}` |", failure.signature);
    for change in changes {
        let _ = writeln!(text, "| change | {} |", change.describe());
    }
    let _ = write!(
        text,
        "\n### Message\n\n```text\n{}\n```\n\n### Log\n\n{}\n\n<details><summary>Last lines</summary>\n\n```text\n{}\n```\n\n</details>\n\n\
         To build it again: `cudapkgs build {} --cuda {} --system {}{}`\n",
        failure.message.trim_end(),
        logs.link(result),
        failure.log_tail.trim_end(),
        job.spec,
        job.cuda,
        job.system,
        if job.capabilities.is_empty() {
            String::new()
        } else {
            format!(" --capabilities {}", job.capabilities)
        },
    );
    text
}

/// The comment when the same failure comes back in a later run.
pub fn recurred(result: &JobResult, logs: &LogLinks) -> String {
    format!(
        "Still failing in run `{}`, the same failure (signature unchanged). Log: {}",
        short(&result.run),
        logs.link(result)
    )
}

/// The comment when the job passes again.
pub fn fixed(result: &JobResult) -> String {
    format!(
        "Fixed: `{}` passes again in run `{}`. Closing.",
        result.job.id(),
        short(&result.run)
    )
}

/// The comment when the job still fails, but otherwise.
pub fn superseded(result: &JobResult, reference: &str) -> String {
    format!(
        "This failure is gone in run `{}`: the job now fails differently, see {reference}. Closing.",
        short(&result.run)
    )
}

fn short(key: &str) -> &str {
    &key[..key.len().min(12)]
}
