//! `cudapkgs patch`: rewrite runpaths, needed libraries and sonames, file by file or
//! over a whole tree.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cudapkgs_elf::auto::{AutoOptions, AutoRunpath, Providers, TreeFile, plan_tree};
use cudapkgs_elf::loads::{LoadName, load_names};
use cudapkgs_elf::patch::{Changes, RunpathChange, plan, written_as_rpath};
use cudapkgs_elf::resolve::{SearchPaths, shrink_list};
use cudapkgs_elf::write::rewrite;
use cudapkgs_elf::{DynamicInfo, read_dynamic};
use cudapkgs_report::{Phase, Task};
use cudapkgs_tree::{self as tree, Mapped, Outcome, Walk};
use serde::Serialize;

use crate::cli::{PatchArgs, TextOrJson};
use crate::context::driver_dir;
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::progress::Bars;
use crate::render::count;

/// What happened to one file.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Change {
    path: String,
    before: Option<String>,
    after: Option<String>,
    changed: bool,
    /// The file grew by a region at its end (strings or tables that did not fit).
    grew: bool,
    /// The kinds of the search path before and after: "rpath" or "runpath".
    #[serde(skip)]
    kinds: (&'static str, &'static str),
    /// Each dynamic entry that changes, in the order the loader reads them.
    edits: Vec<Edit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One dynamic entry before and after: `soname`, `needed`, `rpath` or `runpath`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Edit {
    entry: &'static str,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Report {
    dry_run: bool,
    files: Vec<Change>,
}

fn is_elf(magic: &[u8]) -> bool {
    magic.starts_with(b"\x7fELF")
}

fn search_path(info: &DynamicInfo) -> Option<String> {
    info.runpath.clone().or_else(|| info.rpath.clone())
}

/// The JSON document of `patch`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("patch", schema_of::<Report>())]
}

pub fn run(args: &PatchArgs, output: Output) -> CliResult<Exit> {
    let replace_needed: Vec<(String, String)> = args
        .replace_needed
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    let has_edit = args.set_runpath.is_some()
        || args.add_runpath.is_some()
        || args.remove_runpath
        || args.shrink_runpath
        || args.force_rpath
        || !replace_needed.is_empty()
        || args.set_soname.is_some()
        || args.auto;
    if !has_edit {
        return Err(CliError::new("nothing to do: name a change")
            .with_hint("--set-runpath, --add-runpath, --remove-runpath, --shrink-runpath, --force-rpath, --replace-needed, --set-soname or --auto"));
    }
    let changes = if args.auto {
        match auto_changes(args, output)? {
            Ok(changes) => changes,
            Err(unresolved) => {
                // A check failed: report every missing library, write nothing.
                output.report_error(&unresolved);
                return Ok(Exit::Problems);
            }
        }
    } else {
        explicit_changes(args, &replace_needed)
    };

    let mut files = Vec::new();
    for (path, change) in changes {
        files.push(apply(&path, &change, args.dry_run));
    }
    let report = Report {
        dry_run: args.dry_run,
        files,
    };
    if output.json || args.format == TextOrJson::Json {
        Output::print_json(&report)?;
    } else {
        Output::print(&human(&report))?;
    }
    let failed = report.files.iter().filter(|f| f.error.is_some()).count();
    for file in report.files.iter().filter(|f| f.error.is_some()) {
        output.error(format!(
            "{}: {} (left untouched)",
            file.path,
            file.error.as_deref().unwrap_or_default()
        ));
    }
    Ok(if failed > 0 {
        Exit::Usage
    } else {
        Exit::Success
    })
}

/// The same edit for every named file, adjusted per file for --add and --shrink.
fn explicit_changes(
    args: &PatchArgs,
    replace_needed: &[(String, String)],
) -> Vec<(PathBuf, Result<Changes, String>)> {
    args.paths
        .iter()
        .map(|path| {
            let change = read_file(path).map(|(info, loads)| {
                let runpath = if let Some(value) = &args.set_runpath {
                    RunpathChange::Set(value.clone())
                } else if let Some(added) = &args.add_runpath {
                    let current = search_path(&info).unwrap_or_default();
                    let mut items: Vec<&str> =
                        current.split(':').filter(|i| !i.is_empty()).collect();
                    for item in added.split(':').filter(|i| !i.is_empty()) {
                        if !items.contains(&item) {
                            if args.prepend {
                                items.insert(0, item);
                            } else {
                                items.push(item);
                            }
                        }
                    }
                    RunpathChange::Set(items.join(":"))
                } else if args.remove_runpath {
                    RunpathChange::Remove
                } else if args.shrink_runpath {
                    let current = search_path(&info).unwrap_or_default();
                    let kept = shrink_list(&current, path, &info, &loads, &SearchPaths::default());
                    if kept.is_empty() {
                        RunpathChange::Remove
                    } else {
                        RunpathChange::Set(kept)
                    }
                } else {
                    RunpathChange::Keep
                };
                Changes {
                    runpath,
                    force_rpath: args.force_rpath,
                    replace_needed: replace_needed.to_vec(),
                    soname: args.set_soname.clone(),
                }
            });
            (path.clone(), change)
        })
        .collect()
}

/// The file's bytes, mapped: planning reads only headers and tables, never the whole
/// file.
fn map(path: &Path) -> Result<Mapped, String> {
    refuse_special(path)?;
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    Mapped::open(&file).map_err(|error| error.to_string())
}

/// Refuses a named special file before anything opens it: opening a FIFO blocks until
/// a writer comes, and a device has no ELF file to rewrite.
fn refuse_special(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path)
        .map_err(|error| error.to_string())?
        .file_type();
    let what = if kind.is_file() || kind.is_dir() {
        return Ok(());
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    Err(format!("{what}, not a regular file"))
}

/// A file's dynamic view and the libraries it may load at run time.
fn read_file(path: &Path) -> Result<(DynamicInfo, Vec<LoadName>), String> {
    let mapped = map(path)?;
    let info = read_dynamic(mapped.bytes()).map_err(|error| error.to_string())?;
    Ok((info, load_names(mapped.bytes())))
}

type PlannedChanges = Vec<(PathBuf, Result<Changes, String>)>;

/// Runpaths for every ELF file of the named trees; the inner error lists the needed
/// libraries found nowhere.
fn auto_changes(args: &PatchArgs, output: Output) -> CliResult<Result<PlannedChanges, CliError>> {
    let driver_dir = driver_dir(args.driver_dir.as_deref())?;
    let system = SearchPaths {
        system: if args.no_system {
            Vec::new()
        } else {
            SearchPaths::system_folders()
        },
        ..SearchPaths::default()
    };
    let lib_roots = lib_roots(&args.lib_roots)?;
    let mut all = Vec::new();
    for root in &args.paths {
        refuse_special(root)
            .map_err(|problem| CliError::new(format!("{}: {problem}", root.display())))?;
        let root = std::fs::canonicalize(root)
            .map_err(|error| CliError::new(root.display().to_string()).caused_by(&error))?;
        let walk = Walk {
            wants: is_elf,
            zips: false,
        };
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let progress = Bars::new(output);
        let task = Task::start(&progress, Phase::Inspect, &root.display().to_string(), None);
        let visited = tree::visit(
            std::slice::from_ref(&root),
            walk,
            threads,
            |source, input| {
                task.advance(1);
                let info = read_dynamic(input.bytes).map_err(|error| error.to_string())?;
                Ok(TreeFile {
                    path: PathBuf::from(&source.display),
                    loads: load_names(input.bytes),
                    info,
                })
            },
        );
        let mut files = Vec::new();
        for file in visited {
            match file.outcome {
                Outcome::Done(found) => files.push(found),
                Outcome::Failed(message) => {
                    return Err(CliError::new(format!("{}: {message}", file.source.display)));
                }
                Outcome::NoBinaries => {}
            }
        }
        let mut roots = vec![root.clone()];
        roots.extend(lib_roots.iter().cloned());
        let providers = Providers::index(&roots);
        let options = AutoOptions {
            tree: root,
            driver_dir: driver_dir.clone(),
            system: system.clone(),
            allow_unresolved: args.allow_unresolved.clone(),
        };
        all.extend(plan_tree(&files, &providers, &options));
    }

    refuse_needed_paths(&all)?;
    let unresolved: Vec<String> = all
        .iter()
        .flat_map(|plan| {
            plan.unresolved
                .iter()
                .map(move |name| format!("{}: {name}", plan.path.display()))
        })
        .collect();
    if !unresolved.is_empty() {
        let mut message = format!(
            "{} needed libraries are found nowhere; nothing was written:",
            unresolved.len()
        );
        for line in &unresolved {
            let _ = write!(message, "\n  {line}");
        }
        return Ok(Err(CliError::new(message).with_hint(
            "add the folders that provide them with --lib-root, or name them with --allow-unresolved",
        )));
    }
    Ok(Ok(all
        .into_iter()
        .map(|plan| {
            let runpath = if plan.runpath.is_empty() {
                RunpathChange::Remove
            } else {
                RunpathChange::Set(plan.runpath)
            };
            (
                plan.path,
                Ok(Changes {
                    runpath,
                    ..Changes::default()
                }),
            )
        })
        .collect()))
}

/// The `--lib-root` folders, absolute: their libraries' folders are written into runpaths
/// as they are, and a relative entry would be searched from each program's working
/// folder.
fn lib_roots(given: &[PathBuf]) -> CliResult<Vec<PathBuf>> {
    given
        .iter()
        .map(|root| {
            let refused = |problem: String| {
                CliError::new(format!("--lib-root `{}`: {problem}", root.display())).with_hint(
                    "name a folder that exists (a relative one is taken from the working folder)",
                )
            };
            let absolute =
                std::fs::canonicalize(root).map_err(|error| refused(error.to_string()))?;
            if !absolute.is_dir() {
                return Err(refused("not a folder".to_owned()));
            }
            Ok(absolute)
        })
        .collect()
}

/// A needed entry that is a path gets no runpath: the plans are refused whole.
fn refuse_needed_paths(plans: &[AutoRunpath]) -> CliResult<()> {
    let entries: Vec<String> = plans
        .iter()
        .flat_map(|plan| {
            plan.not_file_names
                .iter()
                .map(move |entry| format!("{}: `{entry}`", plan.path.display()))
        })
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    Err(CliError::new(format!(
        "{} needed entries are paths, not library file names; nothing was written:\n  {}",
        entries.len(),
        entries.join("\n  ")
    ))
    .with_hint(
        "a needed library must be a name without `/`: fix the entries with --replace-needed OLD NEW",
    ))
}

fn apply(path: &Path, change: &Result<Changes, String>, dry_run: bool) -> Change {
    let mut report = Change {
        path: path.display().to_string(),
        before: None,
        after: None,
        changed: false,
        grew: false,
        kinds: ("runpath", "runpath"),
        edits: Vec::new(),
        error: None,
    };
    let result = (|| -> Result<(), String> {
        let change = change.as_ref().map_err(Clone::clone)?;
        let mapped = map(path)?;
        let data = mapped.bytes();
        let before = read_dynamic(data).map_err(|error| error.to_string())?;
        report.before = search_path(&before);
        let kind = |rpath: bool| if rpath { "rpath" } else { "runpath" };
        let before_kind = kind(before.runpath.is_none() && before.rpath.is_some());
        report.kinds = match &change.runpath {
            RunpathChange::Remove => (before_kind, before_kind),
            _ => (
                before_kind,
                kind(written_as_rpath(&before, change.force_rpath)),
            ),
        };
        let plan = plan(data, change).map_err(|error| error.to_string())?;
        report.changed = plan.changed;
        report.grew = plan.grew;
        report.after = match &change.runpath {
            RunpathChange::Set(value) => Some(value.clone()),
            RunpathChange::Remove => None,
            RunpathChange::Keep => report.before.clone(),
        };
        if report.changed {
            report.edits = edits(&before, change, &report);
        }
        if !dry_run {
            rewrite(path, &plan).map_err(|error| format!("cannot rewrite: {error}"))?;
        }
        Ok(())
    })();
    report.error = result.err();
    report
}

/// What the plan changes, entry by entry: the soname, each renamed needed library and
/// the search path (its kind too).
fn edits(before: &DynamicInfo, change: &Changes, report: &Change) -> Vec<Edit> {
    let mut edits = Vec::new();
    if let Some(soname) = change
        .soname
        .as_ref()
        .filter(|new| before.soname.as_ref() != Some(*new))
    {
        edits.push(Edit {
            entry: "soname",
            before: before.soname.clone(),
            after: Some(soname.clone()),
        });
    }
    for (old, new) in &change.replace_needed {
        if old != new && before.needed.contains(old) {
            edits.push(Edit {
                entry: "needed",
                before: Some(old.clone()),
                after: Some(new.clone()),
            });
        }
    }
    let (before_kind, after_kind) = report.kinds;
    if report.before != report.after || before_kind != after_kind {
        edits.push(Edit {
            entry: after_kind,
            before: report.before.clone(),
            after: report.after.clone(),
        });
    }
    edits
}

fn human(report: &Report) -> String {
    let mut out = String::new();
    let verb = if report.dry_run {
        "would change"
    } else {
        "changed"
    };
    for file in &report.files {
        if file.error.is_some() {
            continue;
        }
        let show = |value: &Option<String>| {
            value
                .clone()
                .map_or_else(|| "(none)".to_owned(), |v| format!("'{v}'"))
        };
        if file.changed {
            let (before_kind, _) = file.kinds;
            let described: Vec<String> = file
                .edits
                .iter()
                .map(|edit| {
                    // A search path that changes kind names both: `rpath 'a' → runpath 'a'`.
                    let entry = if edit.entry == "rpath" || edit.entry == "runpath" {
                        before_kind
                    } else {
                        edit.entry
                    };
                    let after = if entry == edit.entry {
                        show(&edit.after)
                    } else {
                        format!("{} {}", edit.entry, show(&edit.after))
                    };
                    format!("{entry} {} → {after}", show(&edit.before))
                })
                .collect();
            let described = if described.is_empty() {
                "the dynamic section rewritten".to_owned()
            } else {
                described.join("; ")
            };
            let _ = writeln!(out, "{}: {verb}: {described}", file.path);
        } else {
            let _ = writeln!(out, "{}: unchanged", file.path);
        }
    }
    let changed = report
        .files
        .iter()
        .filter(|f| f.changed && f.error.is_none())
        .count();
    let _ = writeln!(
        out,
        "{changed} of {} {verb}",
        count(report.files.len(), "file", "files")
    );
    out
}
