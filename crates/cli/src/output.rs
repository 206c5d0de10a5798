//! Where output goes: results on stdout (for people, or JSON), warnings and
//! diagnostics on stderr, nothing extra under `--quiet`.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::error::CliError;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// Sizes as exact byte counts (`--bytes`).
    pub bytes: bool,
    /// The columns of the terminal stdout is, for tables that fit it; `None` in a pipe.
    pub width: Option<usize>,
}

impl Output {
    /// A size for people: `1.5 MiB`, or the exact count with `--bytes`.
    pub fn size(self, bytes: u64) -> String {
        if self.bytes {
            bytes.to_string()
        } else {
            crate::units::bytes(bytes)
        }
    }

    /// A warning: something legal but probably unintended.
    pub fn warn(self, message: impl std::fmt::Display) {
        if !self.quiet {
            anstream::eprintln!("{WARNING}warning:{WARNING:#} {message}");
        }
    }

    /// What happened, for people (a summary line): on stderr, silent with `--quiet`.
    pub fn note(self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A detail shown with `-v`.
    pub fn detail(self, message: impl std::fmt::Display) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("  {message}");
        }
    }

    /// Writes a JSON document to stdout.
    pub fn print_json(value: &impl Serialize) -> Result<(), CliError> {
        // Stdout is line-buffered; pretty JSON has a line per field.
        let mut stdout = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
        serde_json::to_writer_pretty(&mut stdout, value)
            .map_err(|error| CliError::new("cannot write JSON").caused_by(&error))?;
        writeln!(stdout).map_err(|error| write_error(&error))?;
        stdout.flush().map_err(|error| write_error(&error))
    }

    /// Writes text to stdout as it is; its colours only on a terminal that takes them
    /// (`NO_COLOR`, `CLICOLOR` and `CLICOLOR_FORCE` are honoured).
    pub fn print(text: &str) -> Result<(), CliError> {
        anstream::AutoStream::auto(io::stdout().lock())
            .write_all(text.as_bytes())
            .map_err(|error| write_error(&error))
    }

    /// A failure that will make the command exit 2 (shown under `--quiet` too).
    #[allow(
        clippy::unused_self,
        reason = "called like `warn` and `detail`, whose output depends on the settings"
    )]
    pub fn error(self, message: impl std::fmt::Display) {
        anstream::eprintln!("{ERROR}error:{ERROR:#} {message}");
    }

    /// Reports a failure on stderr, and as JSON on stdout when JSON was asked for.
    pub fn report_error(self, error: &CliError) {
        if self.json {
            print_error_document(&error.message, &error.causes, error.hint.as_deref());
        }
        anstream::eprintln!("{ERROR}error:{ERROR:#} {}", error.message);
        for cause in &error.causes {
            anstream::eprintln!("  {CAUSE}caused by:{CAUSE:#} {cause}");
        }
        if let Some(hint) = &error.hint {
            anstream::eprintln!("{HINT}hint:{HINT:#} {hint}");
        }
    }
}

/// The label of an error, a warning and a hint on stderr.
const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default().bold();
const CAUSE: Style = Style::new().bold();
/// A check that failed and one that passed, in text on stdout.
pub const FAILED: Style = AnsiColor::Red.on_default().bold();
pub const PASSED: Style = AnsiColor::Green.on_default();

/// The JSON Schema of the documents `T` prints: a key left out when empty is optional.
pub fn schema_of<T: schemars::JsonSchema>() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// The JSON document of `--version --json`, on one line.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct VersionDocument {
    pub name: &'static str,
    pub version: &'static str,
}

/// The JSON document of every failure that stops a command (exit 2).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorDocument<'a> {
    pub error: ErrorBody<'a>,
}

/// What went wrong, what that came from and, when known, what to do about it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorBody<'a> {
    /// What failed and where: a path, a URL, a package.
    pub message: &'a str,
    /// The errors beneath the message, outermost first (an operating system's or a
    /// database's own message, say); empty when the message is all there is.
    pub causes: &'a [String],
    pub hint: Option<&'a str>,
}

/// The JSON document of a failure, on stdout.
pub fn print_error_document(message: &str, causes: &[String], hint: Option<&str>) {
    let document = serde_json::to_value(ErrorDocument {
        error: ErrorBody {
            message,
            causes,
            hint,
        },
    })
    .unwrap_or_default();
    let mut stdout = io::stdout().lock();
    // Nothing more can be said if stdout is gone too.
    let _ = writeln!(stdout, "{document:#}").and_then(|()| stdout.flush());
}

fn write_error(error: &io::Error) -> CliError {
    if error.kind() == io::ErrorKind::BrokenPipe {
        return CliError::closed_pipe();
    }
    CliError::new("cannot write to standard output").caused_by(&error)
}
