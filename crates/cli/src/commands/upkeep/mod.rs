//! `cudapkgs upkeep`: the package set of `cudapkgs.toml`'s `[upkeep]` table. This module
//! holds the command line and the commands that only read (`plan`, `matrix`, `report`)
//! or combine databases (`merge`); `run` runs jobs and files issues.

mod json;
mod run;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use cudapkgs_builder::resolve::{self, resolve};
use cudapkgs_redist::manifest::host_system;
use cudapkgs_upkeep::job::{Catalog, plan};
use cudapkgs_upkeep::report::{dashboard, html, utc};
use cudapkgs_upkeep::shard::Shard;
use cudapkgs_upkeep::{Error as UpkeepError, Job, Outcome, Results, SetConfig, matrix};

pub use self::json::schemas;
use crate::cli::StoreFolders;
use crate::context::{fetcher_at, mirror_url};
use crate::error::{CliError, CliResult, Exit, one_line};
use crate::output::Output;
use crate::settings::{Config, EnvLookup};

#[derive(Debug, Subcommand)]
pub enum UpkeepCommand {
    /// The jobs of the set: package × CUDA release × system × capability set
    Plan(PlanArgs),
    /// Build every job of the set (or of one shard), check, measure and push the
    /// successes, record the results, report what changed (exit 1 if a job fails)
    #[command(after_long_help = RUN_EXAMPLES)]
    Run(run::RunArgs),
    /// File the newest result of every job: an issue per distinct failure, a comment
    /// when it recurs, closed when the job passes again
    Issues(run::IssuesArgs),
    /// The CI job matrix: the plan dealt out to shards, for GitHub Actions or Buildkite
    Matrix(MatrixArgs),
    /// Merge shard databases into one, each run and result once
    Merge(MergeArgs),
    /// The newest state of every job, with its changes; --html writes the dashboard
    Report(ReportArgs),
}

const RUN_EXAMPLES: &str = "\
Examples:
  cudapkgs --config upkeep.toml upkeep run
  cudapkgs upkeep run --shard 2/8 --results upkeep-shard-2-of-8.sqlite
  GITHUB_TOKEN=… cudapkgs upkeep run --github-repo owner/name

Each job runs `cudapkgs build` for its package (the build record makes an unchanged job
cost nothing), then `check` and `closure` on its lib and bin outputs, and `push` of the
set to [upkeep.cache]. Results go to the results database as each job ends: a run killed
midway is taken up by the next run of the same jobs.";

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this shard's jobs, written I/N
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MatrixFormat {
    /// `{"include": [{"shard": "1/N", "results": …}]}` for `strategy.matrix`
    Github,
    /// A pipeline for `buildkite-agent pipeline upload`
    Buildkite,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Runners to spread the plan over (never more than there are jobs)
    #[arg(long, value_name = "N")]
    pub shards: usize,
    /// The CI system the matrix is written for
    #[arg(long, value_enum, default_value = "github")]
    pub format: MatrixFormat,
    /// How the pipeline's commands start (Buildkite)
    #[arg(long, value_name = "COMMAND", default_value = "cudapkgs")]
    pub program: String,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The database to merge into (made if missing)
    #[arg(long, value_name = "DB")]
    pub into: PathBuf,
    /// Shard databases
    #[arg(required = true, value_name = "DB")]
    pub sources: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results database [default: the table's `results`, else upkeep.sqlite beside
    /// the configuration]
    #[arg(long, value_name = "DB")]
    pub results: Option<PathBuf>,
    /// Also write the dashboard, one self-contained HTML page, to FILE
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

pub fn run(
    command: &UpkeepCommand,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    match command {
        UpkeepCommand::Plan(args) => plan_command(args, output, config),
        UpkeepCommand::Run(args) => run::run(args, output, config, env),
        UpkeepCommand::Issues(args) => run::issues(args, output, config, env),
        UpkeepCommand::Matrix(args) => matrix_command(args, config),
        UpkeepCommand::Merge(args) => merge(args, output),
        UpkeepCommand::Report(args) => report(args, output, config),
    }
}

/// An upkeep failure for people.
pub fn failure(error: &UpkeepError) -> CliError {
    let hint = match error {
        UpkeepError::Config(_) => Some("see docs/upkeep.md for the [upkeep] table"),
        UpkeepError::Tracker { .. }
        | UpkeepError::TrackerUnreachable { .. }
        | UpkeepError::TrackerAnswer { .. } => {
            Some("check --github-repo, --github-api and the token in GITHUB_TOKEN")
        }
        _ => None,
    };
    let failed = CliError::from_error(error);
    match hint {
        Some(hint) => failed.with_hint(hint),
        None => failed,
    }
}

/// The configuration file's folder, which the table's relative paths start from.
/// Absolute, so that logs and drafts name places a reader can find from anywhere.
pub fn config_folder(config: &Config) -> PathBuf {
    let folder = config
        .path
        .as_deref()
        .and_then(Path::parent)
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf())
}

/// The `[upkeep]` table, checked, its paths made relative to the configuration file.
pub fn set_of(config: &Config) -> CliResult<SetConfig> {
    let Some(set) = &config.upkeep else {
        let file = config.path.as_ref().map_or_else(
            || "no configuration file was found".to_owned(),
            |path| format!("{} has no [upkeep] table", path.display()),
        );
        return Err(CliError::new(format!("no package set: {file}"))
            .with_hint("pass --config FILE with an [upkeep] table (docs/upkeep.md)"));
    };
    set.clone()
        .validated(&config_folder(config))
        .map_err(|error| {
            failure(&error).context(
                config
                    .path
                    .as_deref()
                    .unwrap_or(Path::new("cudapkgs.toml"))
                    .display(),
            )
        })
}

/// The release's packages from NVIDIA's manifest, for `"all"`.
struct Manifests<'a> {
    set: &'a SetConfig,
}

impl Catalog for Manifests<'_> {
    fn packages(&self, cuda: &str, system: &str) -> Result<Vec<String>, UpkeepError> {
        let fetcher = fetcher_at(None).map_err(|e| UpkeepError::Catalog(e.message))?;
        let request = resolve::Request {
            packages: Vec::new(),
            source: resolve::Source::Nvidia {
                base_url: mirror_url(self.set.base_url.as_deref()),
            },
            cuda: cuda.to_owned(),
            system: system.to_owned(),
            prereleases: false,
            dependencies: false,
            all: true,
            download_for_metadata: false,
            jobs: 4,
        };
        let resolution = resolve(&fetcher, &request, &cudapkgs_report::Silent).map_err(|e| {
            UpkeepError::Catalog(format!("\"all\" for CUDA {cuda}: {}", one_line(&e)))
        })?;
        Ok(resolution.packages.into_iter().map(|r| r.package).collect())
    }
}

/// The set's jobs, and the shard's among them.
pub fn jobs_of(set: &SetConfig, shard: Option<&str>) -> CliResult<(Vec<Job>, Vec<Job>, Shard)> {
    let shard = match shard {
        Some(text) => text
            .parse::<Shard>()
            .map_err(|e| failure(&e).context("--shard"))?,
        None => Shard::ALL,
    };
    let all = plan(set, host_system(), &Manifests { set }).map_err(|e| failure(&e))?;
    let mine = shard.select(&all);
    Ok((all, mine, shard))
}

fn plan_command(args: &PlanArgs, output: Output, config: &Config) -> CliResult<Exit> {
    let set = set_of(config)?;
    let (all, mine, shard) = jobs_of(&set, args.shard.as_deref())?;
    if output.json {
        Output::print_json(&json::PlanReport {
            jobs: mine.iter().map(json::PlannedJob::of).collect(),
            shard: shard.to_string(),
            total: all.len(),
        })?;
    } else {
        let mut text = String::new();
        for job in &mine {
            let _ = writeln!(text, "{}", job.id());
        }
        Output::print(&text)?;
        output.note(format!(
            "{} jobs{}",
            mine.len(),
            if shard == Shard::ALL {
                String::new()
            } else {
                format!(" in shard {shard}, of {}", all.len())
            }
        ));
    }
    Ok(Exit::Success)
}

fn matrix_command(args: &MatrixArgs, config: &Config) -> CliResult<Exit> {
    let set = set_of(config)?;
    let (all, _, _) = jobs_of(&set, None)?;
    let shards = matrix::shards(all.len(), args.shards).map_err(|e| match e {
        UpkeepError::NoShards => failure(&e).with_hint("pass --shards 1 or more"),
        other => failure(&other),
    })?;
    let document = match args.format {
        MatrixFormat::Github => matrix::github(&shards).map_err(|e| failure(&e))?,
        MatrixFormat::Buildkite => matrix::buildkite(&shards, &args.program),
    };
    // One line: what `echo "matrix=…" >> $GITHUB_OUTPUT` needs.
    Output::print(&format!("{document}\n"))?;
    Ok(Exit::Success)
}

fn merge(args: &MergeArgs, output: Output) -> CliResult<Exit> {
    let mut into = Results::open(&args.into).map_err(|e| failure(&e))?;
    let mut total = cudapkgs_upkeep::results::Merged::default();
    for source in &args.sources {
        if std::fs::canonicalize(source).ok() == std::fs::canonicalize(&args.into).ok() {
            return Err(CliError::new(format!(
                "{} is the database merged into",
                source.display()
            )));
        }
        let merged = into.merge(source).map_err(|e| failure(&e))?;
        output.detail(format!(
            "{}: {} runs, {} results",
            source.display(),
            merged.runs,
            merged.results
        ));
        total.runs += merged.runs;
        total.results += merged.results;
    }
    if output.json {
        Output::print_json(&total)?;
    } else {
        Output::print(&format!(
            "merged {} runs and {} results from {} databases into {}\n",
            total.runs,
            total.results,
            args.sources.len(),
            args.into.display()
        ))?;
    }
    Ok(Exit::Success)
}

/// The results database: the flag's, the table's, or `upkeep.sqlite` beside the
/// configuration file.
pub fn results_path(flag: Option<&Path>, config: &Config) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    let folder = config_folder(config);
    match &config.upkeep {
        Some(set) => set.results_path(&folder),
        None => folder.join("upkeep.sqlite"),
    }
}

/// The table's allowed closure growth, or the default without a table.
pub fn allowed_growth(config: &Config) -> f64 {
    config
        .upkeep
        .as_ref()
        .map_or_else(cudapkgs_upkeep::config::default_growth, |set| {
            set.closure_growth
        })
}

fn report(args: &ReportArgs, output: Output, config: &Config) -> CliResult<Exit> {
    let path = results_path(args.results.as_deref(), config);
    let results = Results::open_read_only(&path).map_err(|e| failure(&e))?;
    let board = dashboard(&results, allowed_growth(config)).map_err(|e| failure(&e))?;
    if let Some(page) = &args.html {
        if page.is_dir() {
            return Err(CliError::new(format!(
                "{} is a folder: name the page's file",
                page.display()
            )));
        }
        let text = html::page(&board, cudapkgs_upkeep::results::now_ms());
        cudapkgs_tree::write_file_atomically(page, text.as_bytes()).map_err(|error| {
            CliError::new(format!("cannot write the dashboard to {}", page.display()))
                .caused_by(&error)
        })?;
        output.note(format!("dashboard written to {}", page.display()));
    }
    if output.json {
        Output::print_json(&json::ReportDocument {
            board: &board,
            html: args.html.as_ref(),
        })?;
    } else {
        let mut text = String::new();
        for row in &board.rows {
            for cell in row.cells.values() {
                let state = match (&cell.outcome, &cell.step) {
                    (Outcome::Failed, Some(step)) => format!("failed at {step}"),
                    (Outcome::Failed, None) => "failed".to_owned(),
                    (Outcome::Passed, _) => "passed".to_owned(),
                };
                let last = cell.last_success.map_or_else(|| "never".to_owned(), utc);
                let _ = writeln!(
                    text,
                    "{}  {state}  (last success {last}){}",
                    cell.job,
                    cell.problem
                        .as_ref()
                        .map(|p| format!(": {p}"))
                        .unwrap_or_default()
                );
                for change in &cell.changes {
                    let _ = writeln!(text, "  {}", change.describe());
                }
            }
        }
        let _ = writeln!(
            text,
            "{} jobs: {} passed, {} failed, {} regressions",
            board.passed + board.failed,
            board.passed,
            board.failed,
            board.regressions
        );
        Output::print(&text)?;
    }
    Ok(Exit::Success)
}

/// `--store-dir D --root R --state-dir S` as given, for every step's command.
pub fn store_args(folders: &StoreFolders) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(dir) = &folders.store_dir {
        args.extend(["--store-dir".to_owned(), dir.clone()]);
    }
    for (flag, value) in [
        ("--root", &folders.root),
        ("--state-dir", &folders.state_dir),
    ] {
        if let Some(value) = value {
            args.extend([flag.to_owned(), value.display().to_string()]);
        }
    }
    args
}
