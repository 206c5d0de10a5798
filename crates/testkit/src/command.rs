//! Running a binary under test: a builder for its arguments, environment, working
//! folder, stdin and time limit, and what it left.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A command to run, with an empty environment unless [`TestCommand::inherit_env`]
/// is asked for.
#[derive(Debug, Clone)]
pub struct TestCommand {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    inherit_env: bool,
    dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    limit: Option<Duration>,
}

/// What a finished command left: its exit code and its output (UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl TestCommand {
    pub fn new(program: impl AsRef<Path>) -> TestCommand {
        TestCommand {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            inherit_env: false,
            dir: None,
            stdin: None,
            limit: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> TestCommand {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> TestCommand {
        self.env
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> TestCommand
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (name, value) in vars {
            self = self.env(name, value);
        }
        self
    }

    /// Keeps the test's own environment (with [`TestCommand::env`] on top).
    pub fn inherit_env(mut self) -> TestCommand {
        self.inherit_env = true;
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> TestCommand {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// What the command reads on stdin (otherwise nothing: stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> TestCommand {
        self.stdin = Some(bytes.into());
        self
    }

    /// Fails the test when the command has not finished within `limit` (it is killed
    /// first): for inputs that used to hang.
    pub fn timeout(mut self, limit: Duration) -> TestCommand {
        self.limit = Some(limit);
        self
    }

    /// The [`Command`] as configured, for a test that spawns and drives it itself.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        if !self.inherit_env {
            command.env_clear();
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs the command to its end; the test fails when it cannot start, is killed by
    /// a signal, runs past its time limit or writes what is not UTF-8.
    pub fn run(&self) -> Run {
        let mut child = self
            .command()
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs: {e}", self.program.display()));
        let feed = child.stdin.take().map(|mut pipe| {
            let bytes = self.stdin.clone().unwrap_or_default();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            })
        });
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if let Some(limit) = self.limit
                && started.elapsed() > limit
            {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{self} still ran after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(feed) = feed {
            let _ = feed.join();
        }
        let text = |bytes: Vec<u8>, which: &str| {
            String::from_utf8(bytes).unwrap_or_else(|_| panic!("{self}: {which} is not UTF-8"))
        };
        Run {
            code: status
                .code()
                .unwrap_or_else(|| panic!("{self} ended without an exit code: {status}")),
            stdout: text(stdout.join().expect("stdout"), "stdout"),
            stderr: text(stderr.join().expect("stderr"), "stderr"),
        }
    }

    /// Runs the command and fails the test unless it exits 0.
    #[track_caller]
    pub fn success(&self) -> Run {
        let run = self.run();
        run.assert_code(0, &self.to_string());
        run
    }

    /// Runs the command and fails the test unless it exits `code`.
    #[track_caller]
    pub fn code(&self, code: i32) -> Run {
        let run = self.run();
        run.assert_code(code, &self.to_string());
        run
    }
}

impl std::fmt::Display for TestCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.program.display())?;
        for arg in &self.args {
            write!(f, " {}", arg.to_string_lossy())?;
        }
        Ok(())
    }
}

impl Run {
    /// Stdout as JSON; the test fails when it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }

    /// The exit code, stdout and stderr, as the older helpers gave them.
    pub fn into_parts(self) -> (i32, String, String) {
        (self.code, self.stdout, self.stderr)
    }

    /// Fails the test, showing stderr, unless stderr holds `text`.
    #[track_caller]
    pub fn assert_stderr_has(&self, text: &str) {
        assert!(self.stderr.contains(text), "{}", self.stderr);
    }

    /// Fails the test unless the command was refused (exit 2) saying `why` on stderr.
    #[track_caller]
    pub fn assert_refused(&self, why: &str) {
        assert_eq!(self.code, 2, "{}", self.stderr);
        self.assert_stderr_has(why);
    }

    /// Fails the test, showing stdout, unless stdout holds `text`.
    #[track_caller]
    pub fn assert_stdout_has(&self, text: &str) {
        assert!(self.stdout.contains(text), "{}", self.stdout);
    }

    /// Fails the test (naming `what` ran) unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(
            self.code, code,
            "{what} exited {} (expected {code})\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
    }
}
