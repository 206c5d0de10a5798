//! A progress line on standard error while downloads run.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cudapkgs_redist::fetch::Request;

use crate::output::Output;
use crate::units;

/// A progress line on standard error while downloads run (only on a terminal).
pub struct ProgressLine {
    state: Mutex<ProgressState>,
    enabled: bool,
}

struct ProgressState {
    /// Bytes so far and total, per URL.
    files: HashMap<String, (u64, Option<u64>)>,
    /// The file most recently reported on, by name.
    current: String,
    started: Instant,
    shown: Instant,
}

impl ProgressLine {
    pub fn new(output: Output) -> ProgressLine {
        ProgressLine {
            state: Mutex::new(ProgressState {
                files: HashMap::new(),
                current: String::new(),
                started: Instant::now(),
                shown: Instant::now(),
            }),
            enabled: !output.quiet && !output.json && std::io::stderr().is_terminal(),
        }
    }

    pub fn update(&self, request: &Request, done: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().expect("no panics while held");
        if state.files.is_empty() {
            state.started = Instant::now();
        }
        state.files.insert(request.url.clone(), (done, total));
        request
            .url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .clone_into(&mut state.current);
        if state.shown.elapsed() < Duration::from_millis(200) {
            return;
        }
        state.shown = Instant::now();
        eprint!("\r{}\x1b[K", state.line());
    }

    /// Ends the line with the whole count, once something was downloaded.
    pub fn finish(&self) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().expect("no panics while held");
        if state.files.is_empty() {
            return;
        }
        let done: u64 = state.files.values().map(|(done, _)| done).sum();
        eprintln!(
            "\r  downloaded {} ({}) in {:.1} s\x1b[K",
            crate::render::count(state.files.len(), "file", "files"),
            units::bytes(done),
            state.started.elapsed().as_secs_f64()
        );
        state.files.clear();
    }
}

impl ProgressState {
    /// `  downloading libcublas-….whl and 2 more: 12.3 MiB of 40.1 MiB, 8.2 MiB/s, 3 s left`
    fn line(&self) -> String {
        let done: u64 = self.files.values().map(|(done, _)| done).sum();
        let total: u64 = self.files.values().filter_map(|(_, total)| *total).sum();
        let others = self.files.len().saturating_sub(1);
        let also = if others == 0 {
            String::new()
        } else {
            format!(" and {others} more")
        };
        let elapsed = self.started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss, reason = "display only")]
        let rate = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "display only, a non-negative rate"
        )]
        let rate_bytes = rate as u64;
        #[allow(clippy::cast_precision_loss, reason = "display only")]
        let left = if rate > 0.0 && total > done {
            format!(", {:.0} s left", (total - done) as f64 / rate)
        } else {
            String::new()
        };
        format!(
            "  downloading {}{also}: {} of {}, {}/s{left}",
            self.current,
            units::bytes(done),
            units::bytes(total),
            units::bytes(rate_bytes)
        )
    }
}
