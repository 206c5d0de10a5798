//! Helpers shared by the end-to-end tests: the fixtures and running the binary. What
//! every crate's tests share (running a command, required tools, the loopback server,
//! the NVIDIA-layout mirror) is in `cudapkgs-testkit`.
#![allow(dead_code, reason = "each test module uses some of these helpers")]

pub(crate) mod chromium;
pub(crate) mod nix;
pub(crate) mod schema;
pub(crate) mod serve;
pub(crate) mod tar;

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) use cudapkgs_testkit::mirror::{mirror, mirror_with_cublas};
pub(crate) use cudapkgs_testkit::{Fault, Run, Server, TestCommand, repo, require_tool as tool};

/// The `cudapkgs` binary under test, with an empty environment.
pub(crate) fn cudapkgs() -> TestCommand {
    cudapkgs_testkit::cudapkgs!()
}

/// The loopback server over the NVIDIA-layout mirror (`None` as `mirror` says).
pub(crate) fn served_mirror() -> Option<Server> {
    mirror().map(|folder| Server::serve_dir(&folder))
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

/// Runs cudapkgs with only `vars` in its environment, as `run` does.
pub(crate) fn run_with(vars: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    cudapkgs()
        .args(args)
        .envs(vars.iter().copied())
        .run()
        .into_parts()
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

/// A store of a test's own: `DIR/store` and its state `DIR/state`.
pub(crate) struct PrivateStore {
    pub(crate) store: PathBuf,
    pub(crate) state: PathBuf,
}

impl PrivateStore {
    pub(crate) fn under(dir: &Path) -> PrivateStore {
        PrivateStore {
            store: dir.join("store"),
            state: dir.join("state"),
        }
    }

    /// `--store-dir STORE --state-dir STATE`.
    pub(crate) fn args(&self) -> [&str; 4] {
        store_args(&self.store, &self.state)
    }

    /// `cudapkgs --json ARGS` on this store.
    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        run_on_store(&self.store, &self.state, &all)
    }

    /// `store add PACKAGE`, which must succeed; the store path it added.
    pub(crate) fn add(&self, package: &Path) -> String {
        let (code, stdout, stderr) = self.run(&["store", "add", s(package)]);
        assert_eq!(code, 0, "{stderr}");
        let added: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        added["path"].as_str().expect("path").to_owned()
    }
}

/// `--store-dir STORE --state-dir STATE`: the options naming a store of a test's own.
pub(crate) fn store_args<'a>(store: &'a Path, state: &'a Path) -> [&'a str; 4] {
    ["--store-dir", s(store), "--state-dir", s(state)]
}

/// `--store-dir /nix/store --root ROOT`: a store under `root` in Nix's own folder, as
/// machines that share a cache have.
pub(crate) fn rooted_store_args(root: &Path) -> [&str; 4] {
    ["--store-dir", "/nix/store", "--root", s(root)]
}

/// `cudapkgs --json closure PATH` of the store under `root` (see `rooted_store_args`),
/// which must succeed; its report.
pub(crate) fn rooted_closure(root: &Path, path: &str) -> serde_json::Value {
    let mut args = vec!["--json", "closure", path];
    args.extend(rooted_store_args(root));
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("json")
}

/// `cudapkgs ARGS --store-dir STORE --state-dir STATE`, as `run` does.
pub(crate) fn run_on_store(store: &Path, state: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = args.to_vec();
    all.extend(store_args(store, state));
    run(&all)
}

/// `cudapkgs --json build INPUT EXTRA…` into `DIR/store`, with its state in `DIR/state`
/// and its download cache in `DIR/cache`; it must succeed. Its JSON report.
pub(crate) fn build_json(dir: &Path, input: &str, extra: &[&str]) -> serde_json::Value {
    let (store, state, cache) = (dir.join("store"), dir.join("state"), dir.join("cache"));
    let mut args = vec!["--json", "build", input, "--cache", s(&cache)];
    args.extend(store_args(&store, &state));
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    schema::assert_fits("build", &stdout);
    serde_json::from_str(&stdout).expect("json")
}

/// Runs cudapkgs in `dir`, which is also its HOME, with only `env` besides.
pub(crate) fn run_at_home(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    cudapkgs()
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .envs(env.iter().copied())
        .run()
}

/// A copy at `at` of the multi-architecture fixture that needs no CUDA runtime (its
/// `libcudart.so.13` replaced by `libm.so.6`), so that only its device code counts.
pub(crate) fn multiarch_without_runtime(at: &Path) {
    std::fs::copy(fixture("multiarch.so"), at).expect("copy");
    let (code, _, stderr) = run(&[
        "patch",
        "--replace-needed",
        "libcudart.so.13",
        "libm.so.6",
        "--set-soname",
        "libmultiarch.so",
        s(at),
    ]);
    assert_eq!(code, 0, "{stderr}");
}

/// `--index-url INDEX --cache CACHE --system linux-x86_64`: wheels from the index at
/// `index`, for x86-64 Linux whatever the host.
pub(crate) fn index_args<'a>(index: &'a str, cache: &'a Path) -> [&'a str; 6] {
    [
        "--index-url",
        index,
        "--cache",
        s(cache),
        "--system",
        "linux-x86_64",
    ]
}

/// `-v build --dry-run --source nvidia --base-url URL --cache CACHE --system
/// linux-x86_64`: the plan from the mirror at `url`, for x86-64 Linux whatever the host.
pub(crate) fn dry_run_args<'a>(url: &'a str, cache: &'a Path) -> Vec<&'a str> {
    vec![
        "-v",
        "build",
        "--dry-run",
        "--source",
        "nvidia",
        "--base-url",
        url,
        "--cache",
        s(cache),
        "--system",
        "linux-x86_64",
    ]
}

/// A temporary folder readable by everyone and written by its owner only, as a shared
/// or multi-user store's folder is.
pub(crate) fn world_readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    dir
}

/// Fails the test unless `code` is 2 (a refusal) and `stderr` says `why`.
#[track_caller]
pub(crate) fn assert_refused(code: i32, stderr: &str, why: &str) {
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
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
