//! Helpers shared by the end-to-end tests: the fixtures and running the binary. What
//! every crate's tests share (running a command, required tools, the loopback server,
//! the NVIDIA-layout mirror) is in `cudapkgs-testkit`.
#![allow(dead_code, reason = "each test module uses some of these helpers")]

pub(crate) mod chromium;
pub(crate) mod nix;
pub(crate) mod tar;

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) use cudapkgs_testkit::mirror::{mirror, mirror_with_cublas};
pub(crate) use cudapkgs_testkit::{Fault, Run, Server, TestCommand, repo, require_tool as tool};

/// The `cudapkgs` binary under test, with an empty environment.
pub(crate) fn cudapkgs() -> TestCommand {
    cudapkgs_testkit::cudapkgs!()
}

/// A file of the nvcc-built fixture set.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cuda/out")
        .join(name)
}

/// Runs cudapkgs with an empty environment; returns the exit code, stdout and stderr.
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    cudapkgs().args(args).run().into_parts()
}

/// Runs cudapkgs in `folder` with an empty environment, as `run` does.
pub(crate) fn run_in(folder: &Path, args: &[&str]) -> (i32, String, String) {
    cudapkgs().args(args).current_dir(folder).run().into_parts()
}

/// Runs cudapkgs with only `vars` in its environment, and fails the test when it has
/// not finished within `limit` (it is killed first): for inputs that used to hang.
pub(crate) fn run_within(
    limit: std::time::Duration,
    vars: &[(&str, &str)],
    args: &[&str],
) -> (i32, String, String) {
    cudapkgs()
        .args(args)
        .envs(vars.iter().copied())
        .timeout(limit)
        .run()
        .into_parts()
}

/// The store paths of a `cudapkgs --json closure` report, in its order.
pub(crate) fn closure_paths(closure: &serde_json::Value) -> Vec<&str> {
    closure["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p["path"].as_str().expect("path"))
        .collect()
}

/// A path as a command-line argument.
pub(crate) fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `--source nvidia --cuda CUDA --base-url BASE --cache CACHE` and then `rest`.
pub(crate) fn nvidia_args(base: &str, cuda: &str, cache: &Path, rest: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--source",
        "nvidia",
        "--cuda",
        cuda,
        "--base-url",
        base,
        "--cache",
        s(cache),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(rest.iter().map(|a| (*a).to_owned()));
    args
}

/// A file of NVIDIA's packages as `scripts/install-nvidia-tools.sh` installs them; outside
/// CI, `None` when they are not installed (said on stderr); under CI its absence fails.
pub(crate) fn nvidia_file(relative: &str) -> Option<PathBuf> {
    let path = repo().join(".tools/nvidia").join(relative);
    cudapkgs_testkit::require_file(&path, "run scripts/install-nvidia-tools.sh")
}

/// Compiles `code` (C) written to `source` in `folder` with gcc and `args`, for small
/// real ELF files; the test fails if gcc does.
pub(crate) fn compile(gcc: &Path, folder: &Path, source: &str, code: &str, args: &[&str]) {
    std::fs::write(folder.join(source), code).expect("write the source");
    let built = Command::new(gcc)
        .current_dir(folder)
        .arg(source)
        .args(args)
        .status()
        .expect("gcc runs");
    assert!(built.success(), "gcc {source} {args:?}");
}

/// gcc, or `None` outside CI without it (said on stderr); under CI its absence fails.
pub(crate) fn gcc() -> Option<PathBuf> {
    tool("gcc")
}
