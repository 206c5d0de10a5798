//! Progress of long work. The libraries start a [`Task`] for each piece of work that can
//! take seconds (a download, unpacking an archive, verifying a store) and tell it how far
//! it got; the caller decides what to show through its [`Reporter`]: bars on a terminal,
//! nothing in a pipe, a record in a test. The libraries never print.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The kind of work a task does; a reporter may group and time tasks by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// A file coming over the network; counts bytes.
    Download,
    /// An archive or wheel unpacked and fixed up; counts nothing.
    Unpack,
    /// An unpacked tree split into outputs and its files read; counts files.
    Split,
    /// Device code removed from files; counts files.
    Prune,
    /// Outputs' runpaths rewritten and outputs added to the store; counts outputs.
    Add,
    /// Store paths hashed again and compared with the database; counts paths.
    Verify,
    /// Files read for their device code; counts files.
    Inspect,
    /// Store paths pushed to a binary cache (or found there); counts paths.
    Push,
    /// Store paths copied from a binary cache (or found in the store); counts paths.
    Copy,
}

impl Phase {
    /// What `done` and `total` count for this phase.
    pub fn unit(self) -> Unit {
        match self {
            Phase::Download => Unit::Bytes,
            Phase::Unpack => Unit::None,
            Phase::Split | Phase::Prune | Phase::Inspect => Unit::Files,
            Phase::Add => Unit::Outputs,
            Phase::Verify | Phase::Push | Phase::Copy => Unit::Paths,
        }
    }

    /// The phase as a verb in the present continuous, for people.
    pub fn doing(self) -> &'static str {
        match self {
            Phase::Download => "downloading",
            Phase::Unpack => "unpacking",
            Phase::Split => "splitting",
            Phase::Prune => "pruning",
            Phase::Add => "patching and adding",
            Phase::Verify => "verifying",
            Phase::Inspect => "inspecting",
            Phase::Push => "pushing to",
            Phase::Copy => "copying from",
        }
    }

    /// The phase as a noun, for a list of times.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Download => "download",
            Phase::Unpack => "unpack",
            Phase::Split => "split",
            Phase::Prune => "prune",
            Phase::Add => "patch and add",
            Phase::Verify => "verify",
            Phase::Inspect => "inspect",
            Phase::Push => "push",
            Phase::Copy => "copy",
        }
    }
}

/// What a task's counts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Files,
    Outputs,
    Paths,
    /// The task has no count, only a start and an end.
    None,
}

/// A task's identity, unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

/// Receives what the libraries' tasks tell. Calls may come from several threads at once.
pub trait Reporter: Sync {
    /// `id` started: `label` names what it works on (a file, a package); `total` is how
    /// much there is to do, in the phase's unit, when known.
    fn started(&self, id: TaskId, phase: Phase, label: &str, total: Option<u64>);
    /// `id` has done `done` of its total so far (never less than before).
    fn progressed(&self, id: TaskId, done: u64);
    /// `id` ended, done or failed; nothing more is told of it.
    fn finished(&self, id: TaskId);
}

/// A reporter that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn started(&self, _: TaskId, _: Phase, _: &str, _: Option<u64>) {}
    fn progressed(&self, _: TaskId, _: u64) {}
    fn finished(&self, _: TaskId) {}
}

/// One piece of work being told to a reporter; ends when dropped, so a task that fails
/// with `?` ends too.
pub struct Task<'r> {
    reporter: &'r dyn Reporter,
    id: TaskId,
    done: AtomicU64,
}

impl std::fmt::Debug for Task<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'r> Task<'r> {
    /// Starts a task of `phase` on `label`, with `total` to do when known.
    pub fn start(
        reporter: &'r dyn Reporter,
        phase: Phase,
        label: &str,
        total: Option<u64>,
    ) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = TaskId(NEXT.fetch_add(1, Ordering::Relaxed));
        reporter.started(id, phase, label, total);
        Task {
            reporter,
            id,
            done: AtomicU64::new(0),
        }
    }

    /// `by` more of the total is done.
    pub fn advance(&self, by: u64) {
        let done = self.done.fetch_add(by, Ordering::Relaxed) + by;
        self.reporter.progressed(self.id, done);
    }

    /// `done` of the total is done; a count below the last one told is ignored.
    pub fn set(&self, done: u64) {
        let before = self.done.fetch_max(done, Ordering::Relaxed);
        if done > before {
            self.reporter.progressed(self.id, done);
        }
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        self.reporter.finished(self.id);
    }
}

/// What a [`Recorder`] saw of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub phase: Phase,
    pub label: String,
    pub total: Option<u64>,
    /// The last count told.
    pub done: u64,
    /// How many counts were told.
    pub updates: usize,
    pub finished: bool,
    /// From its start to its end (or to now, while it runs).
    pub took: Duration,
}

/// A reporter that keeps every task in the order they started: for a caller that wants
/// the times of the phases afterwards, and for tests.
#[derive(Debug, Default)]
pub struct Recorder {
    tasks: Mutex<Vec<(TaskId, Instant, Seen)>>,
}

impl Recorder {
    /// The tasks seen so far, in the order they started.
    pub fn tasks(&self) -> Vec<Seen> {
        let tasks = self.tasks.lock().expect("no panics while held");
        tasks
            .iter()
            .map(|(_, started, seen)| {
                let mut seen = seen.clone();
                if !seen.finished {
                    seen.took = started.elapsed();
                }
                seen
            })
            .collect()
    }

    /// The time each phase had a task running (overlapping tasks counted once), in the
    /// order of the phases.
    pub fn phase_times(&self) -> Vec<(Phase, Duration)> {
        let tasks = self.tasks.lock().expect("no panics while held");
        let mut spans: Vec<(Phase, Instant, Instant)> = tasks
            .iter()
            .map(|(_, started, seen)| {
                let ended = if seen.finished {
                    *started + seen.took
                } else {
                    Instant::now()
                };
                (seen.phase, *started, ended)
            })
            .collect();
        spans.sort_by_key(|&(phase, start, _)| (phase, start));
        let mut times: Vec<(Phase, Duration)> = Vec::new();
        let mut covered: Option<(Phase, Instant)> = None;
        for (phase, start, end) in spans {
            let from = match covered {
                Some((p, until)) if p == phase => start.max(until),
                _ => start,
            };
            let add = end.saturating_duration_since(from);
            match times.last_mut() {
                Some((p, total)) if *p == phase => *total += add,
                _ => times.push((phase, add)),
            }
            let until = match covered {
                Some((p, until)) if p == phase => until.max(end),
                _ => end,
            };
            covered = Some((phase, until));
        }
        times
    }

    fn with(&self, id: TaskId, change: impl FnOnce(&Instant, &mut Seen)) {
        let mut tasks = self.tasks.lock().expect("no panics while held");
        if let Some((_, started, seen)) = tasks.iter_mut().rev().find(|(task, ..)| *task == id) {
            change(started, seen);
        }
    }
}

impl Reporter for Recorder {
    fn started(&self, id: TaskId, phase: Phase, label: &str, total: Option<u64>) {
        let seen = Seen {
            phase,
            label: label.to_owned(),
            total,
            done: 0,
            updates: 0,
            finished: false,
            took: Duration::ZERO,
        };
        self.tasks
            .lock()
            .expect("no panics while held")
            .push((id, Instant::now(), seen));
    }

    fn progressed(&self, id: TaskId, done: u64) {
        self.with(id, |_, seen| {
            seen.done = done;
            seen.updates += 1;
        });
    }

    fn finished(&self, id: TaskId) {
        self.with(id, |started, seen| {
            seen.finished = true;
            seen.took = started.elapsed();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_tells_its_start_its_counts_and_its_end_once() {
        let recorder = Recorder::default();
        {
            let task = Task::start(&recorder, Phase::Verify, "store", Some(3));
            task.advance(1);
            task.advance(2);
            task.set(2);
        }
        let tasks = recorder.tasks();
        assert_eq!(tasks.len(), 1);
        let seen = &tasks[0];
        assert_eq!(seen.phase, Phase::Verify);
        assert_eq!(seen.label, "store");
        assert_eq!(seen.total, Some(3));
        assert_eq!(seen.done, 3, "a count below the last one is not told");
        assert_eq!(seen.updates, 2);
        assert!(seen.finished);
    }

    #[test]
    fn a_task_that_fails_with_a_question_mark_still_ends() {
        fn fails(reporter: &dyn Reporter) -> Result<(), &'static str> {
            let _task = Task::start(reporter, Phase::Unpack, "x.tar.xz", None);
            Err("broken archive")?;
            Ok(())
        }
        let recorder = Recorder::default();
        assert!(fails(&recorder).is_err());
        assert!(recorder.tasks()[0].finished);
    }

    #[test]
    fn tasks_of_threads_are_told_apart() {
        let recorder = Recorder::default();
        std::thread::scope(|scope| {
            for n in 0..8u64 {
                let recorder = &recorder;
                scope.spawn(move || {
                    let task = Task::start(recorder, Phase::Download, &format!("f{n}"), Some(n));
                    task.set(n);
                });
            }
        });
        let mut tasks = recorder.tasks();
        tasks.sort_by(|a, b| a.label.cmp(&b.label));
        for (n, seen) in tasks.iter().enumerate() {
            assert_eq!(seen.label, format!("f{n}"));
            assert_eq!(seen.done, seen.total.expect("given"));
            assert!(seen.finished);
        }
    }

    #[test]
    fn overlapping_tasks_of_a_phase_count_their_time_once() {
        let recorder = Recorder::default();
        let outer = Task::start(&recorder, Phase::Unpack, "a", None);
        std::thread::sleep(Duration::from_millis(30));
        let inner = Task::start(&recorder, Phase::Unpack, "b", None);
        std::thread::sleep(Duration::from_millis(30));
        drop(inner);
        drop(outer);
        let split = Task::start(&recorder, Phase::Split, "a", Some(1));
        std::thread::sleep(Duration::from_millis(20));
        drop(split);
        let times = recorder.phase_times();
        assert_eq!(times.len(), 2);
        let (unpack, split) = (times[0], times[1]);
        assert_eq!(unpack.0, Phase::Unpack);
        assert_eq!(split.0, Phase::Split);
        let tasks = recorder.tasks();
        // The union of [0, 60] and [30, 60] is the outer task's time, not their sum.
        assert_eq!(unpack.1, tasks[0].took.max(tasks[1].took));
        assert!(unpack.1 < tasks[0].took + tasks[1].took);
        assert_eq!(split.1, tasks[2].took);
    }
}
