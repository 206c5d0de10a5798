//! A running `cudapkgs serve` on a free loopback port, stopped when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

pub(crate) struct Serve {
    pub(crate) child: Child,
    /// The URL it printed on its first line.
    pub(crate) url: String,
}

impl Serve {
    /// `cudapkgs serve --listen 127.0.0.1:0 ARGS` in `folder`, with only `vars` in its
    /// environment; the test fails when it prints no URL.
    pub(crate) fn spawn(folder: &Path, args: &[&str], vars: &[(&str, &str)]) -> Serve {
        let mut child = super::cudapkgs()
            .inherit_env()
            .command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .envs(vars.iter().copied())
            .current_dir(folder)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cudapkgs serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the URL");
        if line.trim().is_empty() {
            let mut stderr = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr);
            panic!("cudapkgs serve did not start: {stderr}");
        }
        Serve {
            child,
            url: line.trim().to_owned(),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
