//! What the workspace's tests share (a dev-dependency only, never published):
//!
//! - [`TestCommand`] (and the [`cudapkgs!`] macro): runs a binary with a clean
//!   environment and gives its exit code, stdout and stderr as a [`Run`];
//! - [`require_tool`], [`require_file`] and [`require`]: what a test needs from the
//!   machine. Under `CI=true` a missing one fails the test; otherwise the test says
//!   `SKIPPED: needs …` on stderr and returns early;
//! - [`Server`]: a loopback HTTP/1.1 server over a folder and in-memory files, with
//!   `Range`, `HEAD`, a request log and faults to inject;
//! - [`mirror`]: NVIDIA's redistributable layout built from real PyPI wheels;
//! - [`ustar`]: tar streams written byte by byte, hostile ones included;
//! - [`nvrtc_ptx`] and [`python_prints`]: a library loaded through Python's ctypes,
//!   proof that it still works;
//! - [`make_fifo`] and [`Noise`]: a special file, and incompressible bytes.

mod command;
pub mod mirror;
mod python;
mod server;
pub mod ustar;

use std::path::{Path, PathBuf};

pub use command::{Run, TestCommand};
pub use python::{nvrtc_ptx, python_prints};
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

/// Fails the test, with the program's stderr, when `output` is not of a success.
#[track_caller]
pub fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every entry under `root` with its contents (folders empty, links by target), sorted:
/// to prove that a folder was left as it was.
pub fn tree_snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            let kind = path.symlink_metadata().expect("meta").file_type();
            if kind.is_dir() {
                found.push((path.clone(), Vec::new()));
                pending.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).expect("link");
                found.push((path, target.into_os_string().into_encoded_bytes()));
            } else {
                found.push((path.clone(), std::fs::read(&path).expect("read")));
            }
        }
    }
    found.sort();
    found
}

/// Makes a FIFO at `path`, for inputs that must be refused before they are read.
pub fn make_fifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .expect("mkfifo");
}

/// Pseudo-random bytes (xorshift64 from a fixed seed): the same on every run, and next
/// to incompressible.
#[derive(Debug)]
pub struct Noise {
    state: u64,
}

impl Noise {
    pub fn new() -> Noise {
        Noise {
            state: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl Default for Noise {
    fn default() -> Noise {
        Noise::new()
    }
}

impl Iterator for Noise {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        Some(self.state.to_le_bytes()[0])
    }
}
