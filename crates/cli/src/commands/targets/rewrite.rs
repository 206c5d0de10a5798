//! `cudapkgs targets rewrite`: the places that force targets, made to state the request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cudapkgs_targets::{FilePlan, Origin, SourceFile};
use serde::Serialize;

use super::scan::FindingJson;
use super::{RequestJson, RewriteArgs, json, read_input, request};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::settings::{Config, EnvLookup};

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct RewriteJson {
    request: RequestJson,
    rewritten: Vec<FindingJson>,
    manual: Vec<ManualJson>,
    files_changed: Vec<String>,
    /// Where the files were written: SRC, the --out copy, or nowhere (--patch, or
    /// refused).
    written_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct ManualJson {
    file: String,
    line: usize,
    kind: &'static str,
    reason: String,
}

/// The JSON document of `targets rewrite`.
pub(super) fn schema() -> (&'static str, schemars::Schema) {
    ("targets-rewrite", schema_of::<RewriteJson>())
}

pub(super) fn run(
    args: &RewriteArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    let request = request(&args.request, output, config, env, None, false)?.ok_or_else(|| {
        CliError::new("no targets requested: a rewrite needs to know what to write")
            .with_hint("pass --capabilities LIST or --gpu NAME")
    })?;
    let (origin, files) = read_input(&args.path, &args.exclude)?;
    if origin == Origin::Sdist && !args.patch {
        return Err(CliError::new(format!(
            "{} is an sdist: it is read, never changed",
            args.path.display()
        ))
        .with_hint(
            "use --patch for a diff to apply after unpacking, or unpack it and rewrite the folder",
        ));
    }
    let input = args.path.display().to_string();
    let context = cudapkgs_targets::Context::of(&files);
    let plans: Vec<(&SourceFile, FilePlan)> = files
        .iter()
        .map(|file| {
            (
                file,
                cudapkgs_targets::plan(&file.text, file.language, &request, &context),
            )
        })
        .filter(|(_, plan)| {
            !plan.edits.is_empty() || !plan.manual.is_empty() || !plan.remaining.is_empty()
        })
        .collect();

    let Outcome {
        rewritten,
        manual,
        patch,
        changed,
    } = outcome(&input, &plans);
    let needs_person = !manual.is_empty();
    let refused = needs_person && !args.partial;
    let written_to = if args.patch || refused || changed.is_empty() {
        None
    } else {
        Some(write(args, origin, &changed)?)
    };

    if json(output, args.format) {
        Output::print_json(&RewriteJson {
            request: RequestJson::new(&request),
            rewritten,
            manual,
            files_changed: changed
                .iter()
                .map(|(f, _)| f.path.display().to_string())
                .collect(),
            written_to: written_to.as_ref().map(|p| p.display().to_string()),
            patch: args.patch.then_some(patch),
        })?;
    } else {
        if args.patch {
            Output::print(&patch)?;
        }
        let summary = human(
            &rewritten,
            &manual,
            changed.len(),
            written_to.as_deref(),
            refused,
            args.patch,
        );
        if args.patch {
            eprint!("{summary}");
        } else {
            Output::print(&summary)?;
        }
    }
    Ok(if needs_person {
        Exit::Problems
    } else {
        Exit::Success
    })
}

/// The places rewritten and left, the diff, and the files that change.
struct Outcome<'a> {
    rewritten: Vec<FindingJson>,
    manual: Vec<ManualJson>,
    patch: String,
    changed: Vec<(&'a SourceFile, &'a FilePlan)>,
}

fn outcome<'a>(input: &str, plans: &'a [(&'a SourceFile, FilePlan)]) -> Outcome<'a> {
    let mut rewritten = Vec::new();
    let mut manual = Vec::new();
    let mut patch = String::new();
    let mut changed: Vec<(&SourceFile, &FilePlan)> = Vec::new();
    for (file, plan) in plans {
        let name = file.path.display().to_string();
        rewritten.extend(
            plan.rewritten
                .iter()
                .map(|f| FindingJson::new(input, &name, f)),
        );
        manual.extend(plan.manual.iter().map(|m| ManualJson {
            file: name.clone(),
            line: m.line,
            kind: m.kind.name(),
            reason: m.reason.clone(),
        }));
        manual.extend(plan.remaining.iter().map(|f| ManualJson {
            file: name.clone(),
            line: f.line,
            kind: f.kind.name(),
            reason: "still forces other targets after the rewrite; edit by hand".to_owned(),
        }));
        if !plan.edits.is_empty() {
            patch.push_str(&cudapkgs_targets::unified_diff(
                &name,
                &file.text,
                &plan.edits,
            ));
            changed.push((file, plan));
        }
    }

    Outcome {
        rewritten,
        manual,
        patch,
        changed,
    }
}

/// Writes every changed file, in SRC or in a fresh copy of it; returns where.
fn write(
    args: &RewriteArgs,
    origin: Origin,
    changed: &[(&SourceFile, &FilePlan)],
) -> CliResult<PathBuf> {
    let target = match &args.out {
        Some(out) => {
            refuse_copy_into_itself(&args.path, out)?;
            cudapkgs_tree::copy_tree(&args.path, out).map_err(|error| {
                CliError::new(format!(
                    "cannot copy {} to {}",
                    args.path.display(),
                    out.display()
                ))
                .caused_by(&error)
                .with_hint("--out names a folder that does not exist yet")
            })?;
            out.clone()
        }
        None => args.path.clone(),
    };
    // A named build file is rewritten in its folder, under its name there (the copy's
    // with --out, never the original's).
    let (root_path, named) = match origin {
        Origin::File => (
            target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned(),
            Some(PathBuf::from(target.file_name().unwrap_or_default())),
        ),
        Origin::Tree | Origin::Sdist => (target.clone(), None),
    };
    let root = cudapkgs_targets::open_root(&root_path).map_err(|e| CliError::from_error(&e))?;
    for (file, plan) in changed {
        let relative = named.as_ref().unwrap_or(&file.path);
        cudapkgs_targets::replace_file(&root, relative, plan.new_text.as_bytes())
            .map_err(|error| CliError::from_error(&error))?;
    }
    Ok(target)
}

/// A copy inside the tree it copies would copy itself without end.
fn refuse_copy_into_itself(source: &Path, out: &Path) -> CliResult<()> {
    let source = std::fs::canonicalize(source).map_err(|error| {
        CliError::new(format!("cannot read {}", source.display())).caused_by(&error)
    })?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(parent) = std::fs::canonicalize(parent) {
        if parent.starts_with(&source) {
            return Err(CliError::new(format!(
                "--out {} is inside {}",
                out.display(),
                source.display()
            ))
            .with_hint("name a folder outside the source tree"));
        }
    }
    Ok(())
}

fn human(
    rewritten: &[FindingJson],
    manual: &[ManualJson],
    files: usize,
    written_to: Option<&Path>,
    refused: bool,
    as_patch: bool,
) -> String {
    let mut out = String::new();
    for finding in rewritten {
        let _ = writeln!(
            out,
            "{}:{}  {}  {} → request",
            finding.file,
            finding.line,
            finding.kind,
            finding.architectures.join(" ")
        );
    }
    for place in manual {
        let _ = writeln!(
            out,
            "{}:{}  {}  needs a person: {}",
            place.file, place.line, place.kind, place.reason
        );
    }
    let places = if rewritten.len() == 1 {
        "place"
    } else {
        "places"
    };
    let file_noun = if files == 1 { "file" } else { "files" };
    let _ = match written_to {
        Some(path) => writeln!(
            out,
            "rewrote {} {places} in {files} {file_noun} in {}",
            rewritten.len(),
            path.display()
        ),
        None if refused => writeln!(
            out,
            "nothing written: {} {} a person (use --partial to write the rest)",
            manual.len(),
            if manual.len() == 1 {
                "place needs"
            } else {
                "places need"
            }
        ),
        None if as_patch => writeln!(
            out,
            "{} {places} in {files} {file_noun} in the patch",
            rewritten.len()
        ),
        None => writeln!(
            out,
            "nothing to rewrite: every place already states the request"
        ),
    };
    out
}
