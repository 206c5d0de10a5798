#![allow(
    unreachable_pub,
    reason = "a binary crate: `pub` marks what modules share, nothing is exported"
)]
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags,
    reason = "argument docs are help for people, where `[cuda]` names a table of cudapkgs.toml and `<store>` a value"
)]

//! The `cudapkgs` executable: parses arguments, loads settings, runs one command and
//! turns its outcome into an exit code.

mod cli;
mod commands;
mod context;
mod error;
mod native;
mod output;
mod progress;
mod render;
mod settings;
mod table;

use std::process::ExitCode;

use clap::Parser;
/// Byte sizes and shares for people, shared with the libraries' pages.
use cudapkgs_tree::units;

use crate::cli::{Cli, Command};
use crate::error::{CliResult, Exit};
use crate::output::Output;
use crate::settings::Config;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let output = Output {
        json: cli.global.json,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
        bytes: cli.global.bytes,
        width: terminal_size::terminal_size_of(std::io::stdout())
            .map(|(terminal_size::Width(columns), _)| usize::from(columns)),
    };
    let exit = match run(&cli, output) {
        Ok(exit) => exit,
        // A reader that stopped reading (`| head`) is not a failure.
        Err(error) if error.closed_pipe => Exit::Success,
        Err(error) => {
            output.report_error(&error);
            Exit::Usage
        }
    };
    ExitCode::from(exit as u8)
}

/// Help and version requests print as clap prints them; a usage error is also one JSON
/// error document on stdout when JSON was asked for, since the parse that failed cannot
/// say so.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = cli::asks_for_json(std::env::args_os().skip(1));
    if error.kind() == ErrorKind::DisplayVersion && json {
        let version = output::VersionDocument {
            name: "cudapkgs",
            version: env!("CARGO_PKG_VERSION"),
        };
        println!("{}", serde_json::to_string(&version).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    if json {
        let text = error.to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let message = lines
            .next()
            .map(|first| first.trim_start_matches("error: ").to_owned())
            .unwrap_or_default();
        let tips: Vec<&str> = lines.filter(|l| l.starts_with("tip:")).collect();
        let hint = if tips.is_empty() {
            "see --help".to_owned()
        } else {
            tips.join("; ")
        };
        output::print_error_document(&message, &[], Some(&hint));
    }
    let _ = error.print();
    ExitCode::from(Exit::Usage as u8)
}

fn run(cli: &Cli, output: Output) -> CliResult<Exit> {
    let env = settings::process_env;
    settings::install(Config::load(cli.global.config.as_deref(), &env)?, output);
    let config = settings::loaded().0;
    if let Some(path) = &config.path {
        output.detail(format!("configuration: {}", path.display()));
    }
    match &cli.command {
        Command::Flags(args) => commands::flags::run(args, output, config, &env),
        Command::Gpus(args) => commands::gpus::run(args, output),
        Command::Inspect(args) => commands::inspect::run(args, output, config, &env),
        Command::Elf(args) => commands::elf::run(args, output),
        Command::Patch(args) => commands::patch::run(args, output),
        Command::Prune(args) => commands::prune::run(args, output, config, &env),
        Command::Build(args) => commands::build::run(args, output, config, &env),
        Command::Redist(command) => commands::redist::run(command, output),
        Command::Split(args) => commands::redist::split(args, output),
        Command::Features(args) => commands::features::run(args, output),
        Command::Nar(command) => commands::store::nar(command, output),
        Command::Store(command) => commands::store::store(command, output),
        Command::PathInfo(args) => commands::store::path_info(args, output),
        Command::Closure {
            paths,
            html,
            tree,
            location,
        } => commands::store::closure(paths, html.as_deref(), tree, location, output),
        Command::Diff {
            before,
            after,
            location,
        } => commands::diff::run(before, after, location, output),
        Command::Gc { dry_run, location } => commands::gc::gc(*dry_run, location, output),
        Command::Cache(command) => commands::cache::cache(command, output),
        Command::Push(args) => commands::cache::push(args, output),
        Command::Serve(args) => commands::cache::serve(args, output),
        Command::Copy(args) => commands::cache::copy(args, output),
        Command::Targets(command) => commands::targets::run(command, output, config, &env),
        Command::Check(args) => commands::check::run(args, output, config, &env),
        Command::GpuCheck(args) => commands::gpu_check::run(args, output),
        Command::GpuChild(command) => commands::gpu_check::child(command),
        Command::Upkeep(command) => commands::upkeep::run(command, output, config, &env),
        Command::Completions { shell } => commands::manual::completions(*shell),
        Command::Man { format } => commands::manual::man(*format),
        Command::Schema { document } => commands::schema::run(document.as_deref(), &schemas()),
        Command::Why {
            path,
            dependency,
            tree,
            location,
        } => commands::store::why(path, dependency, tree, location, output),
    }
}

/// Every document with a schema: the commands' own, and the error document they share.
fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    let mut all = commands::store::schemas();
    all.extend(commands::build::schemas());
    all.extend(commands::inspect::schemas());
    all.extend(commands::prune::schemas());
    all.extend(commands::patch::schemas());
    all.extend(commands::elf::schemas());
    all.extend(commands::flags::schemas());
    all.extend(commands::gpus::schemas());
    all.extend(commands::targets::schemas());
    all.extend(commands::redist::schemas());
    all.extend(commands::features::schemas());
    all.extend(commands::cache::schemas());
    all.extend(commands::gpu_check::schemas());
    all.extend(commands::upkeep::schemas());
    all.extend(commands::gc::schemas());
    all.extend(commands::diff::schemas());
    all.extend(commands::check::schemas());
    all.push(("error", output::schema_of::<output::ErrorDocument>()));
    all.push(("version", output::schema_of::<output::VersionDocument>()));
    all
}
