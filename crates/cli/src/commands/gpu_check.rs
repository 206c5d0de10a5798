//! `cudapkgs gpu-check`: the paths under test on the local GPUs, and the hidden
//! `gpu-child` command its child processes run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use cudapkgs_gpu::DriverReport;
use cudapkgs_gpu::check::{CheckReport, CheckRequest, DeviceReport, gpu_check};
use cudapkgs_gpu::smoke::SmokeTest;
use cudapkgs_store::GpuCheckRecord;
use cudapkgs_store::store::{Access, Store};
use serde::Serialize;

use crate::cli::StoreLocation;
use crate::context::{file_roots, open_store_for, resolve_all, store_failure};
use crate::error::{CliError, CliResult, Exit, one_line};
use crate::output::{Output, schema_of};
use crate::render::demangle;
use crate::units;

#[derive(Debug, Args)]
pub struct GpuCheckArgs {
    /// Store paths or names of roots; or folders and files written with a `/`
    /// (`./venv`)
    #[arg(value_name = "PATH", required_unless_present = "nix_hook")]
    pub paths: Vec<String>,
    /// The folder of the driver's libcuda.so.1 [default: /run/opengl-driver/lib,
    /// /usr/lib/wsl/lib, then where the host's loader cache says]
    #[arg(long, value_name = "DIR")]
    pub driver_dir: Option<PathBuf>,
    /// Check only this device (its ordinal; repeat for more) [default: every GPU]
    #[arg(long = "device", value_name = "N")]
    pub devices: Vec<i32>,
    /// Run only this smoke test (cudart, cublas, cublaslt, cudnn, cufft, curand,
    /// cusparse, cusolver, nccl, nvrtc, nvjitlink; repeat for more)
    #[arg(long = "smoke", value_name = "NAME")]
    pub smoke: Vec<String>,
    /// No smoke tests: only load the device code
    #[arg(long, conflicts_with = "smoke")]
    pub no_smoke: bool,
    /// No loads of the device code: only the smoke tests
    #[arg(long)]
    pub no_loads: bool,
    /// Seconds a smoke test may take
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub smoke_timeout: u64,
    /// Print what nix-required-mounts must expose to a sandboxed build on this machine
    /// (device nodes, driver folder) for gpu-check to run there, and exit
    #[arg(long)]
    pub nix_hook: bool,
    #[command(flatten)]
    pub location: StoreLocation,
}

/// The work of `gpu-check`'s child processes.
#[derive(Debug, Subcommand)]
pub enum GpuChildCommand {
    /// Load the containers named on stdin, one JSON request per line
    Loads {
        #[arg(long)]
        driver: PathBuf,
        /// The device's UUID (the parent and the child may number devices apart)
        #[arg(long)]
        uuid: String,
    },
    /// Run one smoke test and print its outcome as JSON
    Smoke {
        test: String,
        #[arg(long)]
        driver: PathBuf,
        #[arg(long)]
        uuid: String,
        #[arg(long)]
        library: PathBuf,
        #[arg(long = "allow")]
        allowed: Vec<PathBuf>,
    },
}

pub fn child(command: &GpuChildCommand) -> CliResult<Exit> {
    match command {
        GpuChildCommand::Loads { driver, uuid } => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            cudapkgs_gpu::child::serve_loads(driver, uuid, stdin, stdout)
                .map_err(|error| CliError::from_error(&error))?;
        }
        GpuChildCommand::Smoke {
            test,
            driver,
            uuid,
            library,
            allowed,
        } => {
            let test = SmokeTest::from_name(test)
                .ok_or_else(|| CliError::new(format!("no smoke test {test}")))?;
            let outcome = cudapkgs_gpu::child::run_smoke(driver, uuid, test, library, allowed);
            Output::print_json(&outcome)?;
        }
    }
    Ok(Exit::Success)
}

/// The inputs as folders on this machine, where their CUDA libraries may come from,
/// the store paths among them (to record results for), and the store.
struct Inputs {
    physical: Vec<PathBuf>,
    allowed: Vec<PathBuf>,
    store_paths: Vec<String>,
    store: Option<Store>,
}

fn inputs(args: &GpuCheckArgs, output: Output) -> CliResult<Inputs> {
    if args
        .paths
        .iter()
        .any(|path| cudapkgs_check::files::names_a_file(path))
    {
        // Only the named folders are needed: where the loader would search is the
        // children's own business.
        let tree = crate::cli::FileTreeArgs {
            root_fs: Some(PathBuf::from("/")),
        };
        let (roots, _, _) = file_roots(&args.paths, &tree, output)?;
        return Ok(Inputs {
            allowed: roots.clone(),
            physical: roots,
            store_paths: Vec::new(),
            store: None,
        });
    }
    let store = open_store_for(&args.location, Access::ReadOnly)?;
    let paths = resolve_all(&store, &args.paths)?;
    let closure = store
        .parse_paths(&paths)
        .and_then(|checked| store.closure(&checked))
        .map_err(|error| store_failure(&error))?;
    Ok(Inputs {
        physical: paths.iter().map(|path| store.physical(path)).collect(),
        allowed: closure
            .iter()
            .map(|info| store.physical(&info.path))
            .collect(),
        store_paths: paths,
        store: Some(store),
    })
}

fn smoke_tests(args: &GpuCheckArgs) -> CliResult<Vec<SmokeTest>> {
    if args.no_smoke {
        return Ok(Vec::new());
    }
    if args.smoke.is_empty() {
        return Ok(SmokeTest::ALL.to_vec());
    }
    args.smoke
        .iter()
        .map(|name| {
            SmokeTest::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = SmokeTest::ALL.iter().map(|t| t.name()).collect();
                CliError::new(format!("--smoke {name}: no such smoke test"))
                    .with_hint(format!("the tests: {}", known.join(", ")))
            })
        })
        .collect()
}

pub fn run(args: &GpuCheckArgs, output: Output) -> CliResult<Exit> {
    let (driver, report) = crate::native::open_driver(args.driver_dir.as_deref())?;
    if args.nix_hook {
        return nix_hook(&report, output);
    }
    if report.devices.is_empty() {
        return Err(CliError::new(format!(
            "the driver at {} sees no GPU",
            report.library.display()
        ))
        .with_hint("gpu-check needs a machine with an NVIDIA GPU"));
    }
    if let Some(missing) = args
        .devices
        .iter()
        .find(|ordinal| !report.devices.iter().any(|d| d.ordinal == **ordinal))
    {
        return Err(CliError::new(format!(
            "--device {missing}: the driver sees devices {}",
            report
                .devices
                .iter()
                .map(|d| d.ordinal.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // The driver stays loaded to the end: unloading it after cuInit can crash at exit.
    let _driver = driver;
    let inputs = inputs(args, output)?;
    let executable = std::env::current_exe()
        .map_err(|error| CliError::new("cannot find this executable").caused_by(&error))?;
    let request = CheckRequest {
        executable,
        driver: report.library.clone(),
        inputs: inputs.physical.clone(),
        allowed: inputs.allowed.clone(),
        loads: !args.no_loads,
        smoke: smoke_tests(args)?,
        devices: args.devices.clone(),
        jobs: std::thread::available_parallelism().map_or(1, usize::from),
        smoke_timeout: Duration::from_secs(args.smoke_timeout),
    };
    let checked = gpu_check(&request, report);
    if checked.devices.is_empty() {
        return Err(
            CliError::new("no such device").with_hint("see the GPUs with `gpu-check --nix-hook`")
        );
    }
    let recorded = record(inputs, &checked, &args.location, output);
    if output.json {
        Output::print_json(&checked)?;
    } else {
        Output::print(&human(&checked, recorded))?;
    }
    Ok(if checked.passed() {
        Exit::Success
    } else {
        Exit::Problems
    })
}

/// Keeps each result in the store's database for its store path; how many were kept.
/// A Nix store is only read: nothing is kept there.
fn record(
    inputs: Inputs,
    checked: &CheckReport,
    location: &StoreLocation,
    output: Output,
) -> usize {
    let Some(store) = inputs.store else { return 0 };
    drop(store);
    if location.store.is_some() {
        return 0;
    }
    let mut store = match open_store_for(location, Access::Existing) {
        Ok(store) => store,
        Err(error) => {
            output.warn(format!("results not kept: {}", error.message));
            return 0;
        }
    };
    let driver = format!(
        "{} {}",
        checked.driver.cuda,
        checked.driver.library.display()
    );
    let time = cudapkgs_store::check_time();
    let mut kept = 0;
    for device in &checked.devices {
        let base = |name: String, passed: bool, detail: String, seconds: f64| GpuCheckRecord {
            name,
            gpu: device.device.name.clone(),
            uuid: device.device.uuid.clone(),
            capability: device.device.capability.to_string(),
            driver: driver.clone(),
            passed,
            detail,
            seconds,
            time,
        };
        let mut records: Vec<(usize, GpuCheckRecord)> = Vec::new();
        if let Some(loads) = &device.loads {
            for (input, (containers, loaded, problems)) in loads.by_input.iter().enumerate() {
                if *containers > 0 {
                    let detail =
                        format!("{containers} containers, {loaded} loaded, {problems} problems");
                    records.push((
                        input,
                        base(
                            "module-loads".to_owned(),
                            *problems == 0,
                            detail,
                            loads.seconds,
                        ),
                    ));
                }
            }
        }
        for smoke in &device.smoke {
            let name = format!("smoke:{}", smoke.test.name());
            let record = base(
                name,
                smoke.outcome.passed,
                smoke.outcome.detail.clone(),
                smoke.seconds,
            );
            records.push((smoke.input, record));
        }
        for (input, record) in records {
            let Some(path) = inputs.store_paths.get(input) else {
                continue;
            };
            match store.record_gpu_check(path, &record) {
                Ok(true) => kept += 1,
                Ok(false) => {}
                Err(error) => output.warn(format!("results not kept: {}", one_line(&error))),
            }
        }
    }
    kept
}

fn human(report: &CheckReport, recorded: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "driver {} (CUDA {})",
        report.driver.library.display(),
        report.driver.cuda
    );
    for (file, message) in &report.unreadable {
        let _ = writeln!(out, "  cannot read {file}: {message}");
    }
    for device in &report.devices {
        device_text(&mut out, device);
    }
    let failed = report.devices.iter().filter(|d| !d.passed()).count();
    if recorded > 0 {
        let _ = writeln!(out, "{recorded} results kept in the store's database");
    }
    let _ = writeln!(
        out,
        "{}",
        if failed == 0 && report.unreadable.is_empty() {
            format!(
                "gpu-check passed on {}",
                units::count(report.devices.len(), "GPU", "GPUs")
            )
        } else {
            format!(
                "gpu-check failed on {}",
                units::count(failed.max(1), "GPU", "GPUs")
            )
        }
    );
    out
}

fn device_text(out: &mut String, device: &DeviceReport) {
    let d = &device.device;
    let _ = writeln!(
        out,
        "GPU {}: {} ({}, {}, {})",
        d.ordinal,
        d.name,
        d.capability,
        units::bytes(d.memory_bytes),
        d.uuid
    );
    if let Some(loads) = &device.loads {
        let _ = writeln!(
            out,
            "  device code: {} containers in {}: {} loaded, {} not (other architectures' code); {} of {} kernels found; {} with the verdict ({:.1} s, {:.0} loads/s)",
            loads.containers,
            units::count(loads.files, "file", "files"),
            loads.loaded,
            loads.not_loaded,
            loads.kernels_found,
            loads.kernels,
            if loads.disagreements.is_empty() {
                "no disagreement".to_owned()
            } else {
                units::count(loads.disagreements.len(), "DISAGREEMENT", "DISAGREEMENTS")
            },
            loads.seconds,
            loads.loads_per_second
        );
        let slow: Vec<String> = loads
            .slowest
            .iter()
            .filter(|(_, seconds)| *seconds >= 1.0)
            .map(|(file, seconds)| {
                let name = file.file_name().map_or_else(
                    || file.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                format!("{name} {seconds:.1} s")
            })
            .collect();
        if !slow.is_empty() {
            let _ = writeln!(out, "  slowest loads: {}", slow.join(", "));
        }
        for failing in &loads.failing_files {
            let examples: Vec<String> = failing
                .examples
                .iter()
                .map(|kernel| demangle(kernel))
                .collect();
            let _ = writeln!(
                out,
                "  FAIL {}: no container loads ({}): {}, e.g. {}",
                failing.file.display(),
                failing.error,
                units::count(failing.kernels, "kernel", "kernels"),
                examples.join("; ")
            );
        }
        for disagreement in &loads.disagreements {
            let _ = writeln!(
                out,
                "  DISAGREEMENT {} container {:#x}{}: the verdict says {}, the driver {}",
                disagreement.file.display(),
                disagreement.container,
                disagreement
                    .kernel
                    .as_deref()
                    .map(|k| format!(" kernel {}", demangle(k)))
                    .unwrap_or_default(),
                disagreement.predicted,
                disagreement.observed
            );
        }
        for error in &loads.errors {
            let _ = writeln!(out, "  ERROR {error}");
        }
    }
    for smoke in &device.smoke {
        let mark = if smoke.outcome.passed { "ok  " } else { "FAIL" };
        let _ = writeln!(
            out,
            "  {mark} {:<9} {}: {} ({:.1} s)",
            smoke.test.name(),
            smoke.library.display(),
            smoke.outcome.detail,
            smoke.seconds
        );
        for foreign in &smoke.outcome.foreign {
            let _ = writeln!(out, "         from outside: {}", foreign.display());
        }
    }
}

/// `gpu-check --nix-hook --json`; its keys in the order of their names, as they always
/// were.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct NixHookReport<'a> {
    /// The CUDA version the driver supports.
    cuda: String,
    /// The `/dev/nvidia*` nodes.
    device_nodes: &'a [PathBuf],
    devices: &'a [cudapkgs_gpu::Device],
    /// The driver library found.
    driver: &'a Path,
    driver_folder: &'a Path,
    /// What Nix's `extra-sandbox-paths` needs: the device nodes and the driver folder.
    extra_sandbox_paths: &'a [PathBuf],
    /// What Nix's `system-features` needs.
    system_features: [&'static str; 1],
}

/// The JSON documents of `gpu-check` and of `gpu-check --nix-hook`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("gpu-check", schema_of::<CheckReport>()),
        ("gpu-check-nix-hook", schema_of::<NixHookReport>()),
    ]
}

/// What a sandboxed build needs from this machine for gpu-check to run inside it.
fn nix_hook(report: &DriverReport, output: Output) -> CliResult<Exit> {
    let mut devices: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|name| name.starts_with("nvidia"))
                })
                .collect()
        })
        .unwrap_or_default();
    devices.sort();
    let folder = report.library.parent().unwrap_or(Path::new("/")).to_owned();
    let mut paths: Vec<PathBuf> = devices.clone();
    paths.push(folder.clone());
    if output.json {
        Output::print_json(&NixHookReport {
            cuda: report.cuda.to_string(),
            device_nodes: &devices,
            devices: &report.devices,
            driver: &report.library,
            driver_folder: &folder,
            extra_sandbox_paths: &paths,
            system_features: ["cuda"],
        })?;
        return Ok(Exit::Success);
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "driver: {} (CUDA {})",
        report.library.display(),
        report.cuda
    );
    for device in &report.devices {
        let _ = writeln!(
            text,
            "GPU {}: {} ({})",
            device.ordinal, device.name, device.capability
        );
    }
    let _ = writeln!(
        text,
        "\nA build with requiredSystemFeatures = [ \"cuda\" ] needs these in its sandbox\n(nix-required-mounts exposes them; by hand, in nix.conf):\n"
    );
    let listed: Vec<String> = paths.iter().map(|p| format!("{}?", p.display())).collect();
    let _ = writeln!(text, "  extra-sandbox-paths = {}", listed.join(" "));
    let _ = writeln!(text, "  system-features = cuda");
    let _ = writeln!(
        text,
        "\nand in the build: cudapkgs gpu-check --driver-dir {} \"$out\"",
        folder.display()
    );
    Output::print(&text)?;
    Ok(Exit::Success)
}
