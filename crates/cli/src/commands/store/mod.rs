//! `cudapkgs nar` and `cudapkgs store`: NAR serialisation, hashes and store paths,
//! compatible with Nix.

mod files;
mod root;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use cudapkgs_nix::{base32, hash, nar, store_path};
use cudapkgs_store::restore;
use cudapkgs_store::store::{Access, PathInfo, Problem, Scan, Store, Verification};
use schemars::JsonSchema;
use serde::Serialize;

use crate::cli::{FileTreeArgs, NarCommand, PathInfoArgs, StoreCommand, StoreLocation};
use crate::context::{file_roots, open_store, open_store_for, resolve_all, store_failure};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::render::{HopReport, count};
use crate::settings::{loaded, process_env, store_folder, tell_sources};

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct NarHashReport {
    path: String,
    /// `sha256:<base-32>`, as in narinfo files and the Nix database.
    nar_hash: String,
    nar_size: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct StorePathReport {
    path: String,
    store_path: String,
    nar_hash: String,
    nar_size: u64,
}

/// `cudapkgs nar restore --json`.
#[derive(Debug, Serialize, JsonSchema)]
struct RestoredReport<'a> {
    /// The folder or file written.
    restored: &'a Path,
}

pub fn nar(command: &NarCommand, output: Output) -> CliResult<Exit> {
    match command {
        NarCommand::Dump { path } => {
            // Bytes on standard output cannot be taken back: what can be refused is
            // refused before the first one (a missing path, a FIFO, an unreadable file).
            nar::check_dumpable(path).map_err(|error| store_failure(&error.into()))?;
            if output.json {
                return Err(CliError::new(
                    "nar dump writes the NAR itself to standard output, which is no JSON document",
                )
                .with_hint("drop --json"));
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            if let Err(error) = nar::dump(path, &mut out) {
                // What is still buffered is not written after all.
                let _ = out.into_parts();
                return Err(store_failure(&error.into()));
            }
            out.flush().map_err(|error| {
                CliError::new("cannot write to standard output").caused_by(&error)
            })?;
            Ok(Exit::Success)
        }
        NarCommand::Restore { target } => {
            let stdin = std::io::stdin();
            let input = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
            restore::restore(input, target).map_err(|error| store_failure(&error))?;
            if output.json {
                Output::print_json(&RestoredReport { restored: target })?;
            }
            Ok(Exit::Success)
        }
        NarCommand::Hash { paths } => {
            let mut hashes = Vec::new();
            for path in paths {
                let (hash, size) = nar::hash(path).map_err(|error| store_failure(&error.into()))?;
                hashes.push(NarHashReport {
                    path: path.display().to_string(),
                    nar_hash: format!("sha256:{}", base32::encode(&hash)),
                    nar_size: size,
                });
            }
            if output.json {
                Output::print_json(&hashes)?;
            } else {
                let mut text = String::new();
                for h in &hashes {
                    let _ = writeln!(text, "{}  {}  {}", h.nar_hash, h.nar_size, h.path);
                }
                Output::print(&text)?;
            }
            Ok(Exit::Success)
        }
    }
}

pub fn store(command: &StoreCommand, output: Output) -> CliResult<Exit> {
    match command {
        StoreCommand::Path {
            path,
            name,
            store_dir,
        } => {
            let name = match name {
                Some(name) => name.clone(),
                None => default_name(path)?,
            };
            let store_dir = store_folder(store_dir.as_deref(), &process_env, loaded().0)?;
            tell_sources(output, &[("store dir", &store_dir.source)]);
            let store_dir = store_dir.value;
            let (hash, size) = nar::hash(path).map_err(|error| store_failure(&error.into()))?;
            let store_path =
                store_path::source_path(store_dir.trim_end_matches('/'), &name, &hash, &[], false)
                    .map_err(|error| {
                        store_failure(&error.into()).with_hint("choose another name with --name")
                    })?;
            let result = StorePathReport {
                path: path.display().to_string(),
                store_path,
                nar_hash: format!("sha256:{}", base32::encode(&hash)),
                nar_size: size,
            };
            if output.json {
                Output::print_json(&result)?;
            } else {
                Output::print(&format!("{}\n", result.store_path))?;
            }
            Ok(Exit::Success)
        }
        StoreCommand::Add {
            path,
            name,
            scan_references,
            input,
            gc_root,
            location,
        } => {
            let scan = if !input.is_empty() {
                Scan::ClosureOf(input.clone())
            } else if *scan_references {
                Scan::EveryValidPath
            } else {
                Scan::Nothing
            };
            let name = match name {
                Some(name) => name.clone(),
                None => default_name(path)?,
            };
            // A source that cannot be stored is refused before the store is touched.
            nar::check_dumpable(path).map_err(|error| store_failure(&error.into()))?;
            let mut store = open_store(location)?;
            let info = store
                .add_with_info(path, &name, &scan, gc_root.as_deref())
                .map_err(|error| store_failure(&error))?;
            if output.json {
                Output::print_json(&info_report(&info))?;
            } else {
                Output::print(&format!("{}\n", info.path))?;
            }
            Ok(Exit::Success)
        }
        StoreCommand::Verify { repair, location } => verify(*repair, location, output),
        StoreCommand::Info(args) => path_info(args, output),
        StoreCommand::Root(command) => root::root(command, output),
    }
}

/// `cudapkgs store info` and `cudapkgs path-info`: as `nix path-info`, with its JSON keys.
pub fn path_info(args: &PathInfoArgs, output: Output) -> CliResult<Exit> {
    let store = open_store_for(&args.location, Access::ReadOnly)?;
    let named = resolve_all(&store, &args.paths)?;
    let mut infos = Vec::new();
    for path in &named {
        let info = store.info(path).map_err(|error| store_failure(&error))?;
        let info = info.ok_or_else(|| {
            CliError::new(format!("{path} is not a valid path of this store"))
                .with_hint("add it with `cudapkgs store add`, or check --store-dir and --root")
        })?;
        infos.push(info);
    }
    if args.recursive {
        // Every path of the closures, once, in the order Nix prints them: by path.
        let roots = store
            .parse_paths(&named)
            .map_err(|error| store_failure(&error))?;
        infos = store
            .closure(&roots)
            .map_err(|error| store_failure(&error))?;
        infos.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let mut reports: Vec<InfoReport> = infos.iter().map(info_report).collect();
    for report in &mut reports {
        report.gpu_checks = store
            .gpu_checks(report.path)
            .map_err(|error| store_failure(&error))?;
    }
    if args.closure_size {
        for report in &mut reports {
            let closure = store
                .parse_path(report.path)
                .and_then(|path| store.closure(&[path]))
                .map_err(|error| store_failure(&error))?;
            report.closure_size = Some(closure.iter().map(|info| info.nar_size).sum());
        }
    }
    if output.json {
        Output::print_json(&reports)?;
    } else {
        Output::print(&info_text(&infos, &reports, output))?;
    }
    Ok(Exit::Success)
}

fn info_text(infos: &[PathInfo], reports: &[InfoReport], output: Output) -> String {
    let mut text = String::new();
    for (info, r) in infos.iter().zip(reports) {
        let _ = writeln!(
            text,
            "{}\n  nar hash: {}\n  nar size: {}",
            r.path,
            info.nar_hash,
            output.size(r.nar_size)
        );
        if let Some(size) = r.closure_size {
            let _ = writeln!(text, "  closure size: {}", output.size(size));
        }
        for reference in r.references {
            let _ = writeln!(text, "  reference: {reference}");
        }
        for check in &r.gpu_checks {
            let _ = writeln!(
                text,
                "  gpu check {}: {} on {} ({}, {}, CUDA {}) in {:.1} s: {}",
                check.name,
                if check.passed { "passed" } else { "FAILED" },
                check.gpu,
                check.capability,
                check.uuid,
                check.driver,
                check.seconds,
                check.detail
            );
        }
    }
    text
}

/// `cudapkgs store verify --json`.
#[derive(Debug, Serialize, JsonSchema)]
struct VerifyReport<'a> {
    /// Registered paths checked.
    valid_paths: usize,
    /// Each problem found, as the text prints it.
    problems: &'a [String],
}

/// The JSON documents of the store commands (`nar`, `store`, `path-info`, `closure`,
/// `why`), by command; on folders and files, `closure` and `why` print others.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    let mut all = vec![
        ("path-info", schema_of::<Vec<InfoReport>>()),
        ("closure", schema_of::<ClosureReport>()),
        ("closure-files", schema_of::<files::TreeClosureReport>()),
        ("why", schema_of::<WhyReport>()),
        ("why-files", schema_of::<files::WhyFilesReport>()),
        ("nar-hash", schema_of::<Vec<NarHashReport>>()),
        ("nar-restore", schema_of::<RestoredReport>()),
        ("store-path", schema_of::<StorePathReport>()),
        ("store-add", schema_of::<InfoReport>()),
        ("store-verify", schema_of::<VerifyReport>()),
    ];
    all.extend(root::schemas());
    all
}

/// `cudapkgs why --json` on store paths: the chain, or null when there is none.
#[derive(Debug, Serialize, JsonSchema)]
struct WhyReport<'a> {
    chain: Option<Vec<HopReport<'a>>>,
}

/// A problem `store verify` found, with the flag that mends it where one does.
fn problem_line(problem: &Problem) -> String {
    match problem {
        Problem::Unregistered { removed: false, .. } => format!("{problem} (--repair removes it)"),
        other => other.to_string(),
    }
}

/// `cudapkgs store verify`.
fn verify(repair: bool, location: &StoreLocation, output: Output) -> CliResult<Exit> {
    let access = if repair {
        Access::Existing
    } else {
        Access::ReadOnly
    };
    let store = open_store_for(location, access)?;
    let progress = crate::progress::Bars::new(output);
    let Verification { checked, problems } = store
        .verify(repair, &progress)
        .map_err(|error| store_failure(&error))?;
    let lines: Vec<String> = problems.iter().map(problem_line).collect();
    if output.json {
        Output::print_json(&VerifyReport {
            valid_paths: checked,
            problems: &lines,
        })?;
    } else {
        let mut text = String::new();
        for line in &lines {
            let _ = writeln!(text, "{line}");
        }
        let _ = writeln!(
            text,
            "{} checked, {}",
            count(checked, "valid path", "valid paths"),
            count(lines.len(), "problem", "problems")
        );
        Output::print(&text)?;
    }
    let unrepaired = problems
        .iter()
        .any(|problem| !matches!(problem, Problem::Unregistered { removed: true, .. }));
    Ok(if unrepaired {
        Exit::Problems
    } else {
        Exit::Success
    })
}

#[derive(Debug, Serialize, JsonSchema)]
struct ClosureReport<'a> {
    paths: Vec<InfoReport<'a>>,
    total_nar_size: u64,
    /// The treemap page written, with `--html`.
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<String>,
}

/// `cudapkgs closure`: every path the roots need, biggest first, and the total; with
/// `--html`, also the treemap page.
pub fn closure(
    paths: &[String],
    html: Option<&Path>,
    tree: &FileTreeArgs,
    location: &StoreLocation,
    output: Output,
) -> CliResult<Exit> {
    if let Some(page) = html.filter(|page| page.is_dir()) {
        return Err(CliError::new(format!(
            "--html {}: a folder, not a file to write the treemap to",
            page.display()
        ))
        .with_hint(format!(
            "name the page to write, such as {}",
            page.join("closure.html").display()
        )));
    }
    if paths
        .iter()
        .any(|path| cudapkgs_check::files::names_a_file(path))
    {
        return tree_closure(paths, html, tree, output);
    }
    let store = open_store_for(location, Access::ReadOnly)?;
    let paths = resolve_all(&store, paths)?;
    let checked = store.parse_paths(&paths);
    let mut closure = checked
        .and_then(|paths| store.closure(&paths))
        .map_err(|error| {
            store_failure(&error)
                .with_hint("add it with `cudapkgs store add`, or check --store-dir and --root")
        })?;
    closure.sort_by(|a, b| {
        b.nar_size
            .cmp(&a.nar_size)
            .then_with(|| a.path.cmp(&b.path))
    });
    if let Some(page) = html {
        refuse_page_in_store(&store, page)?;
        write_treemap(&store, &paths, &closure, page)?;
        output.note(format!("treemap written to {}", page.display()));
    }
    let report = ClosureReport {
        total_nar_size: closure.iter().map(|info| info.nar_size).sum(),
        paths: closure.iter().map(info_report).collect(),
        html: html.map(|page| page.display().to_string()),
    };
    if output.json {
        Output::print_json(&report)?;
    } else {
        let mut text = String::new();
        for info in &report.paths {
            let _ = writeln!(text, "{:>10}  {}", output.size(info.nar_size), info.path);
        }
        let _ = writeln!(
            text,
            "{:>10}  total, {}",
            output.size(report.total_nar_size),
            count(report.paths.len(), "path", "paths")
        );
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}

/// `why ./FILE DEP`: how a file's run-time closure reaches DEP (a file, or a library's
/// file name), each hop the file and the name it loads.
fn why_file(
    file: &Path,
    dependency: &Path,
    tree: &FileTreeArgs,
    output: Output,
) -> CliResult<Exit> {
    let (roots, search, threads) = file_roots(&[file.display().to_string()], tree, output)?;
    let inputs = cudapkgs_check::files::Input::read_all(&roots)
        .map_err(|error| CliError::from_error(&error))?;
    let graph = cudapkgs_check::files::FileGraph::build(&inputs, &search, threads)
        .map_err(|error| CliError::from_error(&error))?;
    let from = graph
        .node(file)
        .ok_or_else(|| CliError::new(format!("{}: no dynamic ELF file", file.display())))?;
    // A name without a folder is a library of the closure by its file name.
    let to = if dependency.components().count() == 1 {
        graph
            .closure(&[from])
            .into_iter()
            .find(|&node| graph.nodes[node].path.file_name() == Some(dependency.as_os_str()))
    } else {
        graph.node(dependency)
    };
    let chain = to.and_then(|to| graph.why(from, to));
    let Some(chain) = chain else {
        if output.json {
            Output::print_json(&files::WhyFilesReport { chain: None })?;
        } else {
            Output::print(&format!(
                "{} is not in the run-time closure of {}\n",
                dependency.display(),
                file.display()
            ))?;
        }
        return Ok(Exit::Problems);
    };
    if output.json {
        let hops = chain
            .iter()
            .map(|(node, edge)| files::FileHopReport {
                at_run_time: edge.loaded,
                file: &graph.nodes[*node].path,
                loads: &edge.name,
                next: &graph.nodes[edge.to].path,
            })
            .collect();
        Output::print_json(&files::WhyFilesReport { chain: Some(hops) })?;
    } else {
        let mut text = format!("{}\n", graph.nodes[from].path.display());
        for (_, edge) in &chain {
            let how = if edge.loaded {
                "loads at run time"
            } else {
                "needs"
            };
            let _ = writeln!(
                text,
                "  {how} {} -> {}",
                edge.name,
                graph.nodes[edge.to].path.display()
            );
        }
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}

/// `closure ./FOLDER…`: the run-time closure of plain folders and files.
fn tree_closure(
    paths: &[String],
    html: Option<&Path>,
    tree: &FileTreeArgs,
    output: Output,
) -> CliResult<Exit> {
    let (roots, search, threads) = file_roots(paths, tree, output)?;
    let closure = cudapkgs_check::files::tree_closure(&roots, &search, threads)
        .map_err(|error| CliError::from_error(&error))?;
    if let Some(page) = html {
        let treemap = cudapkgs_check::treemap::gather_tree(&closure);
        write_page(page, &cudapkgs_check::treemap::render_html(&treemap))?;
        output.note(format!("treemap written to {}", page.display()));
    }
    if output.json {
        let report = files::TreeClosureReport::of(&closure, html);
        return Output::print_json(&report).map(|()| Exit::Success);
    }
    let mut text = String::new();
    for distribution in &closure.by_distribution {
        let _ = writeln!(
            text,
            "{:>10}  {} ({}){}",
            output.size(distribution.bytes),
            distribution.name.as_deref().unwrap_or("(no distribution)"),
            files_count(distribution.files),
            device_code_text(&distribution.device_code, ", device code")
        );
        for file in closure.files.iter().filter(|file| {
            file.distribution == distribution.name && !file.device_code.by_arch.is_empty()
        }) {
            let _ = writeln!(
                text,
                "{:>10}    {}{}",
                output.size(file.bytes),
                closure.shown(&file.path).display(),
                device_code_text(&file.device_code.by_arch, ", device code")
            );
        }
    }
    let _ = writeln!(
        text,
        "{:>10}  total, {}{}",
        output.size(closure.total_bytes()),
        count(closure.files.len(), "file", "files"),
        device_code_text(&closure.device_code, "; device code")
    );
    for (library, places) in &closure.duplicates {
        let _ = writeln!(text, "{library} is in {} places:", places.len());
        for place in places {
            let _ = writeln!(text, "  {}", place.display());
        }
    }
    for (file, packages) in &closure.shared {
        let _ = writeln!(
            text,
            "{} is listed by {}: installed over each other",
            closure.shown(file).display(),
            packages.join(" and ")
        );
    }
    if !closure.unreached.is_empty() {
        let _ = writeln!(
            text,
            "{} ELF files no program or module here loads (--json lists them)",
            closure.unreached.len()
        );
    }
    Output::print(&text)?;
    Ok(Exit::Success)
}

fn files_count(files: usize) -> String {
    if files == 1 {
        "1 file".to_owned()
    } else {
        format!("{files} files")
    }
}

/// `, device code 1.2 GiB: sm_90 800 MiB, sm_80 400 MiB` (with `lead` first), or nothing
/// for no device code.
fn device_code_text(totals: &[cudapkgs_fatbin::ArchTotal], lead: &str) -> String {
    /// Architectures named on a line; the rest are counted.
    const SHOWN: usize = 6;
    if totals.is_empty() {
        return String::new();
    }
    let all: u64 = totals.iter().map(|total| total.stored_bytes).sum();
    let mut each: Vec<String> = totals
        .iter()
        .take(SHOWN)
        .map(|total| {
            format!(
                "{} {}",
                cudapkgs_check::device::label(total),
                crate::units::bytes(total.stored_bytes)
            )
        })
        .collect();
    if totals.len() > SHOWN {
        each.push(format!("{} more", totals.len() - SHOWN));
    }
    format!("{lead} {}: {}", crate::units::bytes(all), each.join(", "))
}

/// Refuses a page to be written inside the store folder (into a store path, or over
/// the store's mark): a store is never written by a query.
fn refuse_page_in_store(store: &Store, page: &Path) -> CliResult<()> {
    let folder = store.physical(store.folder());
    let Ok(folder) = std::fs::canonicalize(&folder) else {
        return Ok(());
    };
    let parent = page
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let inside = std::fs::canonicalize(parent).is_ok_and(|parent| parent.starts_with(&folder));
    if inside {
        return Err(CliError::new(format!(
            "--html {}: inside the store folder {}, which a query never writes",
            page.display(),
            folder.display()
        ))
        .with_hint("write the page somewhere else"));
    }
    Ok(())
}

/// Reads the closure's files and device code and writes the treemap page at `page`,
/// whole or not at all.
fn write_treemap(
    store: &Store,
    roots: &[String],
    closure: &[PathInfo],
    page: &Path,
) -> CliResult<()> {
    let treemap =
        cudapkgs_check::treemap::gather(store, roots, closure).map_err(|error| match error {
            cudapkgs_check::Error::Store(error) => store_failure(&error),
            other => CliError::new(format!("cannot read the closure's files: {other}"))
                .with_hint("the treemap reads every file of the closure: run as a user who can"),
        })?;
    write_page(page, &cudapkgs_check::treemap::render_html(&treemap))
}

/// Writes the treemap page at `page`, whole or not at all.
fn write_page(page: &Path, html: &str) -> CliResult<()> {
    cudapkgs_tree::write_file_atomically(page, html.as_bytes()).map_err(|error| {
        let hint = match error.kind() {
            std::io::ErrorKind::NotFound => "create its folder first, or name a page elsewhere",
            _ => "name a page in a folder this user can write (--html FILE)",
        };
        CliError::new(format!("cannot write the treemap to {}", page.display()))
            .caused_by(&error)
            .with_hint(hint)
    })
}

/// `cudapkgs why`: the shortest reference chain from `path` to `dependency`.
pub fn why(
    path: &str,
    dependency: &str,
    tree: &FileTreeArgs,
    location: &StoreLocation,
    output: Output,
) -> CliResult<Exit> {
    if cudapkgs_check::files::names_a_file(path) {
        return why_file(Path::new(path), Path::new(dependency), tree, output);
    }
    let store = open_store_for(location, Access::ReadOnly)?;
    let path = &store.resolve(path).map_err(|error| store_failure(&error))?;
    let dependency = &store
        .resolve(dependency)
        .map_err(|error| store_failure(&error))?;
    let chain = cudapkgs_store::why::why(&store, path, dependency)
        .map_err(|error| store_failure(&error))?;
    let Some(chain) = chain else {
        if output.json {
            Output::print_json(&WhyReport { chain: None })?;
        } else {
            Output::print(&format!("{dependency} is not in the closure of {path}\n"))?;
        }
        return Ok(Exit::Problems);
    };
    let hops: Vec<HopReport> = chain.iter().map(HopReport::of).collect();
    if output.json {
        Output::print_json(&WhyReport { chain: Some(hops) })?;
    } else {
        let mut text = format!("{path}\n");
        for hop in &hops {
            let _ = writeln!(text, "{}", hop.line());
        }
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}

/// One path as `path-info --json` describes it, with the keys of `nix path-info --json`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct InfoReport<'a> {
    path: &'a str,
    /// SRI, `sha256-<base64>`, as `nix path-info --json` writes it.
    nar_hash: String,
    nar_size: u64,
    references: &'a [String],
    registration_time: i64,
    /// With `-S`: the NAR bytes of the path's closure.
    #[serde(skip_serializing_if = "Option::is_none")]
    closure_size: Option<u64>,
    /// The latest result of each `gpu-check` of the path on each GPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gpu_checks: Vec<cudapkgs_store::GpuCheckRecord>,
}

fn info_report(info: &PathInfo) -> InfoReport<'_> {
    InfoReport {
        path: &info.path,
        // The store writes only `sha256:<base-32>`; anything else is shown as it is.
        nar_hash: hash::sri_of_nix32(&info.nar_hash).unwrap_or_else(|| info.nar_hash.clone()),
        nar_size: info.nar_size,
        references: &info.references,
        registration_time: info.registration_time,
        closure_size: None,
        gpu_checks: Vec::new(),
    }
}

fn default_name(path: &Path) -> CliResult<String> {
    let absolute = std::fs::canonicalize(path)
        .map_err(|error| CliError::new(path.display().to_string()).caused_by(&error))?;
    absolute
        .file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::new(format!("{}: no file name to use", path.display()))
                .with_hint("pass --name")
        })
}
