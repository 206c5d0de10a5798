//! `cudapkgs build`: packages from NVIDIA's archives or PyPI's wheels into the store.

mod json;

use std::fmt::Write as _;
use std::time::Instant;

use cudapkgs_builder::realise::{Built, Options, adopt, build, recalled, record_key};
use cudapkgs_builder::resolve::{
    self, Origin, Requirer, Resolution, Resolved, Source, Spec, Why, cuda_major, extend_for,
    providers_for, resolve,
};
use cudapkgs_builder::{Error as BuildError, Missing};
use cudapkgs_cache::backend::{self, Access, HttpClient};
use cudapkgs_cache::{records, substitute};
use cudapkgs_fatbin::{Gpu, KeepPtx, PruneRequest};
use cudapkgs_redist::fetch::Fetcher;
use cudapkgs_redist::manifest::host_system;
use cudapkgs_store::store::{Access as StoreAccess, Store};

pub use self::json::schemas;
use crate::cli::{BuildArgs, BuildSource};
use crate::context::{
    build_failure, cache_location, driver_dir, fetcher_at, mirror_url, open_folders,
    redist_failure, resolve_failure, s3_credentials, store_folders, trusted_keys,
};
use crate::error::{CliError, CliResult, Exit, one_line};
use crate::output::Output;
use crate::progress::Bars;
use crate::render::count;
use crate::settings::{
    self, Config, EnvLookup, Release, Sourced, build_release, capabilities_of, targets,
    tell_sources,
};

pub fn run(
    args: &BuildArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    if args.all && args.source == BuildSource::Pypi {
        return Err(CliError::new(
            "--all builds every package of a release, which only NVIDIA's manifests list",
        )
        .with_hint("add --source nvidia"));
    }
    let release = build_release(args.cuda.as_ref(), env, config)?;
    let targets = targets(args.capabilities.as_deref(), &args.gpus, env, config)?;
    tell_sources(
        output,
        &[("cuda", &release.source), ("capabilities", &targets.source)],
    );
    let (index, offline, caches) = network_settings(args, env, config, output)?;
    // A plan needs no store; a build refuses a bad store setting before its long work.
    let folders = if args.dry_run {
        None
    } else {
        Some(store_folders(&args.location)?)
    };
    // GPU names resolve with the release asked for; `native` asks this machine's GPUs,
    // which a dry run does not need.
    let native = targets
        .value
        .names()
        .iter()
        .any(|name| crate::native::is_native(name));
    let capabilities = if args.dry_run && native {
        Vec::new()
    } else {
        capabilities_of(&targets, release.value.version())?
    };
    let mut fetcher = fetcher_at(args.cache.as_ref())?;
    fetcher.offline = offline.value;
    let mut request = request_of(args, &release.value, &index.value)?;
    let started = Instant::now();
    let progress = Bars::new(output);
    if args.dry_run {
        let resolution = resolve(&fetcher, &request, &progress).map_err(resolve_failure)?;
        progress.finish();
        tell(&resolution, output);
        return show_plan(&fetcher, &resolution, output);
    }
    let options = build_options(args, &capabilities)?;
    // Opened once something is resolved and downloaded: a refused request makes no store.
    let mut store = None;
    // What the files need beyond what resolution knew brings one more round each time
    // it names a package not yet in the set; a round that adds nothing reports the rest.
    loop {
        let phase = Instant::now();
        let resolution = resolve(&fetcher, &request, &progress).map_err(resolve_failure)?;
        progress.finish();
        output.detail(format!(
            "resolved {} in {}",
            count(resolution.packages.len(), "package", "packages"),
            seconds(phase)
        ));
        tell(&resolution, output);
        if store.is_none() {
            let folders = folders.as_ref().expect("resolved unless a dry run");
            store = Some(open_folders(folders, StoreAccess::Create)?);
        }
        // A set built before, here or in a substituter, is not downloaded again: the
        // record's key needs only the archives' hashes, which resolution gives.
        if let Some(exit) = without_building(
            store.as_mut().expect("opened above"),
            &fetcher,
            &resolution,
            &options,
            args.rebuild,
            &caches,
            output,
        )? {
            return Ok(exit);
        }
        let (archives, new_downloads) =
            fetch_archives(&fetcher, &resolution, args.jobs, &progress, output);
        let mut downloaded = Vec::new();
        for (download, archive) in resolution.downloads().iter().zip(archives) {
            let package = resolution
                .packages
                .iter()
                .find(|r| r.origin == Origin::Remote(download.clone()))
                .map_or("", |r| r.package.as_str());
            downloaded.push(archive.map_err(|error| redist_failure(&error).context(package))?);
        }
        let inputs = resolution.inputs(&downloaded);
        let store = store.as_mut().expect("opened above");
        match build(store, &inputs, &options, &progress) {
            Ok(built) => {
                output.detail(progress.phase_times());
                let exit = report(&built, &resolution, output)?;
                output.note(summary(store, &built, new_downloads, started));
                return Ok(exit);
            }
            Err(BuildError::Unresolved(missing)) => {
                if request.dependencies && extend_for(&mut request, &resolution, &missing) {
                    for line in missing_lines(&missing, &request) {
                        output.warn(format!("{line}; adding it"));
                    }
                    continue;
                }
                return report_missing(&missing, &request, output);
            }
            Err(error) => return Err(build_failure(error)),
        }
    }
}

/// Where packages and outputs come from: the index, whether to use the network, the
/// binary caches.
fn network_settings(
    args: &BuildArgs,
    env: EnvLookup<'_>,
    config: &Config,
    output: Output,
) -> CliResult<(Sourced<String>, Sourced<bool>, Caches)> {
    let index = settings::index_url(args.index_url.as_deref(), env, config)?;
    let offline = settings::offline(args.offline, env, config)?;
    let caches = Caches {
        substituters: settings::substituters(&args.substituters, env, config)?,
        trusted: settings::trusted_public_keys(&args.trusted_public_keys, env, config)?,
    };
    tell_sources(
        output,
        &[
            ("index url", &index.source),
            ("offline", &offline.source),
            ("substituters", &caches.substituters.source),
            ("trusted public keys", &caches.trusted.source),
        ],
    );
    // Refused before anything is resolved or downloaded.
    for url in &caches.substituters.value {
        cache_location(url, &caches.substituters.source)?;
    }
    trusted_keys(&caches.trusted)?;
    Ok((index, offline, caches))
}

/// The binary caches a build may take its outputs from, and the keys they must be
/// signed with.
struct Caches {
    substituters: Sourced<Vec<String>>,
    trusted: Sourced<Vec<String>>,
}

/// The set's outputs without a build: from the store's record of the same inputs, or
/// from a substituter's; `None` when neither has one (or `--rebuild`).
fn without_building(
    store: &mut cudapkgs_store::store::Store,
    fetcher: &Fetcher,
    resolution: &Resolution,
    options: &Options,
    rebuild: bool,
    caches: &Caches,
    output: Output,
) -> CliResult<Option<Exit>> {
    if rebuild {
        return Ok(None);
    }
    let planned: Vec<std::path::PathBuf> = resolution
        .downloads()
        .iter()
        .map(|download| fetcher.cached_path(&download.sha256))
        .collect::<Result<_, _>>()
        .map_err(|error| redist_failure(&error))?;
    let inputs = resolution.inputs(&planned);
    let key = record_key(store, &inputs, options).map_err(build_failure)?;
    if let Some(built) = recalled(store, &key, options).map_err(build_failure)? {
        return report(&built, resolution, output).map(Some);
    }
    let substituters = &caches.substituters.value;
    if substituters.is_empty() {
        return Ok(None);
    }
    let taken = substitute_build(store, &key, substituters, &caches.trusted, options, output)?;
    let Some((built, from)) = taken else {
        return Ok(None);
    };
    let packages = if built.len() == 1 {
        "package"
    } else {
        "packages"
    };
    output.note(format!(
        "{} {packages} taken from {from}: it holds a signed record of a build of these inputs",
        built.len()
    ));
    report(&built, resolution, output).map(Some)
}

/// A build taken from the first of `urls` that has a trusted record of `key`: its outputs
/// copied with their closures (every narinfo checked as `copy` checks it), its record
/// kept and its outputs rooted here. `None` when no cache has one; a cache that cannot be
/// reached or holds a record no trusted key signed is passed over with a warning, as a
/// substituter that fails is (the set is then built).
fn substitute_build(
    store: &mut Store,
    key: &str,
    urls: &[String],
    trusted: &Sourced<Vec<String>>,
    options: &Options,
    output: Output,
) -> CliResult<Option<(Vec<Built>, String)>> {
    let trusted = trusted_keys(trusted)?;
    if trusted.is_empty() {
        return Err(CliError::new("a substituter needs a trusted public key")
            .with_hint("pass --trusted-public-key name:base64 (the cache's public key)"));
    }
    let access = Access {
        token: None,
        s3: s3_credentials(),
        client: HttpClient::default(),
    };
    for url in urls {
        // Checked when the settings were read.
        let source = cache_location(url, "--substituter")?;
        let mut attempt = || -> Result<Option<Vec<Built>>, String> {
            let backend = backend::open(&source, &access, false).map_err(|e| one_line(&e))?;
            let Some((text, _signer)) =
                records::fetch(backend.as_ref(), key, &trusted).map_err(|e| one_line(&e))?
            else {
                return Ok(None);
            };
            let paths = records::outputs(&text).unwrap_or_default();
            substitute::substitute(
                store,
                backend.as_ref(),
                &paths,
                &substitute::Options {
                    trusted: &trusted,
                    jobs: options.jobs.max(1),
                },
                &|_| {},
            )
            .map_err(|e| one_line(&e))?;
            adopt(store, key, &text, options).map_err(|e| one_line(&e))
        };
        match attempt() {
            Ok(Some(built)) => return Ok(Some((built, url.clone()))),
            Ok(None) => {}
            Err(problem) => output.warn(format!("substituter {url}: {problem}; building instead")),
        }
    }
    Ok(None)
}

/// The request the arguments make.
fn request_of(args: &BuildArgs, release: &Release, index_url: &str) -> CliResult<resolve::Request> {
    let packages: Vec<Spec> = args
        .packages
        .iter()
        .map(|spec| spec.parse::<Spec>().map_err(resolve_failure))
        .collect::<CliResult<_>>()?;
    let source = match args.source {
        BuildSource::Pypi => Source::Pypi {
            index_url: index_url.to_owned(),
        },
        BuildSource::Nvidia => Source::Nvidia {
            base_url: mirror_url(args.base_url.as_deref()),
        },
    };
    Ok(resolve::Request {
        packages,
        source,
        cuda: release.as_str().to_owned(),
        system: args
            .system
            .clone()
            .unwrap_or_else(|| host_system().to_owned()),
        prereleases: args.pre,
        dependencies: !args.no_deps,
        all: args.all,
        download_for_metadata: !args.dry_run,
        jobs: args.jobs,
    })
}

/// The release and what was brought, on standard error.
fn tell(resolution: &Resolution, output: Output) {
    if let Some(from) = &resolution.release_from {
        output.detail(format!("CUDA {} from {from}", resolution.cuda));
    }
    for note in &resolution.notes {
        output.detail(note);
    }
    for resolved in &resolution.packages {
        if !resolved.required_by.is_empty() {
            output.detail(format!(
                "{} {}: {}",
                resolved.package,
                resolved.version,
                because(&resolved.required_by)
            ));
        }
    }
}

/// `required by cudnn, loaded by libcusolver`.
fn because(requirers: &[Requirer]) -> String {
    let words: Vec<String> = requirers
        .iter()
        .map(|r| match r.why {
            Why::Declared => format!("required by {}", r.package),
            Why::Loads => format!("needed by {}'s libraries", r.package),
            Why::Library => format!("provides a library {} needs", r.package),
        })
        .collect();
    words.join(", ")
}

/// One line per missing library, naming the package that would provide it.
fn missing_lines(missing: &[Missing], request: &resolve::Request) -> Vec<String> {
    let major = cuda_major(&request.cuda).unwrap_or(13);
    missing
        .iter()
        .zip(providers_for(missing, major))
        .map(|(m, provider)| {
            let offer = provider.map_or_else(
                || "no package of NVIDIA's releases is known to have it".to_owned(),
                |p| format!("{p} provides it"),
            );
            format!(
                "{}: {} needs {}, which no package of the set provides ({offer})",
                m.package, m.file, m.library
            )
        })
        .collect()
}

/// Every library no package provides, at once: exit 1.
fn report_missing(
    missing: &[Missing],
    request: &resolve::Request,
    output: Output,
) -> CliResult<Exit> {
    for line in missing_lines(missing, request) {
        output.error(line);
    }
    let major = cuda_major(&request.cuda).unwrap_or(13);
    if output.json {
        let unresolved = missing
            .iter()
            .zip(providers_for(missing, major))
            .map(|(m, provider)| json::MissingReport::of(m, provider))
            .collect();
        Output::print_json(&json::UnresolvedReport { unresolved })?;
    }
    Ok(Exit::Problems)
}

/// `--dry-run`: what would be fetched (and whether it is cached) and built.
fn show_plan(fetcher: &Fetcher, resolution: &Resolution, output: Output) -> CliResult<Exit> {
    let place_of = |r: &Resolved| match &r.origin {
        Origin::Remote(request) => (
            request.url.clone(),
            fetcher
                .cached_path(&request.sha256)
                .is_ok_and(|path| path.is_file()),
        ),
        Origin::Local(path) => (path.display().to_string(), false),
    };
    if output.json {
        let planned: Vec<json::PlannedReport> = resolution
            .packages
            .iter()
            .map(|r| {
                let (source, cached) = place_of(r);
                json::PlannedReport {
                    cached,
                    package: &r.package,
                    required_by: r.required_by.iter().map(|by| by.package.as_str()).collect(),
                    source,
                    version: &r.version,
                }
            })
            .collect();
        Output::print_json(&planned)?;
        return Ok(Exit::Success);
    }
    let mut text = String::new();
    for r in &resolution.packages {
        let (place, cached) = place_of(r);
        let why = if r.required_by.is_empty() {
            String::new()
        } else {
            format!("  ({})", because(&r.required_by))
        };
        let _ = writeln!(
            text,
            "{} {}  {place}{}{why}",
            r.package,
            r.version,
            if cached { "  (cached)" } else { "" }
        );
    }
    let _ = writeln!(
        text,
        "then: unpack, split, resolve needed libraries across {}, set runpaths, add to the store",
        match resolution.packages.len() {
            1 => "the package".to_owned(),
            n => format!("these {n} packages"),
        }
    );
    Output::print(&text)?;
    Ok(Exit::Success)
}

/// How the resolved set is built: the driver folder, the GPUs checked (and pruned for),
/// jobs, roots.
fn build_options(
    args: &BuildArgs,
    capabilities: &[cudapkgs_caps::Capability],
) -> CliResult<Options> {
    let driver_dir = driver_dir(Some(&args.driver_dir))?.display().to_string();
    if args.prune && capabilities.is_empty() {
        return Err(CliError::new("--prune needs the GPUs to prune for")
            .with_hint("pass --gpu NAME or --capabilities LIST (or set CUDAPKGS_GPU, or [cuda] gpus in cudapkgs.toml)"));
    }
    let prune = args.prune.then(|| PruneRequest {
        capabilities: capabilities.to_vec(),
        keep_ptx: KeepPtx::Auto,
        driver_cuda: None,
    });
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
        rebuild: args.rebuild,
        prune,
    };
    Ok(options)
}

/// Every archive of the resolution, from the cache or downloaded; and how many were
/// downloaded now.
fn fetch_archives(
    fetcher: &Fetcher,
    resolution: &Resolution,
    jobs: usize,
    progress: &Bars,
    output: Output,
) -> (
    Vec<Result<std::path::PathBuf, cudapkgs_redist::Error>>,
    usize,
) {
    let phase = Instant::now();
    let downloads = resolution.downloads();
    let cached = downloads
        .iter()
        .filter(|download| {
            fetcher
                .cached_path(&download.sha256)
                .is_ok_and(|path| path.exists())
        })
        .count();
    let archives = fetcher.fetch_all(&downloads, jobs, progress);
    progress.finish();
    output.detail(format!(
        "fetched {} ({cached} cached) in {}",
        count(downloads.len(), "archive", "archives"),
        seconds(phase)
    ));
    (archives, downloads.len() - cached)
}

/// The last line of a build: what it made, how big, how long, what it downloaded.
fn summary(
    store: &cudapkgs_store::store::Store,
    built: &[Built],
    downloaded: usize,
    started: Instant,
) -> String {
    // Sizes as the store registered them; a path it cannot tell counts nothing.
    let bytes: u64 = built
        .iter()
        .flat_map(|package| &package.outputs)
        .filter_map(|(_, path)| store.info(path).ok().flatten())
        .map(|info| info.nar_size)
        .sum();
    format!(
        "built {} ({}) in {}, {} downloaded",
        count(built.len(), "package", "packages"),
        crate::units::bytes(bytes),
        seconds(started),
        downloaded
    )
}

/// `7.2 s`, the time since `since`.
fn seconds(since: Instant) -> String {
    format!("{:.1} s", since.elapsed().as_secs_f64())
}

fn report(built: &[Built], resolution: &Resolution, output: Output) -> CliResult<Exit> {
    let reused = built.iter().filter(|b| b.reused).count();
    if reused > 0 {
        let packages = if reused == 1 { "package" } else { "packages" };
        output.note(format!(
            "{reused} {packages} already built: the store records a build of these inputs (--rebuild builds again)"
        ));
    }
    for package in built {
        for (output_name, done) in &package.pruned {
            if done.files > 0 {
                output.note(format!(
                    "{} {output_name}: pruned {} ({})",
                    package.package,
                    crate::units::bytes(done.removed_bytes),
                    count(done.files, "file", "files")
                ));
            }
            for (file, why) in &done.refused {
                output.warn(format!(
                    "{}: {output_name}/{file} left whole: {why}",
                    package.package
                ));
            }
        }
        for (root, was) in &package.repointed {
            output.warn(format!(
                "root {root} now holds this build of {} {}; what it held ({was}) stays rooted as {}",
                package.package,
                package.version,
                cudapkgs_store::gc::own_root_name(was)
            ));
        }
        for (capability, file, kernel) in package.targets.missing.iter().take(5) {
            output.warn(format!(
                "{}: {file}: {} has no image for {capability}",
                package.package,
                crate::render::demangle(kernel)
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
        let packages: Vec<json::BuiltReport> = built
            .iter()
            .map(|b| {
                let resolved = resolution.packages.iter().find(|r| r.package == b.package);
                json::BuiltReport::of(b, resolved)
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
