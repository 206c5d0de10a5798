//! `gpu-check`: for the paths under test, on every local GPU, load each container the
//! driver would load and compare with the verdict, then run the smoke test of every
//! CUDA library found. GPU work runs in child processes (the `gpu-child` command of
//! the same executable) with an empty environment.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cudapkgs_caps::Capability;
use cudapkgs_fatbin::{
    FileReader, FileVerdict, Gpu, ScanOptions, file_verdict, holds_device_code, scan_with,
};
use cudapkgs_tree::{Outcome, Walk};
use serde::Serialize;

use crate::driver::{Device, DriverReport};
use crate::probe::{ContainerProbe, Disagreement, ProbeResult, compare};
use crate::smoke::{SmokeOutcome, SmokeTest, tests_for};

/// The command of the executable that runs the children.
pub const CHILD_COMMAND: &str = "gpu-child";

/// The environment of every child: nothing but this, so no `LD_LIBRARY_PATH` or
/// `CUDA_*` setting of the caller's shapes the result; the driver writes no JIT cache
/// under anyone's home, loads every function of a module when it loads the module (so
/// a kernel found is a kernel loaded), and NCCL reads no machine-wide configuration
/// (which can name a network plug-in from outside the paths under test).
const CHILD_ENVIRONMENT: [(&str, &str); 3] = [
    ("CUDA_CACHE_DISABLE", "1"),
    ("CUDA_MODULE_LOADING", "EAGER"),
    ("NCCL_CONF_FILE", "/dev/null"),
];

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// This executable, which runs the children.
    pub executable: PathBuf,
    /// The driver library the children load.
    pub driver: PathBuf,
    /// Files, folders and store paths (physical) under test.
    pub inputs: Vec<PathBuf>,
    /// Where the CUDA libraries the smoke tests map may come from: the inputs and, for
    /// store paths, their closures.
    pub allowed: Vec<PathBuf>,
    pub loads: bool,
    /// The smoke tests to run where their library is found; empty: none.
    pub smoke: Vec<SmokeTest>,
    /// Devices to check by ordinal; empty: all.
    pub devices: Vec<i32>,
    /// Children loading containers at once per GPU, and threads scanning files.
    pub jobs: usize,
    pub smoke_timeout: Duration,
}

/// A file the driver would load containers from, with the verdict per capability.
#[derive(Debug)]
struct PlannedFile {
    path: PathBuf,
    input: usize,
    /// `(offset, size, kernels)` of each container with kernels.
    containers: Vec<(u64, u64, Vec<String>)>,
    verdicts: Vec<(Capability, FileVerdict)>,
}

/// The result of the loads on one GPU.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct LoadsReport {
    pub files: usize,
    pub containers: usize,
    pub loaded: usize,
    /// Containers the driver would not load (another architecture's code, or failing).
    pub not_loaded: usize,
    pub kernels: usize,
    pub kernels_found: usize,
    /// Files none of whose containers loaded: the library fails on this GPU.
    pub failing_files: Vec<FailingFile>,
    /// Where the verdict and the driver differ (each one a bug in the verdict rules).
    pub disagreements: Vec<Disagreement>,
    /// Containers the probe could not judge: the load ended the child (a crash in the
    /// driver), the file could not be read, or the driver failed for a reason that is
    /// no answer about the image (out of memory, no JIT compiler).
    pub errors: Vec<String>,
    pub seconds: f64,
    pub loads_per_second: f64,
    /// The files whose loads took longest (seconds in the driver, all children
    /// together), at most five.
    pub slowest: Vec<(PathBuf, f64)>,
    /// Per input: (containers, loaded, problems).
    #[serde(skip)]
    pub by_input: Vec<(usize, usize, usize)>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FailingFile {
    pub file: PathBuf,
    pub kernels: usize,
    /// The first kernels, mangled.
    pub examples: Vec<String>,
    /// Why the driver loaded nothing (its error for the first container).
    pub error: String,
}

/// One smoke test's result.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SmokeReport {
    pub test: SmokeTest,
    pub library: PathBuf,
    #[serde(skip)]
    pub input: usize,
    #[serde(flatten)]
    pub outcome: SmokeOutcome,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DeviceReport {
    pub device: Device,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loads: Option<LoadsReport>,
    pub smoke: Vec<SmokeReport>,
}

impl DeviceReport {
    pub fn passed(&self) -> bool {
        self.loads.as_ref().is_none_or(|loads| {
            loads.failing_files.is_empty()
                && loads.disagreements.is_empty()
                && loads.errors.is_empty()
        }) && self.smoke.iter().all(|smoke| smoke.outcome.passed)
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    pub driver: DriverReport,
    pub devices: Vec<DeviceReport>,
    /// Files that could not be read or scanned.
    pub unreadable: Vec<(String, String)>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.unreadable.is_empty() && self.devices.iter().all(DeviceReport::passed)
    }
}

/// Runs the check on every requested device the driver reports.
pub fn gpu_check(request: &CheckRequest, driver: DriverReport) -> CheckReport {
    let devices: Vec<Device> = driver
        .devices
        .iter()
        .filter(|device| request.devices.is_empty() || request.devices.contains(&device.ordinal))
        .cloned()
        .collect();
    let capabilities: BTreeSet<Capability> = devices.iter().map(|d| d.capability).collect();
    let driver_cuda = Some(cudapkgs_caps::CudaVersion::new(
        u8::try_from(driver.cuda.major).unwrap_or(u8::MAX),
        u8::try_from(driver.cuda.minor).unwrap_or(u8::MAX),
    ));
    let (planned, unreadable) = if request.loads {
        plan(&request.inputs, &capabilities, driver_cuda, request.jobs)
    } else {
        (Vec::new(), Vec::new())
    };
    let libraries = smoke_libraries(&request.inputs, &request.allowed, &request.smoke);
    let reports = devices
        .into_iter()
        .map(|device| {
            let loads = request.loads.then(|| run_loads(request, &device, &planned));
            let smoke = libraries
                .iter()
                .map(|(test, library, input)| {
                    let started = Instant::now();
                    let outcome = spawn_smoke(request, &device.uuid, *test, library);
                    SmokeReport {
                        test: *test,
                        library: library.clone(),
                        input: *input,
                        outcome,
                        seconds: started.elapsed().as_secs_f64(),
                    }
                })
                .collect();
            DeviceReport {
                device,
                loads,
                smoke,
            }
        })
        .collect();
    CheckReport {
        driver,
        devices: reports,
        unreadable,
    }
}

/// Which input a file found by the walk belongs to.
fn input_of(inputs: &[PathBuf], file: &Path) -> usize {
    inputs
        .iter()
        .position(|input| file.starts_with(input))
        .unwrap_or(0)
}

/// Scans every file of the inputs and judges it for each capability.
fn plan(
    inputs: &[PathBuf],
    capabilities: &BTreeSet<Capability>,
    driver_cuda: Option<cudapkgs_caps::CudaVersion>,
    threads: usize,
) -> (Vec<PlannedFile>, Vec<(String, String)>) {
    let walk = Walk {
        wants: holds_device_code,
        zips: false,
    };
    let visited = cudapkgs_tree::visit(inputs, walk, threads.max(1), |source, input| {
        let reader = FileReader::new(input.file).map_err(|error| error.to_string())?;
        let scan = scan_with(input.bytes, &reader, ScanOptions { kernels: true })
            .map_err(|error| error.to_string())?;
        let path = PathBuf::from(&source.display);
        let verdicts: Vec<(Capability, FileVerdict)> = capabilities
            .iter()
            .map(|&capability| {
                let gpu = Gpu {
                    capability,
                    driver_cuda,
                };
                (capability, file_verdict(&scan, gpu))
            })
            .collect();
        let judged: BTreeSet<u64> = verdicts
            .first()
            .map(|(_, verdict)| verdict.containers.iter().map(|c| c.container).collect())
            .unwrap_or_default();
        let containers = scan
            .containers()
            .filter(|container| judged.contains(&container.offset))
            .map(|container| {
                let kernels = container.kernels().into_iter().map(str::to_owned).collect();
                (container.offset, container.size, kernels)
            })
            .collect();
        Ok(PlannedFile {
            input: input_of(inputs, &path),
            path,
            containers,
            verdicts,
        })
    });
    let mut planned = Vec::new();
    let mut unreadable = Vec::new();
    for file in visited {
        match file.outcome {
            Outcome::Done(found) if !found.containers.is_empty() => planned.push(found),
            Outcome::Done(_) | Outcome::NoBinaries => {}
            Outcome::Failed(message) => unreadable.push((file.source.display, message)),
        }
    }
    (planned, unreadable)
}

fn child(request: &CheckRequest, arguments: &[std::ffi::OsString]) -> std::io::Result<Child> {
    Command::new(&request.executable)
        .arg(CHILD_COMMAND)
        .args(arguments)
        .env_clear()
        .envs(CHILD_ENVIRONMENT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Reads a child's stderr while it runs (a full pipe would stop it), keeping the end.
fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    })
}

/// A child that loads containers one request at a time.
struct Loader {
    process: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: std::thread::JoinHandle<String>,
}

impl Loader {
    /// A child holding a context on the device, or why it could not get one.
    fn start(request: &CheckRequest, uuid: &str) -> Result<Self, String> {
        let arguments: Vec<std::ffi::OsString> = vec![
            "loads".into(),
            "--driver".into(),
            request.driver.clone().into_os_string(),
            "--uuid".into(),
            uuid.into(),
        ];
        let mut process = child(request, &arguments)
            .map_err(|error| format!("cannot start {}: {error}", request.executable.display()))?;
        let stderr = drain(process.stderr.take());
        let (Some(stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take()) else {
            return Err("no pipes to the child".to_owned());
        };
        let mut loader = Loader {
            process,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
        };
        let mut first = String::new();
        let _ = loader.stdout.read_line(&mut first);
        if first.trim() == crate::child::READY {
            Ok(loader)
        } else {
            Err(loader.finish())
        }
    }

    /// The child's answer, or `None` when it ended instead.
    fn load(&mut self, probe: &ContainerProbe) -> Option<ProbeResult> {
        let line = serde_json::to_string(probe).ok()?;
        writeln!(self.stdin, "{line}").ok()?;
        self.stdin.flush().ok()?;
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).ok()?;
        serde_json::from_str(&answer).ok()
    }

    /// Ends the child; why it ended, when it was not asked to.
    fn finish(self) -> String {
        let Loader {
            mut process,
            stdin,
            stderr,
            ..
        } = self;
        drop(stdin);
        let status = process.wait();
        let stderr = stderr.join().unwrap_or_default();
        match status {
            Ok(status) => format!("the loading process ended ({status}): {stderr}"),
            Err(error) => format!("the loading process was lost: {error}"),
        }
    }
}

/// Loads `probes` with `jobs` children, each taking the next container when it has
/// answered for the last (some take seconds: PTX compiled at load); a child that ends
/// on a container is replaced for the rest, and one that cannot start (no driver, a
/// GPU another process holds) stops the loads with its reason.
fn load_all(
    request: &CheckRequest,
    uuid: &str,
    probes: &[ContainerProbe],
    jobs: usize,
) -> Vec<Result<ProbeResult, String>> {
    let next = AtomicUsize::new(0);
    let broken: Mutex<Option<String>> = Mutex::new(None);
    let worker = || {
        let mut answers = Vec::new();
        let mut loader: Option<Loader> = None;
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(probe) = probes.get(index) else {
                break;
            };
            if let Some(reason) = broken.lock().ok().and_then(|b| b.clone()) {
                answers.push((index, Err(reason)));
                continue;
            }
            if loader.is_none() {
                match Loader::start(request, uuid) {
                    Ok(started) => loader = Some(started),
                    Err(reason) => {
                        if let Ok(mut b) = broken.lock() {
                            b.get_or_insert_with(|| reason.clone());
                        }
                        answers.push((index, Err(reason)));
                        continue;
                    }
                }
            }
            if let Some(answer) = loader.as_mut().and_then(|l| l.load(probe)) {
                answers.push((index, Ok(answer)));
            } else {
                let reason = loader.take().map(Loader::finish).unwrap_or_default();
                answers.push((index, Err(reason)));
            }
        }
        if let Some(loader) = loader {
            loader.finish();
        }
        answers
    };
    let mut answers: Vec<(usize, Result<ProbeResult, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs.max(1)).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap_or_default())
            .collect()
    });
    answers.sort_by_key(|(index, _)| *index);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// Loads every planned container on `device` and compares with the verdict.
fn run_loads(request: &CheckRequest, device: &Device, planned: &[PlannedFile]) -> LoadsReport {
    let started = Instant::now();
    let probes: Vec<ContainerProbe> = planned
        .iter()
        .flat_map(|file| {
            file.containers
                .iter()
                .map(|(offset, size, kernels)| ContainerProbe {
                    file: file.path.clone(),
                    offset: *offset,
                    size: *size,
                    kernels: kernels.clone(),
                })
        })
        .collect();
    // Several children share the work (the driver's loading is mostly CPU time),
    // unless the GPU admits one process at a time.
    let jobs = if device.exclusive {
        1
    } else {
        request.jobs.clamp(1, 16).min(probes.len().max(1))
    };
    let results = load_all(request, &device.uuid, &probes, jobs);
    let mut report = LoadsReport {
        by_input: vec![(0, 0, 0); request.inputs.len().max(1)],
        ..LoadsReport::default()
    };
    let mut results = results.into_iter();
    for file in planned {
        let Some((_, verdict)) = file.verdicts.iter().find(|(c, _)| *c == device.capability) else {
            continue;
        };
        report.files += 1;
        let mut loaded_here = 0;
        let mut first_error = None;
        let mut file_seconds = 0.0;
        for (index, container) in verdict.containers.iter().enumerate() {
            let Some(result) = results.next() else { break };
            report.containers += 1;
            report.by_input[file.input].0 += 1;
            let kernels: Vec<_> = verdict
                .kernels
                .iter()
                .filter(|kernel| kernel.container == container.container)
                .collect();
            report.kernels += kernels.len();
            let result = match result.map(|r| (r.trouble(), r)) {
                Ok((None, result)) => result,
                Ok((Some(message), _)) | Err(message) => {
                    report.errors.push(format!(
                        "{} container {:#x}: {message}",
                        file.path.display(),
                        file.containers[index].0
                    ));
                    report.by_input[file.input].2 += 1;
                    continue;
                }
            };
            file_seconds += result.seconds;
            if result.load_error.is_none() {
                report.loaded += 1;
                loaded_here += 1;
                report.by_input[file.input].1 += 1;
                report.kernels_found += kernels.len().saturating_sub(result.missing.len());
            } else {
                report.not_loaded += 1;
                first_error.get_or_insert_with(|| result.load_error.clone().unwrap_or_default());
            }
            let found = compare(&file.path, container, &kernels, &result);
            report.by_input[file.input].2 += found.len();
            report.disagreements.extend(found);
        }
        report.slowest.push((file.path.clone(), file_seconds));
        if loaded_here == 0 && !verdict.kernels.is_empty() {
            report.by_input[file.input].2 += 1;
            report.failing_files.push(FailingFile {
                file: file.path.clone(),
                kernels: verdict.kernels.len(),
                examples: verdict
                    .kernels
                    .iter()
                    .take(5)
                    .map(|k| k.kernel.clone())
                    .collect(),
                error: first_error.unwrap_or_default(),
            });
        }
    }
    report.slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    report.slowest.truncate(5);
    report.seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "a rate")]
    {
        report.loads_per_second = report.containers as f64 / report.seconds.max(1e-9);
    }
    report
}

/// The smoke tests the inputs call for: every library of `tests` found in them (links
/// followed only into `allowed`), by the input it is in.
fn smoke_libraries(
    inputs: &[PathBuf],
    allowed: &[PathBuf],
    tests: &[SmokeTest],
) -> Vec<(SmokeTest, PathBuf, usize)> {
    let allowed: Vec<PathBuf> = allowed
        .iter()
        .map(|root| std::fs::canonicalize(root).unwrap_or_else(|_| root.clone()))
        .collect();
    let mut files = Vec::new();
    for input in inputs {
        library_files(input, &allowed, &mut files, 0);
    }
    tests_for(&files)
        .into_iter()
        .filter(|(test, _)| tests.contains(test))
        .map(|(test, file)| {
            let input = input_of(inputs, &file);
            (test, file, input)
        })
        .collect()
}

/// Files whose names could be CUDA libraries, under `path`: links to files inside
/// `allowed` included (a library's soname link, an `out` output's links to its `lib`
/// output), links out of it and links to folders never followed, so no code from
/// outside what was named is loaded.
fn library_files(path: &Path, allowed: &[PathBuf], found: &mut Vec<PathBuf>, depth: usize) {
    let Ok(metadata) = path.symlink_metadata() else {
        return;
    };
    if metadata.is_dir() && depth < 64 {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        let mut children: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        children.sort();
        for child in children {
            library_files(&child, allowed, found, depth + 1);
        }
    } else if path.is_file()
        && path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| SmokeTest::for_file_name(name).is_some())
        && std::fs::canonicalize(path)
            .is_ok_and(|real| allowed.iter().any(|root| real.starts_with(root)))
    {
        found.push(path.to_owned());
    }
}

/// The last JSON document in `printed`, which starts a line: what a library wrote
/// before it is not part of it.
fn last_document<T: serde::de::DeserializeOwned>(printed: &str) -> serde_json::Result<T> {
    let start = printed.rfind("\n{").map_or(0, |at| at + 1);
    serde_json::from_str(printed[start..].trim())
}

/// Runs one smoke test in a child and reads its outcome: the last JSON document it
/// printed, from a child that exited as it should.
fn spawn_smoke(
    request: &CheckRequest,
    uuid: &str,
    test: SmokeTest,
    library: &Path,
) -> SmokeOutcome {
    let mut arguments: Vec<std::ffi::OsString> = vec![
        "smoke".into(),
        test.name().into(),
        "--driver".into(),
        request.driver.clone().into_os_string(),
        "--uuid".into(),
        uuid.into(),
        "--library".into(),
        library.to_owned().into_os_string(),
    ];
    for allowed in &request.allowed {
        arguments.push("--allow".into());
        arguments.push(allowed.clone().into_os_string());
    }
    let failed = |detail: String| SmokeOutcome {
        passed: false,
        detail,
        foreign: Vec::new(),
        mapped: Vec::new(),
    };
    let mut process = match child(request, &arguments) {
        Ok(process) => process,
        Err(error) => return failed(format!("cannot start the test: {error}")),
    };
    drop(process.stdin.take());
    // Both pipes are read while the child runs: a library that writes much would
    // otherwise stop it until the deadline.
    let stdout = process.stdout.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut printed = String::new();
            let _ = pipe.read_to_string(&mut printed);
            printed
        })
    });
    let stderr = drain(process.stderr.take());
    let deadline = Instant::now() + request.smoke_timeout;
    let status = loop {
        match process.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = process.kill();
                let _ = process.wait();
                break None;
            }
        }
    };
    let stdout = stdout
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        return failed(format!(
            "did not finish within {} s",
            request.smoke_timeout.as_secs()
        ));
    };
    match last_document::<SmokeOutcome>(&stdout) {
        Ok(outcome) if status.success() => outcome,
        Ok(outcome) => SmokeOutcome {
            passed: false,
            detail: format!("{}; then the process ended ({status})", outcome.detail),
            ..outcome
        },
        Err(_) => failed(format!(
            "the test process ended ({status}) without a result: {stderr}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_the_last_document_printed() {
        let outcome = SmokeOutcome {
            passed: true,
            detail: "ok".to_owned(),
            foreign: Vec::new(),
            mapped: vec![PathBuf::from("/x/libcuda.so.1")],
        };
        let pretty = serde_json::to_string_pretty(&outcome).expect("json");
        let printed = format!("NCCL INFO {{not json}}\n{{\"half\n{pretty}\n");
        let read: SmokeOutcome = last_document(&printed).expect("read");
        assert_eq!(read.mapped, outcome.mapped);
        assert!(last_document::<SmokeOutcome>("no document\n").is_err());
    }

    #[test]
    fn libraries_are_found_by_name_inside_the_tree_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tree = dir.path().join("env");
        let lib = tree.join("lib");
        std::fs::create_dir_all(&lib).expect("folders");
        let outside = dir.path().join("libcudart.so.13");
        std::fs::write(&outside, b"elsewhere").expect("write");
        std::fs::write(lib.join("libcublas.so.13.1.0.3"), b"x").expect("write");
        std::os::unix::fs::symlink("libcublas.so.13.1.0.3", lib.join("libcublas.so.13"))
            .expect("link");
        std::os::unix::fs::symlink(&outside, lib.join("libcudart.so.13")).expect("link");
        std::os::unix::fs::symlink(dir.path(), lib.join("up")).expect("link");
        std::fs::write(lib.join("libcublas.so"), b"linker's name").expect("write");
        let only = std::slice::from_ref(&tree);
        let found = smoke_libraries(only, only, &SmokeTest::ALL);
        // The soname link and its file are one library; the link out of the tree, the
        // folder link and the linker's name are not taken.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, SmokeTest::Cublas);
        assert_eq!(found[0].2, 0);
        // Where the closure allows the link's target, it is taken.
        let wider = [tree.clone(), dir.path().to_owned()];
        let found = smoke_libraries(std::slice::from_ref(&tree), &wider, &SmokeTest::ALL);
        assert_eq!(found.len(), 2, "{found:?}");
    }
}
