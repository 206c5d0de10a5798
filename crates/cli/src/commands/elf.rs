//! `cudapkgs elf`: the dynamic-linking view of files and trees, and where each needed
//! library resolves.

use std::fmt::Write as _;
use std::path::Path;

use cudapkgs_elf::loads::load_names;
use cudapkgs_elf::resolve::{
    Resolved, SearchPaths, Via, extra_loads, resolve_loads, resolve_needed,
};
use cudapkgs_elf::{DynamicInfo, read_dynamic};
use cudapkgs_tree::{self as tree, Outcome, Visited, Walk};
use serde::Serialize;

use crate::cli::{ElfArgs, TextOrJson};
use crate::error::{CliResult, Exit};
use crate::output::{Output, schema_of};

/// One file's view, as JSON shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct FileView {
    #[serde(flatten)]
    info: DynamicInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved: Option<Vec<Resolved>>,
    /// Libraries it may load at run time (`dlopen`), by the names in its bytes, beside
    /// the needed ones.
    loads: Vec<String>,
    /// Where each of `loads` would be found, with `--resolve`.
    #[serde(skip_serializing_if = "Option::is_none")]
    loads_resolved: Option<Vec<Resolved>>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct FileJson<'a> {
    path: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    view: Option<&'a FileView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, Serialize, Default, schemars::JsonSchema)]
struct Summary {
    files: usize,
    with_dynamic_section: usize,
    /// Needed libraries not found (driver libraries excepted), with `--resolve`.
    unresolved: usize,
    /// Driver libraries that resolve into a stub folder, with `--resolve`.
    stubs: usize,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Report<'a> {
    files: Vec<FileJson<'a>>,
    summary: Summary,
}

fn is_elf(magic: &[u8]) -> bool {
    magic.starts_with(b"\x7fELF")
}

fn is_problem(resolved: &Resolved) -> bool {
    (resolved.path.is_none() && !resolved.driver) || (resolved.driver && resolved.stub)
}

/// The JSON document of `elf`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("elf", schema_of::<Report>())]
}

pub fn run(args: &ElfArgs, output: Output) -> CliResult<Exit> {
    let search = SearchPaths {
        ld_library_path: args.ld_library_path.clone(),
        system: if args.no_system {
            Vec::new()
        } else {
            SearchPaths::system_folders()
        },
        ..SearchPaths::default()
    };
    // Inside a zip, $ORIGIN means nothing: wheels are only opened for the plain view.
    let walk = Walk {
        wants: is_elf,
        zips: !args.resolve,
    };
    let single = args.paths.len() == 1 && !args.paths[0].is_dir();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let visited = tree::visit(&args.paths, walk, threads, |source, input| {
        let info = read_dynamic(input.bytes).map_err(|error| error.to_string())?;
        let path = Path::new(&source.display);
        let resolved = args.resolve.then(|| resolve_needed(path, &info, &search));
        let all_loads = if info.has_dynamic {
            load_names(input.bytes)
        } else {
            Vec::new()
        };
        let loads = extra_loads(path, &info, &all_loads);
        let loads_resolved = args
            .resolve
            .then(|| resolve_loads(path, &info, &loads, &search));
        Ok(FileView {
            loads: loads.iter().map(ToString::to_string).collect(),
            info,
            resolved,
            loads_resolved,
        })
    });

    let mut summary = Summary::default();
    for file in &visited {
        if let Outcome::Done(view) = &file.outcome {
            summary.files += 1;
            summary.with_dynamic_section += usize::from(view.info.has_dynamic);
            for resolved in view.resolved.iter().flatten() {
                summary.unresolved += usize::from(resolved.path.is_none() && !resolved.driver);
                summary.stubs += usize::from(resolved.driver && resolved.stub);
            }
        }
    }

    if output.json || args.format == TextOrJson::Json {
        let files = visited
            .iter()
            .map(|file| FileJson {
                path: &file.source.display,
                view: match &file.outcome {
                    Outcome::Done(view) => Some(view),
                    _ => None,
                },
                error: match &file.outcome {
                    Outcome::Failed(message) => Some(message),
                    _ => None,
                },
            })
            .collect();
        Output::print_json(&Report { files, summary })?;
    } else {
        Output::print(&human(&visited, single, args.resolve))?;
    }
    let mut failed = false;
    for file in &visited {
        if let Outcome::Failed(message) = &file.outcome {
            output.error(format!("{}: {message}", file.source.display));
            failed = true;
        }
    }
    Ok(if failed {
        Exit::Usage
    } else if summary.unresolved > 0 || summary.stubs > 0 {
        Exit::Problems
    } else {
        Exit::Success
    })
}

fn human(visited: &[Visited<FileView>], single: bool, resolve: bool) -> String {
    let mut out = String::new();
    let mut problems = 0;
    for file in visited {
        let Outcome::Done(view) = &file.outcome else {
            continue;
        };
        let info = &view.info;
        if !single && !info.has_dynamic {
            continue;
        }
        let _ = writeln!(
            out,
            "{}: {}, {} {}",
            file.source.display,
            info.kind.describe(),
            info.class,
            info.machine_name
        );
        let field = |out: &mut String, label: &str, value: &Option<String>| {
            if let Some(value) = value {
                let _ = writeln!(out, "  {label:<12} {value}");
            }
        };
        field(&mut out, "interpreter", &info.interpreter);
        field(&mut out, "soname", &info.soname);
        field(&mut out, "rpath", &info.rpath);
        field(&mut out, "runpath", &info.runpath);
        if !info.has_dynamic {
            let _ = writeln!(out, "  no dynamic section");
        }
        let width = info.needed.iter().map(String::len).max().unwrap_or(0);
        for (index, name) in info.needed.iter().enumerate() {
            let label = if index == 0 { "needed" } else { "" };
            let detail = view
                .resolved
                .as_ref()
                .and_then(|all| all.get(index))
                .map(|resolved| {
                    problems += usize::from(is_problem(resolved));
                    format!(" → {}", where_found(resolved))
                })
                .unwrap_or_default();
            let line = format!("  {label:<12} {name:<width$}{detail}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        // A run-time load found nowhere is not a problem: the program may go without it
        // (or the name sits in a message); it is shown so that a missing one is seen.
        // A stem the code completes with a version (`libnvrtc.so.`) is shown as such.
        let shown = |name: &str| {
            if name.ends_with(".so.") {
                format!("{name}*")
            } else {
                name.to_owned()
            }
        };
        let loads = view.loads_resolved.iter().flatten();
        let width = loads
            .clone()
            .map(|l| shown(&l.name).len())
            .max()
            .unwrap_or(0);
        for (index, resolved) in loads.enumerate() {
            problems += usize::from(resolved.driver && resolved.stub);
            let label = if index == 0 { "dlopen" } else { "" };
            let found = if resolved.path.is_some() || resolved.driver {
                where_found(resolved)
            } else {
                "not found (loaded at run time when present)".to_owned()
            };
            let _ = writeln!(
                out,
                "  {label:<12} {:<width$} → {found}",
                shown(&resolved.name)
            );
        }
    }
    if resolve && !single {
        let _ = writeln!(out, "{problems} problems");
    }
    out
}

fn where_found(resolved: &Resolved) -> String {
    match (&resolved.path, resolved.via) {
        (Some(path), Some(via)) => {
            let how = match via {
                Via::Path => "as written",
                Via::Rpath => "rpath",
                Via::LdLibraryPath => "LD_LIBRARY_PATH",
                Via::Runpath => "runpath",
                Via::System => "system",
            };
            if resolved.driver && resolved.stub {
                format!("{} ({how}) PROBLEM: a stub, not the driver", path.display())
            } else {
                format!("{} ({how})", path.display())
            }
        }
        _ if resolved.driver => "not found (driver library: comes from the host driver)".to_owned(),
        _ => "NOT FOUND".to_owned(),
    }
}
