//! `cudapkgs build`: packages from NVIDIA's archives or PyPI's wheels into the store.

use std::fmt::Write as _;

use cudapkgs_build::prepare::Input;
use cudapkgs_build::realise::{Built, Options, build};
use cudapkgs_caps::DEFAULT_CUDA;
use cudapkgs_fatbin::Gpu;
use cudapkgs_redist::fetch::{Fetcher, Request};
use cudapkgs_redist::pypi;

use super::redist::{ProgressLine, failure, fetcher_at, mirror_at, pip_index_url, this_system};
use super::store::open_store;
use super::wheel::{parse_spec, resolve_wheel};
use crate::cli::{BuildArgs, BuildSource};
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;

/// A package resolved to what will be downloaded.
struct Resolved {
    package: String,
    version: String,
    request: Request,
}

pub fn run(args: &BuildArgs, output: Output) -> CliResult<Exit> {
    let fetcher = fetcher_at(args.cache.as_ref())?;
    let system = args
        .system
        .clone()
        .unwrap_or_else(|| this_system().to_owned());
    let major: u32 = args
        .cuda
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| {
            CliError::new(format!(
                "--cuda {}: expected a release like 13.0.2 or a major like 13",
                args.cuda
            ))
        })?;
    // `PACKAGE=FILE` builds a downloaded archive or wheel; the rest come from the source.
    let (local, remote): (Vec<&String>, Vec<&String>) = args
        .packages
        .iter()
        .partition(|spec| spec.contains('=') && !spec.contains("=="));
    let local: Vec<Input> = local
        .iter()
        .map(|spec| local_input(spec))
        .collect::<CliResult<_>>()?;
    let remote: Vec<String> = remote.into_iter().cloned().collect();
    let resolved = if remote.is_empty() && !args.all {
        Vec::new()
    } else {
        match args.source {
            BuildSource::Pypi => resolve_wheels(args, &remote, &fetcher, major, &system)?,
            BuildSource::Nvidia => resolve_archives(args, &remote, &fetcher, major, &system)?,
        }
    };
    if args.dry_run {
        return show_plan(&fetcher, &resolved, &local);
    }
    let capabilities = super::prune::requested_capabilities(
        args.capabilities.as_deref(),
        &args.gpus,
        DEFAULT_CUDA,
    )?;
    let progress = ProgressLine::new(output);
    let requests: Vec<Request> = resolved.iter().map(|r| r.request.clone()).collect();
    let archives = fetcher.fetch_all(&requests, args.jobs, &|r, d, t| progress.update(r, d, t));
    progress.finish();
    let mut inputs = Vec::new();
    for (r, archive) in resolved.iter().zip(archives) {
        inputs.push(Input {
            package: r.package.clone(),
            version: r.version.clone(),
            archive: archive.map_err(|error| failure(&error).context(&r.package))?,
        });
    }
    inputs.extend(local);
    let mut store = open_store(&args.location)?;
    let driver_dir = super::patch::driver_dir(Some(&args.driver_dir))?
        .display()
        .to_string();
    let options = Options {
        driver_dir,
        gpus: capabilities
            .iter()
            .map(|&capability| Gpu {
                capability,
                driver_cuda: None,
            })
            .collect(),
        strict_targets: args.strict_targets,
        jobs: args.jobs,
        gc_roots: !args.no_gc_roots,
    };
    let built =
        build(&mut store, &inputs, &options).map_err(|error| CliError::new(error.to_string()))?;
    report(&built, output)
}

/// `--dry-run`: what would be fetched (and whether it is cached) and built.
fn show_plan(fetcher: &Fetcher, resolved: &[Resolved], local: &[Input]) -> CliResult<Exit> {
    let mut text = String::new();
    for r in resolved {
        let cached = fetcher
            .cached_path(&r.request.sha256)
            .is_ok_and(|path| path.is_file());
        let _ = writeln!(
            text,
            "{} {}  {}{}",
            r.package,
            r.version,
            r.request.url,
            if cached { "  (cached)" } else { "" }
        );
    }
    for input in local {
        let _ = writeln!(
            text,
            "{} {}  {}",
            input.package,
            input.version,
            input.archive.display()
        );
    }
    let _ = writeln!(
        text,
        "then: unpack, split, resolve needed libraries across these {} packages, set runpaths, add to the store",
        resolved.len() + local.len()
    );
    Output::print(&text)?;
    Ok(Exit::Success)
}

fn report(built: &[Built], output: Output) -> CliResult<Exit> {
    for package in built {
        for (root, was) in &package.repointed {
            output.warn(format!(
                "root {root} now holds this build of {} {}; what it held ({was}) stays rooted by its versioned root",
                package.package, package.version
            ));
        }
        for (capability, file, kernel) in package.targets.missing.iter().take(5) {
            output.warn(format!(
                "{}: {file}: {kernel} has no image for {capability}",
                package.package
            ));
        }
        if package.targets.missing.len() > 5 {
            output.warn(format!(
                "{}: {} more kernels without an image for the requested GPUs",
                package.package,
                package.targets.missing.len() - 5
            ));
        }
    }
    if output.json {
        let packages: Vec<serde_json::Value> = built
            .iter()
            .map(|b| {
                serde_json::json!({
                    "package": b.package,
                    "version": b.version,
                    "outputs": b.outputs.iter().map(|(o, p)| (o.clone(), p.clone())).collect::<std::collections::BTreeMap<_, _>>(),
                    "depends_on": b.depends_on,
                    "architectures": b.targets.architectures,
                    "kernels_checked": b.targets.kernels_checked,
                    "kernels_without_image": b.targets.missing.len(),
                    "repointed": b.repointed.iter().map(|(root, was)| serde_json::json!({"root": root, "was": was})).collect::<Vec<_>>(),
                })
            })
            .collect();
        Output::print_json(&packages)?;
    } else {
        let mut text = String::new();
        for b in built {
            for (name, path) in &b.outputs {
                if name != "out" {
                    output.detail(format!("{} {name}: {path}", b.package));
                }
            }
            let _ = writeln!(text, "{}", b.output("out").unwrap_or_default());
        }
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}

/// `PACKAGE=FILE`: the version from the file's name (a wheel's, or NVIDIA's
/// `<package>-<system>-<version>-archive`), else `local`.
fn local_input(spec: &str) -> CliResult<Input> {
    let (package, file) = spec.split_once('=').expect("checked by the caller");
    let archive = std::path::PathBuf::from(file);
    if !archive.is_file() {
        return Err(CliError::new(format!("{spec}: {file} is not a file")));
    }
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let version = if let Some(stem) = name.strip_suffix(".whl") {
        stem.split('-').nth(1).map(str::to_owned)
    } else {
        name.split_once("-archive.")
            .and_then(|(stem, _)| stem.rsplit('-').next())
            .map(str::to_owned)
    }
    .unwrap_or_else(|| "local".to_owned());
    Ok(Input {
        package: package.to_owned(),
        version,
        archive,
    })
}

fn resolve_wheels(
    args: &BuildArgs,
    packages: &[String],
    fetcher: &Fetcher,
    major: u32,
    system: &str,
) -> CliResult<Vec<Resolved>> {
    if args.all {
        return Err(CliError::new(
            "--all needs --source nvidia (PyPI has no release list)",
        ));
    }
    let index = args.index_url.clone().unwrap_or_else(pip_index_url);
    let mut resolved = Vec::new();
    for spec in packages {
        let (name, version) = parse_spec(spec);
        if pypi::wheel_name(name, major).is_none() {
            return Err(
                CliError::new(format!("{name}: no wheel is known for this package")).with_hint(
                    "use a redist name such as cuda_cudart, libcublas, cuda_nvrtc, cudnn",
                ),
            );
        }
        let wheel = resolve_wheel(fetcher, &index, name, version, major, system)?;
        resolved.push(Resolved {
            package: name.to_owned(),
            version: wheel.version.clone(),
            request: wheel.request(),
        });
    }
    Ok(resolved)
}

fn resolve_archives(
    args: &BuildArgs,
    packages: &[String],
    fetcher: &Fetcher,
    major: u32,
    system: &str,
) -> CliResult<Vec<Resolved>> {
    let mirror = mirror_at(args.base_url.as_deref());
    let manifest = mirror
        .manifest(fetcher, "cuda", &args.cuda)
        .map_err(|error| {
            failure(&error)
                .with_hint("--source nvidia needs the full release in --cuda, like 12.9.1")
        })?;
    let names: Vec<String> = if args.all {
        manifest
            .packages
            .values()
            .filter(|p| p.archive(system, Some(major)).is_some())
            .map(|p| p.key.clone())
            .collect()
    } else {
        packages.to_vec()
    };
    let mut resolved = Vec::new();
    for name in names {
        let package = manifest.packages.get(&name).ok_or_else(|| {
            CliError::new(format!("CUDA {} has no package `{name}`", args.cuda))
                .with_hint("`cudapkgs redist list --version RELEASE` shows the packages")
        })?;
        let archive = package
            .archive(system, Some(major))
            .or_else(|| package.archive(system, None))
            .ok_or_else(|| {
                CliError::new(format!(
                    "{name} {} has no archive for {system}",
                    package.version
                ))
            })?;
        resolved.push(Resolved {
            package: name.clone(),
            version: package.version.clone(),
            request: mirror.request("cuda", archive),
        });
    }
    Ok(resolved)
}
