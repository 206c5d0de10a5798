#![allow(
    unreachable_pub,
    reason = "a binary crate: `pub` marks what modules share, nothing is exported"
)]

//! The `cudapkgs` executable: parses arguments, loads settings, runs one command and
//! turns its outcome into an exit code.

mod cli;
mod commands;
mod error;
mod output;
mod settings;
mod units;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::{CliResult, Exit};
use crate::output::Output;
use crate::settings::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = Output {
        json: cli.global.json,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
    };
    let exit = match run(&cli, output) {
        Ok(exit) => exit,
        Err(error) => {
            output.report_error(&error);
            Exit::Usage
        }
    };
    ExitCode::from(exit as u8)
}

fn run(cli: &Cli, output: Output) -> CliResult<Exit> {
    let env = settings::process_env;
    let config = Config::load(cli.global.config.as_deref(), &env)?;
    if let Some(path) = &config.path {
        output.detail(format!("configuration: {}", path.display()));
    }
    match &cli.command {
        Command::Flags(args) => commands::flags::run(args, output, &config, &env),
        Command::Gpus(args) => commands::gpus::run(args, output),
        Command::Inspect(args) => commands::inspect::run(args, output),
        Command::Elf(args) => commands::elf::run(args, output),
        Command::Patch(args) => commands::patch::run(args, output),
        Command::Prune(args) => commands::prune::run(args, output),
        Command::Build(args) => commands::build::run(args, output),
        Command::Redist(command) => commands::redist::run(command, output),
        Command::Split(args) => commands::redist::split(args, output),
        Command::Features(args) => commands::features::run(args, output),
        Command::Nar(command) => commands::store::nar(command, output),
        Command::Store(command) => commands::store::store(command, output),
        Command::PathInfo { paths, location } => {
            commands::store::path_info(paths, location, output)
        }
        Command::Closure { paths, location } => commands::store::closure(paths, location, output),
        Command::Diff {
            before,
            after,
            location,
        } => commands::diff::run(before, after, location, output),
        Command::Gc { dry_run, location } => commands::gc::gc(*dry_run, location, output),
        Command::Why {
            path,
            dependency,
            location,
        } => commands::store::why(path, dependency, location, output),
    }
}
