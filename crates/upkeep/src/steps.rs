//! A job's steps, each a child `cudapkgs … --json` command: its own process (a crash or
//! an abort ends the step, not the run; memory goes back between jobs), its output in
//! the job's log, its result read from the JSON document every command prints.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::config::{CacheTarget, SetConfig};
use crate::error::Error;
use crate::job::Job;

/// Lines of a failing step's output kept in the results and the issue.
const TAIL_LINES: usize = 40;

/// How steps are run: the executable and the options every step shares.
#[derive(Debug, Clone)]
pub struct Toolbox {
    /// The `cudapkgs` executable (the binary passes its own).
    pub program: PathBuf,
    /// Options naming the store, given to every step (`--store-dir D`, …).
    pub store: Vec<String>,
    /// `build --cache`: the download cache.
    pub download_cache: Option<PathBuf>,
    /// The GPU check seam: the arguments of a command that checks the job's runtime
    /// outputs on this machine's GPU (the paths are appended), or `None` where no GPU is
    /// present or no such command is available. Its failure fails the job at
    /// `gpu-check`.
    pub gpu_check: Option<Vec<String>>,
}

/// One finished child command.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub report: Option<Value>,
    pub stderr: String,
}

impl Ran {
    /// The error document's message and hint, or how the process ended.
    pub fn problem(&self) -> String {
        if let Some(error) = self.report.as_ref().and_then(|r| r.get("error")) {
            let message = error["message"].as_str().unwrap_or("failed");
            return match error["hint"].as_str() {
                Some(hint) => format!("{message} (hint: {hint})"),
                None => message.to_owned(),
            };
        }
        let last = self
            .stderr
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("");
        match (self.code, self.signal) {
            (_, Some(signal)) => format!("killed by signal {signal}: {last}"),
            (Some(code), _) => format!("exited with status {code} without a report: {last}"),
            (None, None) => format!("ended without a status: {last}"),
        }
    }

    /// The last lines of what the command wrote on stderr.
    pub fn tail(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }
}

/// A package the build step built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPackage {
    pub package: String,
    pub version: String,
    pub outputs: BTreeMap<String, String>,
    pub architectures: BTreeSet<String>,
}

/// What the build step gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Build {
    Built(Vec<BuiltPackage>),
    /// Libraries that no package provides: (message line per library, library names).
    Unresolved(Vec<String>, Vec<String>),
    Failed(String),
}

impl Toolbox {
    /// Runs `cudapkgs --json ARGS STORE…`, writing the command and its stderr to `log`.
    pub fn run(&self, log: &mut File, log_path: &Path, args: &[String]) -> Result<Ran, Error> {
        let mut command = Command::new(&self.program);
        command.arg("--json").args(args).args(&self.store);
        let shown: Vec<String> = std::iter::once(self.program.display().to_string())
            .chain(std::iter::once("--json".to_owned()))
            .chain(args.iter().cloned())
            .chain(self.store.iter().cloned())
            .collect();
        let io = |e| Error::io(log_path, e);
        writeln!(log, "$ {}", shown.join(" ")).map_err(io)?;
        let output = command.output().map_err(|e| Error::io(&self.program, e))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        log.write_all(stderr.as_bytes()).map_err(io)?;
        writeln!(
            log,
            "[exit: {:?}; report: {} bytes]",
            output.status,
            stdout.len()
        )
        .map_err(io)?;
        log.write_all(stdout.as_bytes()).map_err(io)?;
        log.flush().map_err(io)?;
        Ok(Ran {
            code: output.status.code(),
            signal: output.status.signal(),
            report: serde_json::from_str(&stdout).ok(),
            stderr,
        })
    }

    /// The arguments of the build step.
    pub fn build_args(&self, job: &Job, set: &SetConfig) -> Vec<String> {
        let mut args: Vec<String> = ["build", &job.spec, "--source", set.source.as_str()]
            .iter()
            .map(|&a| a.to_owned())
            .collect();
        args.extend(["--cuda".to_owned(), job.cuda.clone()]);
        args.extend(["--system".to_owned(), job.system.clone()]);
        if !job.capabilities.is_empty() {
            args.extend(["--capabilities".to_owned(), job.capabilities.clone()]);
        }
        for (flag, value) in [
            ("--base-url", &set.base_url),
            ("--index-url", &set.index_url),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_owned(), value.clone()]);
            }
        }
        if let Some(cache) = &self.download_cache {
            args.extend(["--cache".to_owned(), cache.display().to_string()]);
        }
        args
    }
}

/// Reads the build step's report.
pub fn read_build(ran: &Ran) -> Build {
    match (ran.code, &ran.report) {
        (Some(0), Some(Value::Array(packages))) => Build::Built(
            packages
                .iter()
                .map(|p| BuiltPackage {
                    package: p["package"].as_str().unwrap_or_default().to_owned(),
                    version: p["version"].as_str().unwrap_or_default().to_owned(),
                    outputs: strings(&p["outputs"]),
                    architectures: p["architectures"]
                        .as_object()
                        .into_iter()
                        .flat_map(|by_output| by_output.values())
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                })
                .collect(),
        ),
        (Some(1), Some(report)) if report["unresolved"].is_array() => {
            let rows = report["unresolved"].as_array().expect("checked");
            let text = |row: &Value, key: &str| row[key].as_str().unwrap_or_default().to_owned();
            let lines = rows
                .iter()
                .map(|row| {
                    let offer = row["provider"].as_str().map_or_else(
                        || "no package of NVIDIA's releases is known to have it".to_owned(),
                        |p| format!("{p} provides it"),
                    );
                    format!(
                        "{}: {} needs {}, which no package of the set provides ({offer})",
                        text(row, "package"),
                        text(row, "file"),
                        text(row, "library")
                    )
                })
                .collect();
            let libraries = rows.iter().map(|row| text(row, "library")).collect();
            Build::Unresolved(lines, libraries)
        }
        _ => Build::Failed(ran.problem()),
    }
}

/// The violations of a check report, a line each.
pub fn read_check(ran: &Ran) -> Result<(), String> {
    match (ran.code, &ran.report) {
        (Some(0), Some(_)) => Ok(()),
        (Some(1), Some(report)) if report["violations"].is_array() => {
            let lines: Vec<String> = report["violations"]
                .as_array()
                .expect("checked")
                .iter()
                .map(|v| {
                    let text = |key: &str| v[key].as_str().unwrap_or_default();
                    let detail = if text("detail").is_empty() {
                        String::new()
                    } else {
                        format!(" `{}`", text("detail"))
                    };
                    format!(
                        "{}{detail}: {}/{}",
                        text("rule"),
                        text("path"),
                        text("file")
                    )
                })
                .collect();
            Err(lines.join("\n"))
        }
        _ => Err(ran.problem()),
    }
}

/// The closure size of a `closure` report.
pub fn read_closure(ran: &Ran) -> Result<u64, String> {
    match (
        ran.code,
        ran.report
            .as_ref()
            .and_then(|r| r["total_nar_size"].as_u64()),
    ) {
        (Some(0), Some(size)) => Ok(size),
        _ => Err(ran.problem()),
    }
}

/// Whether a step that reports nothing but success succeeded.
pub fn read_success(ran: &Ran) -> Result<(), String> {
    if ran.code == Some(0) {
        Ok(())
    } else {
        Err(ran.problem())
    }
}

/// The arguments of the push step.
pub fn push_args(cache: &CacheTarget, paths: &[String]) -> Vec<String> {
    let mut args = vec!["push".to_owned(), "--to".to_owned(), cache.to.clone()];
    if let Some(key) = &cache.secret_key_file {
        args.extend(["--secret-key-file".to_owned(), key.display().to_string()]);
    }
    if cache.private {
        args.push("--private".to_owned());
    }
    for package in &cache.redistributable {
        args.extend(["--redistributable".to_owned(), package.clone()]);
    }
    args.extend(paths.iter().cloned());
    args
}

fn strings(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ran(code: i32, report: Value) -> Ran {
        Ran {
            code: Some(code),
            signal: None,
            report: Some(report),
            stderr: "line 1\nline 2\n".to_owned(),
        }
    }

    #[test]
    fn build_reports_read_as_built_unresolved_or_failed() {
        let built = read_build(&ran(
            0,
            json!([{"package": "libfoo", "version": "1.0", "outputs": {"lib": "/s/a-libfoo-1.0-lib", "out": "/s/b-libfoo-1.0"},
                    "architectures": {"lib": ["sm_90", "compute_90"], "static": ["sm_80"]}}]),
        ));
        let Build::Built(packages) = built else {
            panic!("{built:?}")
        };
        assert_eq!(packages[0].outputs["lib"], "/s/a-libfoo-1.0-lib");
        assert_eq!(
            packages[0].architectures.iter().collect::<Vec<_>>(),
            ["compute_90", "sm_80", "sm_90"]
        );
        let unresolved = read_build(&ran(
            1,
            json!({"unresolved": [{"package": "libevil", "file": "lib/lib/libevil.so.1", "library": "libmissing.so.1", "provider": null}]}),
        ));
        assert_eq!(
            unresolved,
            Build::Unresolved(
                vec!["libevil: lib/lib/libevil.so.1 needs libmissing.so.1, which no package of the set provides (no package of NVIDIA's releases is known to have it)".to_owned()],
                vec!["libmissing.so.1".to_owned()]
            )
        );
        let failed = read_build(&ran(
            2,
            json!({"error": {"message": "no such release", "hint": "try 13"}}),
        ));
        assert_eq!(
            failed,
            Build::Failed("no such release (hint: try 13)".to_owned())
        );
        let killed = Ran {
            code: None,
            signal: Some(9),
            report: None,
            stderr: "unpacking\n".to_owned(),
        };
        assert_eq!(
            read_build(&killed),
            Build::Failed("killed by signal 9: unpacking".to_owned())
        );
    }

    #[test]
    fn check_and_closure_reports() {
        assert_eq!(read_check(&ran(0, json!({"violations": []}))), Ok(()));
        let violations = json!({"violations": [{"rule": "header", "path": "/s/x-foo", "file": "include/a.h", "detail": ""},
                                                {"rule": "denied", "path": "/s/y-magma", "file": "", "detail": "magma"}]});
        assert_eq!(
            read_check(&ran(1, violations)),
            Err("header: /s/x-foo/include/a.h\ndenied `magma`: /s/y-magma/".to_owned())
        );
        assert_eq!(read_closure(&ran(0, json!({"total_nar_size": 42}))), Ok(42));
        assert!(read_closure(&ran(2, json!({"error": {"message": "no store"}}))).is_err());
        assert_eq!(ran(1, json!({})).tail(), "line 1\nline 2");
    }
}
