//! What the workspace's tests share (a dev-dependency only, never published):
//!
//! - [`TestCommand`] (and the [`cudapkgs!`] macro): runs a binary with a clean
//!   environment and gives its exit code, stdout and stderr as a [`Run`];
//! - [`require_tool`], [`require_file`] and [`require`]: what a test needs from the
//!   machine. Under `CI=true` a missing one fails the test; otherwise the test says
//!   `SKIPPED: needs …` on stderr and returns early;
//! - [`Server`]: a loopback HTTP/1.1 server over a folder and in-memory files, with
//!   `Range`, `HEAD`, a request log and faults to inject;
//! - [`mirror`]: NVIDIA's redistributable layout built from real PyPI wheels.

mod command;
pub mod mirror;
mod server;

use std::path::{Path, PathBuf};

pub use command::{Run, TestCommand};
pub use server::{Fault, Rule, Server};

/// A [`TestCommand`] for the workspace's `cudapkgs` binary; usable in the binary's own
/// integration tests, where Cargo names it.
#[macro_export]
macro_rules! cudapkgs {
    () => {
        $crate::TestCommand::new(env!("CARGO_BIN_EXE_cudapkgs"))
    };
}

/// The workspace's root folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// Whether this is a CI run (`CI` set, and not to `false` or `0`): whatever a test
/// needs must then be there.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// `present`, or, when it is not: under CI a failed test naming `what`; otherwise a
/// `SKIPPED: needs WHAT` line on stderr. The caller returns early on `false`.
#[track_caller]
pub fn require(present: bool, what: &str) -> bool {
    if !present {
        assert!(
            !ci(),
            "{what} is missing: CI must provide it (see scripts/test.sh)"
        );
        eprintln!("SKIPPED: needs {what}");
    }
    present
}

/// A program from `PATH` (readelf, patchelf, nix-store, gcc, chromium, weed…), as
/// [`require`] treats a missing one.
#[track_caller]
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|folder| folder.join(name))
            .find(|path| path.is_file())
    });
    require(found.is_some(), name).then(|| found.expect("found"))
}

/// A file or folder that an install script puts in place (`how` says which), as
/// [`require`] treats a missing one.
#[track_caller]
pub fn require_file(path: &Path, how: &str) -> Option<PathBuf> {
    let what = format!("{} ({how})", path.display());
    require(path.exists(), &what).then(|| path.to_owned())
}
