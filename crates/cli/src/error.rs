//! How the binary fails: a message that says what went wrong, an optional hint that
//! says what to do, and the exit code that goes with it.

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
    pub hint: Option<String>,
    /// Standard output was closed by its reader: stop quietly.
    pub closed_pipe: bool,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            closed_pipe: false,
        }
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

    /// Prefixes the message with where the bad value came from (a flag, a variable, a file).
    pub fn context(mut self, origin: impl fmt::Display) -> Self {
        self.message = format!("{origin}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<cudapkgs_caps::Error> for CliError {
    fn from(error: cudapkgs_caps::Error) -> Self {
        CliError::new(error.to_string())
    }
}

impl From<cudapkgs_caps::OptionsError> for CliError {
    fn from(error: cudapkgs_caps::OptionsError) -> Self {
        CliError::new(error.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;
