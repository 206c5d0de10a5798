//! Helpers shared by the end-to-end tests: the fixtures and running the binary.
#![allow(dead_code, reason = "each test binary uses some of these helpers")]

pub(crate) mod chromium;
pub(crate) mod tar;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A file of the nvcc-built fixture set.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cuda/out")
        .join(name)
}

/// Runs cudapkgs with an empty environment; returns the exit code, stdout and stderr.
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    run_in(Path::new("."), args)
}

/// Runs cudapkgs in `folder` with an empty environment, as `run` does.
pub(crate) fn run_in(folder: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cudapkgs"))
        .args(args)
        .current_dir(folder)
        .env_clear()
        .output()
        .expect("cudapkgs runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

/// Runs cudapkgs with only `vars` in its environment, and fails the test when it has
/// not finished within `limit` (it is killed first): for inputs that used to hang.
pub(crate) fn run_within(
    limit: std::time::Duration,
    vars: &[(&str, &str)],
    args: &[&str],
) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cudapkgs"))
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cudapkgs runs");
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cudapkgs {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (
        status.code().expect("exit code"),
        stdout.join().expect("stdout"),
        stderr.join().expect("stderr"),
    )
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

/// A program from `PATH` (readelf, gcc, patchelf), or `None` outside CI when it is not
/// installed; in CI (`CI` set) a missing one fails the test.
pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|folder| folder.join(name))
            .find(|path| path.is_file())
    });
    assert!(
        found.is_some() || std::env::var_os("CI").is_none(),
        "{name} is missing: CI must install it"
    );
    found
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The mirror (built once, shared by the tests), or `None` without the wheels outside CI.
pub(crate) fn mirror() -> Option<PathBuf> {
    mirror_at("target/redist-mirror", &[])
}

/// The mirror with cuBLAS too (600 MB more, in a folder of its own).
pub(crate) fn mirror_with_cublas() -> Option<PathBuf> {
    mirror_at("target/redist-mirror-cublas", &["--with-cublas"])
}

fn mirror_at(folder: &str, extra: &[&str]) -> Option<PathBuf> {
    let wheels = repo().join(".tools/nvidia/wheels");
    let have = wheels.is_dir();
    assert!(
        have || std::env::var_os("CI").is_none(),
        "{} is missing: run scripts/install-nvidia-tools.sh",
        wheels.display()
    );
    if !have {
        return None;
    }
    let out = repo().join(folder);
    let status = Command::new("python3")
        .arg(repo().join("scripts/redist-mirror.py"))
        .args(["--wheels", s(&wheels), "--out", s(&out)])
        .args(extra)
        .stdout(Stdio::null())
        .status()
        .expect("python3");
    assert!(status.success(), "redist-mirror.py failed");
    Some(out)
}

/// A loopback HTTP server over `root`; killed when dropped.
pub(crate) struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    pub(crate) fn start(root: &Path, log: &Path, break_first: Option<u64>) -> Server {
        let mut command = Command::new("python3");
        command.arg(repo().join("scripts/serve-mirror.py")).args([
            "--root",
            s(root),
            "--log",
            s(log),
        ]);
        if let Some(bytes) = break_first {
            command.args(["--break-first", &bytes.to_string()]);
        }
        let mut child = command.stdout(Stdio::piped()).spawn().expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let port = line.trim().parse().expect("a port number");
        Server {
            child,
            port,
            log: log.to_owned(),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests so far: `GET <path> <range or ->`.
    pub(crate) fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
/// CI, `None` when they are not installed, said on stderr.
pub(crate) fn nvidia_file(relative: &str) -> Option<PathBuf> {
    let path = repo().join(".tools/nvidia").join(relative);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: CI must run scripts/install-nvidia-tools.sh first",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (run scripts/install-nvidia-tools.sh)",
        path.display()
    );
    None
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
    let found = tool("gcc");
    if found.is_none() {
        eprintln!("skipped: gcc is missing");
    }
    found
}
