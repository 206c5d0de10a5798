//! Headless Chromium (Debian's `chromium`) loading a page the tests wrote: the DOM once
//! scripts ran, and the console messages the page caused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Chromium, or `None` outside CI without it (said on stderr); under CI its absence
/// fails the test (scripts/test.sh installs Debian's chromium).
pub(crate) fn chromium() -> Option<PathBuf> {
    super::tool("chromium")
}

/// Loads `page` in headless Chromium and returns the DOM once scripts ran, and the
/// console messages the page caused (Chromium logs each as `…:CONSOLE…`).
pub(crate) fn load(browser: &Path, page: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().expect("temp");
    let mut command = Command::new(browser);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    command.arg(format!("--user-data-dir={}", profile.path().display()));
    command
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("chromium starts");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium still ran after 120 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (dom, log) = (
        stdout.join().expect("stdout"),
        stderr.join().expect("stderr"),
    );
    assert!(status.success(), "chromium failed: {log}");
    let console = log
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (dom, console)
}
