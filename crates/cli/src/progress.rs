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
    shown: Instant,
}

impl ProgressLine {
    pub fn new(output: Output) -> ProgressLine {
        ProgressLine {
            state: Mutex::new(ProgressState {
                files: HashMap::new(),
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
        state.files.insert(request.url.clone(), (done, total));
        if state.shown.elapsed() < Duration::from_millis(200) {
            return;
        }
        state.shown = Instant::now();
        let done: u64 = state.files.values().map(|(d, _)| d).sum();
        let total: u64 = state.files.values().filter_map(|(_, t)| *t).sum();
        eprint!(
            "\r  downloading {} file(s): {} of {}   ",
            state.files.len(),
            units::bytes(done),
            units::bytes(total)
        );
    }

    pub fn finish(&self) {
        if self.enabled
            && !self
                .state
                .lock()
                .expect("no panics while held")
                .files
                .is_empty()
        {
            eprintln!();
        }
    }
}
