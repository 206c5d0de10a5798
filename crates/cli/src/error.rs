//! How the binary fails: a message that says what went wrong, the causes beneath it, an
//! optional hint that says what to do, and the exit code that goes with it.

use std::fmt;

/// Exit codes shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did its job and found nothing wrong.
    Success = 0,
    /// A check ran and found problems.
    Problems = 1,
    /// Bad usage or unreadable input: nothing was checked.
    Usage = 2,
}

/// A failure that stops a command before it could do its job (exit code 2).
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    /// What the failure came from, outermost first (`Error::source()`, walked).
    pub causes: Vec<String>,
    pub hint: Option<String>,
    /// Standard output was closed by its reader: stop quietly.
    pub closed_pipe: bool,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            causes: Vec::new(),
            hint: None,
            closed_pipe: false,
        }
    }

    /// A library error: its message, and the chain of its sources as the causes.
    pub fn from_error(error: &dyn std::error::Error) -> Self {
        let message = error.to_string();
        let mut causes = causes_of(error);
        // An error of another project may show its source and return it as well: once is enough.
        causes.retain(|cause| !message.ends_with(cause.as_str()));
        Self {
            causes,
            ..Self::new(message)
        }
    }

    /// Adds `cause` and the chain beneath it to the causes: for a failure the binary
    /// names itself (`cannot read FILE`) over an error that says why.
    pub fn caused_by(mut self, cause: &dyn std::error::Error) -> Self {
        let cause = CliError::from_error(cause);
        self.causes.push(cause.message);
        self.causes.extend(cause.causes);
        self
    }

    /// The reader of standard output went away (`cudapkgs … | head`).
    pub fn closed_pipe() -> Self {
        Self {
            closed_pipe: true,
            ..Self::new("standard output was closed")
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn with_optional_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Prefixes the message with where the bad value came from (a flag, a variable, a file).
    pub fn context(mut self, origin: impl fmt::Display) -> Self {
        self.message = format!("{origin}: {}", self.message);
        self
    }
}

/// The messages of `error`'s sources, outermost first. Where one message ends with the
/// next (or the next with it, as SQLite's code under its words), the fuller one is kept:
/// an error that shows its source and returns it too says it once.
fn causes_of(error: &dyn std::error::Error) -> Vec<String> {
    let mut causes: Vec<String> = Vec::new();
    for cause in std::iter::successors(error.source(), |cause| cause.source()) {
        let text = cause.to_string();
        match causes.last_mut() {
            Some(last) if last.ends_with(&text) => {}
            Some(last) if text.ends_with(last.as_str()) => *last = text,
            _ => causes.push(text),
        }
    }
    causes
}

/// `error` and its causes on one line (`message: cause: cause`), for a warning or a
/// report line that has no room for a chain.
pub fn one_line(error: &dyn std::error::Error) -> String {
    let error = CliError::from_error(error);
    std::iter::once(error.message)
        .chain(error.causes)
        .collect::<Vec<_>>()
        .join(": ")
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<cudapkgs_caps::Error> for CliError {
    fn from(error: cudapkgs_caps::Error) -> Self {
        let hint = match &error {
            cudapkgs_caps::Error::Options(options) => options_hint(options),
            cudapkgs_caps::Error::CompilerLimits(limits) => Some(compiler_limits_hint(limits)),
            _ => None,
        };
        CliError::from_error(&error).with_optional_hint(hint)
    }
}

impl From<cudapkgs_caps::OptionsError> for CliError {
    fn from(error: cudapkgs_caps::OptionsError) -> Self {
        let hint = options_hint(&error);
        CliError::from_error(&error).with_optional_hint(hint)
    }
}

impl From<cudapkgs_caps::UnknownCompilerLimits> for CliError {
    fn from(error: cudapkgs_caps::UnknownCompilerLimits) -> Self {
        CliError::from_error(&error).with_hint(compiler_limits_hint(&error))
    }
}

/// The flag that resolves a refused set of GPUs and platform, where one does.
fn options_hint(error: &cudapkgs_caps::OptionsError) -> Option<String> {
    use cudapkgs_caps::{HostPlatform, OptionsError};
    let names = |capabilities: &[cudapkgs_caps::Capability]| {
        capabilities
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(match error {
        OptionsError::JetsonOnNonAarch64 {
            suggested,
            alternatives,
            ..
        } => format!(
            "use --platform {} or choose from {}",
            suggested.name(),
            names(alternatives)
        ),
        OptionsError::JetsonNeedsJetsonPlatform { .. } => {
            format!("use --platform {}", HostPlatform::Aarch64Jetson.name())
        }
        OptionsError::NonJetsonOnJetsonPlatform { .. } => format!(
            "use --platform {} for them",
            HostPlatform::Aarch64Server.name()
        ),
        _ => return None,
    })
}

fn compiler_limits_hint(error: &cudapkgs_caps::UnknownCompilerLimits) -> String {
    format!("choose --cuda {} or later", error.oldest)
}

/// A warning about the GPU options, with the flag that silences it.
pub fn options_warning(warning: &cudapkgs_caps::OptionsWarning) -> String {
    match warning {
        cudapkgs_caps::OptionsWarning::SpecificPtxReplaced { .. } => {
            format!("{warning}; add a baseline capability or use --no-forward-compat")
        }
    }
}

pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the store")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("/state/db.sqlite")]
    struct Middle(#[source] std::io::Error);

    fn three_levels() -> Outer {
        Outer(Middle(std::io::Error::other("permission denied")))
    }

    #[test]
    fn from_error_walks_every_source_outermost_first() {
        let error = CliError::from_error(&three_levels());
        assert_eq!(error.message, "cannot open the store");
        assert_eq!(error.causes, ["/state/db.sqlite", "permission denied"]);
        assert_eq!(error.hint, None);
    }

    #[test]
    fn an_error_without_a_source_has_no_causes() {
        let error = CliError::from_error(&std::io::Error::other("disk full"));
        assert_eq!(error.message, "disk full");
        assert!(error.causes.is_empty());
    }

    /// An error that shows its source in its own message, as many outside this project do.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}: {1}")]
    struct Showing(&'static str, #[source] std::io::Error);

    /// A source that says more than the error above it (SQLite's code under its words).
    #[derive(Debug, thiserror::Error)]
    #[error("file is not a database")]
    struct Brief(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("db.sqlite is not a usable store database")]
    struct Unusable(#[source] Brief);

    #[test]
    fn a_cause_said_twice_is_printed_once() {
        let error = CliError::from_error(&Showing("db.sqlite", std::io::Error::other("locked")));
        assert_eq!(error.message, "db.sqlite: locked");
        assert!(error.causes.is_empty(), "{:?}", error.causes);

        let detailed = std::io::Error::other("Error code 26: file is not a database");
        let error = CliError::from_error(&Unusable(Brief(detailed)));
        assert_eq!(error.causes, ["Error code 26: file is not a database"]);
    }

    #[test]
    fn one_line_joins_the_message_and_its_causes() {
        assert_eq!(
            one_line(&three_levels()),
            "cannot open the store: /state/db.sqlite: permission denied"
        );
    }
}
