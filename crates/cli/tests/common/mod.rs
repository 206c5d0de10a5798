//! Helpers shared by the end-to-end tests: the fixtures and running the binary.
#![allow(dead_code, reason = "each test binary uses some of these helpers")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A file of the nvcc-built fixture set.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cuda/out")
        .join(name)
}

/// Runs cudapkgs with an empty environment; returns the exit code, stdout and stderr.
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cudapkgs"))
        .args(args)
        .env_clear()
        .output()
        .expect("cudapkgs runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

/// A path as a command-line argument.
pub(crate) fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
