//! What the libraries' tasks tell, drawn on standard error: a bar per download with its
//! size, rate and time left, a spinner per phase with its count; nothing off a terminal,
//! with `--quiet` or with `--json`. Every task is also recorded, for the phase times `-v`
//! prints.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use cudapkgs_report::{Phase, Recorder, Reporter, TaskId, Unit};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::Output;
use crate::units;

/// The reporter the commands hand to the libraries.
pub struct Bars {
    drawn: MultiProgress,
    shown: Mutex<HashMap<TaskId, ProgressBar>>,
    record: Recorder,
    /// Where the downloads so far began: the summary counts from it.
    since: Mutex<usize>,
    enabled: bool,
}

impl Bars {
    pub fn new(output: Output) -> Bars {
        let enabled = !output.quiet && !output.json && std::io::stderr().is_terminal();
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            drawn: MultiProgress::with_draw_target(target),
            shown: Mutex::new(HashMap::new()),
            record: Recorder::default(),
            since: Mutex::new(0),
            enabled,
        }
    }

    /// Ends a round of downloads with one line, once something was downloaded:
    /// `  downloaded 3 files (1.2 GiB) in 41.0 s`.
    pub fn finish(&self) {
        let tasks = self.record.tasks();
        let mut since = self.since.lock().expect("no panics while held");
        let downloads: Vec<_> = tasks[*since..]
            .iter()
            .filter(|task| task.phase == Phase::Download)
            .collect();
        *since = tasks.len();
        if !self.enabled || downloads.is_empty() {
            return;
        }
        let bytes: u64 = downloads.iter().map(|task| task.done).sum();
        let took = downloads
            .iter()
            .map(|task| task.took)
            .max()
            .unwrap_or_default();
        let _ = self.drawn.println(format!(
            "  downloaded {} ({}) in {:.1} s",
            crate::render::count(downloads.len(), "file", "files"),
            units::bytes(bytes),
            took.as_secs_f64()
        ));
    }

    /// The time each phase had work running, for `-v`: `unpack 1.2 s, split 0.3 s`.
    pub fn phase_times(&self) -> String {
        self.record
            .phase_times()
            .iter()
            .map(|(phase, took)| format!("{} {:.1} s", phase.name(), took.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What a spinner over the trees of `paths` is labelled: `lib` or `lib and 2 more`.
pub fn label_of(paths: &[std::path::PathBuf]) -> String {
    let first = paths.first().map(|path| path.display().to_string());
    match (first, paths.len()) {
        (None, _) => String::new(),
        (Some(first), 1) => first,
        (Some(first), n) => format!("{first} and {} more", n - 1),
    }
}

/// How a task of `phase` is drawn: downloads as bars of bytes, other phases as spinners
/// with their count when they have one.
fn style(phase: Phase, total: Option<u64>) -> ProgressStyle {
    let unit = match phase.unit() {
        Unit::Files => "files",
        Unit::Outputs => "outputs",
        Unit::Paths => "paths",
        Unit::Bytes | Unit::None => "",
    };
    let template = match (phase.unit(), total) {
        (Unit::Bytes, Some(_)) => "  {prefix} {msg:32!} [{bar:24}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}, {eta} left".to_owned(),
        (Unit::Bytes, None) => "  {prefix} {msg:32!} {binary_bytes} {binary_bytes_per_sec}".to_owned(),
        (Unit::None, _) => "{spinner} {prefix} {msg:40!} {elapsed}".to_owned(),
        (_, Some(_)) => format!("{{spinner}} {{prefix}} {{msg:40!}} {{pos}}/{{len}} {unit} {{elapsed}}"),
        (_, None) => format!("{{spinner}} {{prefix}} {{msg:40!}} {{pos}} {unit} {{elapsed}}"),
    };
    ProgressStyle::with_template(&template)
        .expect("the templates are valid")
        .progress_chars("=> ")
}

impl Reporter for Bars {
    fn started(&self, id: TaskId, phase: Phase, label: &str, total: Option<u64>) {
        self.record.started(id, phase, label, total);
        if !self.enabled {
            return;
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        }
        .with_style(style(phase, total))
        .with_prefix(phase.doing())
        .with_message(label.to_owned());
        let bar = self.drawn.add(bar);
        // Drawn at once: a task that ends within the first tick is still seen.
        bar.tick();
        // A phase may block for seconds between counts (unpacking one archive).
        bar.enable_steady_tick(Duration::from_millis(120));
        self.shown
            .lock()
            .expect("no panics while held")
            .insert(id, bar);
    }

    fn progressed(&self, id: TaskId, done: u64) {
        self.record.progressed(id, done);
        if let Some(bar) = self.shown.lock().expect("no panics while held").get(&id) {
            bar.set_position(done);
        }
    }

    fn finished(&self, id: TaskId) {
        self.record.finished(id);
        let bar = self.shown.lock().expect("no panics while held").remove(&id);
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.drawn.remove(&bar);
        }
    }
}
