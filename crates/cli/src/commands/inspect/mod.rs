//! `cudapkgs inspect`: the device code in files and trees, and per-kernel verdicts.

mod expect;
mod extract;
mod render;
mod report;

use cudapkgs_fatbin::{
    Error as FatbinError, FileReader, Gpu, ScanOptions, file_verdict, holds_device_code, scan_with,
};
use cudapkgs_report::{Phase, Task};
use cudapkgs_tree::dir::Dir;
use cudapkgs_tree::{self as tree, Walk};

use crate::cli::{InspectArgs, TextOrJson};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::progress::{Bars, label_of};
use crate::settings::{
    Config, EnvLookup, capabilities_of, driver_release, forward_compat, targets, tell_sources,
};

pub(crate) use report::{FileResult, Judgement, Report};

/// The JSON document of `inspect`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("inspect", schema_of::<report::ReportJson>())]
}

pub fn run(
    args: &InspectArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    let gpus = judged_gpus(args, output, config, env)?;
    let extract_dir = args
        .out
        .as_deref()
        .map(|dir| {
            std::fs::create_dir_all(dir)
                .and_then(|()| Dir::open(dir))
                .map_err(|error| {
                    CliError::new(format!("cannot create {}", dir.display()))
                        .caused_by(&error)
                        .with_hint("--out needs a folder it can write into")
                })
        })
        .transpose()?;
    let expectation = args
        .expect_capabilities
        .as_deref()
        .map(|list| {
            let flag = args
                .no_forward_compat
                .then_some((false, "--no-forward-compat"));
            let forward_compat = forward_compat(flag, env, config)?;
            tell_sources(output, &[("forward compatibility", &forward_compat.source)]);
            expect::Expectation::new(list, forward_compat.value)
        })
        .transpose()?;
    let several_inputs = args.paths.len() > 1 || args.paths.iter().any(|path| path.is_dir());
    let options = ScanOptions {
        kernels: !gpus.is_empty(),
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);

    // Zip files are opened by the walk itself.
    let walk = Walk {
        wants: holds_device_code,
        zips: true,
    };
    let progress = Bars::new(output);
    let task = Task::start(&progress, Phase::Inspect, &label_of(&args.paths), None);
    let visited = tree::visit(&args.paths, walk, threads, |source, input| {
        task.advance(1);
        let data = input.bytes;
        let reader = FileReader::new(input.file).map_err(|error| error.to_string())?;
        let mut scanned =
            scan_with(data, &reader, options).map_err(|error| describe(&error, data))?;
        let judged = gpus
            .iter()
            .map(|gpu| {
                let verdict = file_verdict(&scanned, *gpu);
                Judgement {
                    verdicts: verdict.kernels,
                    containers: verdict.containers,
                }
            })
            .collect();
        // The verdicts carry the kernel names; the per-entry lists (hundreds of
        // thousands of names in a venv) are not kept.
        scanned.forget_kernels();
        let extracted = match &extract_dir {
            Some(dir) if scanned.has_device_code() => {
                extract::write_entries(dir, &source.display, several_inputs, data)?
            }
            _ => 0,
        };
        Ok(FileResult {
            scan: scanned,
            judged,
            extracted,
        })
    });

    drop(task);
    let report = Report::new(visited, gpus, args.top);
    let checked = expectation
        .as_ref()
        .map(|expectation| expect::check(&report, expectation));
    if output.json || args.format == TextOrJson::Json {
        let mut json = report.json();
        json.expectation.clone_from(&checked);
        Output::print_json(&json)?;
    } else {
        let list_entries =
            args.entries || (!several_inputs && report.files_with_device_code() <= 1);
        let mut text = render::human(&report, list_entries, output.width);
        if let Some(checked) = &checked {
            text.push_str(&expect::human(checked));
        }
        Output::print(&text)?;
    }
    for (path, message) in report.failures() {
        output.error(format!("{path}: {message}"));
    }
    Ok(match report.exit() {
        Exit::Success if checked.as_ref().is_some_and(|checked| !checked.pass) => Exit::Problems,
        exit => exit,
    })
}

/// The GPUs every kernel is judged for: `--gpu` or `--capabilities`, else the targets
/// of the environment or cudapkgs.toml; names resolve with the driver's release when
/// known, else the configured one. A capability is judged once however many names
/// reach it.
fn judged_gpus(
    args: &InspectArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Vec<Gpu>> {
    let targets = targets(args.capabilities.as_deref(), &args.gpus, env, config)?;
    let (driver_cuda, release) = driver_release(args.driver_cuda, &targets, env, config)?;
    tell_sources(
        output,
        &[("cuda", &release.source), ("capabilities", &targets.source)],
    );
    let mut capabilities: Vec<_> = capabilities_of(&targets, release.value)?
        .into_iter()
        .map(cudapkgs_caps::Capability::without_variant)
        .collect();
    capabilities.dedup();
    Ok(capabilities
        .into_iter()
        .map(|capability| Gpu {
            capability,
            driver_cuda,
        })
        .collect())
}

/// Error text for a file that could not be scanned: a named file of another kind says
/// so plainly.
fn describe(error: &FatbinError, data: &[u8]) -> String {
    match error {
        FatbinError::NotRecognized(_) if data.is_empty() => "empty file".to_owned(),
        FatbinError::NotRecognized(_) => {
            "not an ELF file, ar archive, fatbin, cubin or wheel".to_owned()
        }
        other => other.to_string(),
    }
}
