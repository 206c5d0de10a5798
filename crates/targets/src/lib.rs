//! Hard-coded GPU architecture lists in CUDA source trees: where a build forces its own
//! targets instead of the user's (`scan`), the same places rewritten to the requested
//! options (`rewrite`), and PyTorch's extension allow-list (`torch`).
//!
//! Pure logic over file contents: the only files touched are those the caller names, and
//! nothing here prints or reads the environment.

mod detect;
mod diff;
mod finding;
mod lang;
mod rewrite;
mod sources;
mod syntax;
mod target;
pub mod torch;
mod write;

use std::path::PathBuf;

pub use detect::{Context, scan_text, scan_text_in};
pub use diff::unified_diff;
pub use finding::{Finding, Kind, describe};
pub use lang::Language;
pub use rewrite::{Edit, FilePlan, Manual, apply, plan};
pub use sources::{MAX_FILE_BYTES, Origin, SourceFile, read};
pub use target::{Forced, Request, Target};
pub use write::{open_root, replace_file};

/// Every way this crate refuses input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a source tree, an sdist (.tar.gz, .zip) or a build file cudapkgs reads (CMakeLists.txt, *.cmake, *.py, Makefile, meson.build, Bazel files, *.sh, Dockerfile, pyproject.toml)",
        path.display()
    )]
    NotSource { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Archive { path: PathBuf, message: String },
    #[error("{} is larger than {limit} bytes, more than a build file", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{} is {kind}, not a file: it is not rewritten", path.display())]
    NotRegular { path: PathBuf, kind: String },
    #[error("{}: {message}", path.display())]
    Torch { path: PathBuf, message: String },
}

/// The findings of one build file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileScan {
    pub path: PathBuf,
    pub language: Language,
    pub findings: Vec<Finding>,
}

/// Scans build files; files without findings are left out.
pub fn scan(files: &[SourceFile]) -> Vec<FileScan> {
    let context = Context::of(files);
    files
        .iter()
        .filter_map(|file| {
            let findings = scan_text_in(&file.text, file.language, &context);
            (!findings.is_empty()).then(|| FileScan {
                path: file.path.clone(),
                language: file.language,
                findings,
            })
        })
        .collect()
}
