//! `cudapkgs targets`: hard-coded GPU architecture lists in source trees and sdists,
//! their rewrite to the requested options, and PyTorch's extension allow-list.

mod rewrite;
mod scan;
mod torch;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use cudapkgs_caps::{CudaVersion, HostPlatform};
use cudapkgs_targets::{Request, SourceFile};
use serde::Serialize;

use crate::cli::{FlagsArgs, FlagsFormat, TextOrJson};
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;
use crate::settings::{Config, EnvLookup, Source, cuda_settings};

#[derive(Debug, Subcommand)]
pub enum TargetsCommand {
    /// Find the places in build files that force GPU targets (nvcc flags, CMake
    /// architectures and properties, TORCH_CUDA_ARCH_LIST, project lists, Bazel, Meson);
    /// exit 1 when one overrides the user's choice (or, with a request, disagrees with it)
    #[command(after_long_help = SCAN_EXAMPLES)]
    Scan(ScanArgs),
    /// Make every place that forces other targets state the requested ones, through the
    /// renderings of `cudapkgs flags`: in place, into a copy (--out), or as a patch
    #[command(after_long_help = REWRITE_EXAMPLES)]
    Rewrite(RewriteArgs),
    /// Which requested capabilities an installed PyTorch's extension builder refuses
    /// (`ValueError: Unknown CUDA arch`); --allow adds them to its allow-list, --undo
    /// restores the file exactly
    #[command(after_long_help = TORCH_EXAMPLES)]
    Torch(TorchArgs),
}

const SCAN_EXAMPLES: &str = "\
Examples:
  cudapkgs targets scan flash_attn-2.8.3.tar.gz
  cudapkgs targets scan --capabilities 9.0 src/
  cudapkgs targets scan --gpu H100 --json .

Without a request every place is listed; defaults the user's own variables replace
are shown but do not fail the scan. With a request (--capabilities, --gpu,
CUDAPKGS_CAPABILITIES, cudapkgs.toml) only the places that would keep the build from
having exactly those targets are listed.";

const REWRITE_EXAMPLES: &str = "\
Examples:
  cudapkgs targets rewrite --capabilities 9.0 src/
  cudapkgs targets rewrite --gpu H100 --out build-src/ src/
  cudapkgs targets rewrite --capabilities 8.6,9.0 --patch flash_attn-2.8.3.tar.gz > targets.patch

Nothing is written when a place cannot be rewritten (exit 1, listing it), unless
--partial. Each file is replaced atomically with its permissions kept.";

const TORCH_EXAMPLES: &str = "\
Examples:
  cudapkgs targets torch .venv --capabilities 10.0f,12.1f
  cudapkgs targets torch .venv --capabilities 10.0f,12.1f --allow
  cudapkgs targets torch .venv --undo";

/// The request: the options of `cudapkgs flags`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools, reason = "each is a command-line flag")]
pub struct RequestArgs {
    /// Capabilities, like 8.6,9.0a [env: CUDAPKGS_CAPABILITIES]
    #[arg(long, value_name = "LIST", conflicts_with = "gpus")]
    pub capabilities: Option<String>,
    /// A GPU by product name (H100, "RTX 4090") or capability; repeatable [env: CUDAPKGS_GPU]
    #[arg(long = "gpu", value_name = "NAME")]
    pub gpus: Vec<String>,
    /// CUDA release the build uses, like 12.9 (or 12 for its newest release) [env:
    /// CUDAPKGS_CUDA] [default: 12.9]
    #[arg(long, value_name = "X.Y", value_parser = CudaVersion::parse_release)]
    pub cuda: Option<CudaVersion>,
    /// PTX for the highest capability, for newer GPUs (the default) [env: CUDAPKGS_FORWARD_COMPAT]
    #[arg(long, overrides_with = "no_forward_compat")]
    pub forward_compat: bool,
    /// SASS only
    #[arg(long, overrides_with = "forward_compat")]
    pub no_forward_compat: bool,
    /// Host platform: x86_64, aarch64-server or aarch64-jetson [default: this machine's]
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<HostPlatform>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Source trees, sdists (.tar.gz, .zip) or build files
    #[arg(required = true, value_name = "SRC|SDIST")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Leave out files below this path (relative to the tree or the sdist's top
    /// folder, like csrc/cutlass); repeatable
    #[arg(long, value_name = "PATH")]
    pub exclude: Vec<PathBuf>,
    /// What to print
    #[arg(long, value_enum, default_value_t = TextOrJson::Human)]
    pub format: TextOrJson,
}

#[derive(Debug, Args)]
pub struct RewriteArgs {
    /// A source tree or build file (rewritten in place unless --out or --patch), or an
    /// sdist (with --patch)
    #[arg(value_name = "SRC")]
    pub path: PathBuf,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Write the rewritten tree here (a copy of SRC; must not exist) and leave SRC alone
    #[arg(long, value_name = "DIR", conflicts_with = "patch")]
    pub out: Option<PathBuf>,
    /// Print a unified diff (for `patch -p1` in SRC) and change nothing
    #[arg(long)]
    pub patch: bool,
    /// Rewrite what can be rewritten even when some places need a person
    #[arg(long)]
    pub partial: bool,
    /// Leave out files below this path; repeatable
    #[arg(long, value_name = "PATH")]
    pub exclude: Vec<PathBuf>,
    /// What to print
    #[arg(long, value_enum, default_value_t = TextOrJson::Human)]
    pub format: TextOrJson,
}

#[derive(Debug, Args)]
pub struct TorchArgs {
    /// A virtual environment, a site-packages folder, the torch package, or
    /// torch/utils/cpp_extension.py
    #[arg(value_name = "VENV")]
    pub path: PathBuf,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Add the refused capabilities to the allow-list (atomically; undo with --undo)
    #[arg(long, conflicts_with = "undo")]
    pub allow: bool,
    /// Restore the allow-list as PyTorch shipped it, byte for byte
    #[arg(long)]
    pub undo: bool,
    /// What to print
    #[arg(long, value_enum, default_value_t = TextOrJson::Human)]
    pub format: TextOrJson,
}

/// The JSON documents of `targets scan`, `rewrite` and `torch`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![scan::schema(), rewrite::schema(), torch::schema()]
}

pub fn run(
    command: &TargetsCommand,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    match command {
        TargetsCommand::Scan(args) => scan::run(args, output, config, env),
        TargetsCommand::Rewrite(args) => rewrite::run(args, output, config, env),
        TargetsCommand::Torch(args) => torch::run(args, output, config, env),
    }
}

/// The request as `cudapkgs flags` resolves it. When no capabilities or GPUs were named
/// anywhere (flags, environment, cudapkgs.toml): the default set of the CUDA release
/// with `default_set`, else `None`. `cuda_fallback` stands in for a CUDA release set
/// nowhere.
fn request(
    args: &RequestArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
    cuda_fallback: Option<CudaVersion>,
    default_set: bool,
) -> CliResult<Option<Request>> {
    let flags_args = FlagsArgs {
        cuda: args.cuda,
        capabilities: args.capabilities.clone(),
        gpus: args.gpus.clone(),
        forward_compat: args.forward_compat,
        no_forward_compat: args.no_forward_compat,
        platform: args.platform,
        host_compiler: None,
        format: FlagsFormat::Human,
    };
    let mut resolved = cuda_settings(&flags_args, config, env)?;
    let source = |setting: &str| {
        resolved
            .sources
            .iter()
            .find(|(name, _)| *name == setting)
            .map(|(_, source)| source.clone())
    };
    if let (Some(cuda), Some(Source::Default)) = (cuda_fallback, source("cuda")) {
        resolved.options.cuda = cuda;
    }
    for (setting, source) in &resolved.sources {
        output.detail(format!("{setting}: from {source}"));
    }
    if resolved.options.capabilities.is_none() && !default_set {
        return Ok(None);
    }
    let options = resolved.options.resolve()?;
    if !output.json {
        for warning in &options.warnings {
            output.warn(crate::error::options_warning(warning));
        }
    }
    Ok(Some(Request::new(options)))
}

/// The request's JSON: what `flags` would print for it, in short.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct RequestJson {
    cuda: CudaVersion,
    capabilities: Vec<String>,
    targets: Vec<String>,
    nvcc: String,
    cmake: String,
    torch: String,
}

impl RequestJson {
    fn new(request: &Request) -> RequestJson {
        let options = &request.options;
        RequestJson {
            cuda: options.cuda,
            capabilities: options
                .capabilities
                .iter()
                .map(ToString::to_string)
                .collect(),
            targets: request.targets.iter().map(ToString::to_string).collect(),
            nvcc: request.nvcc_flags(),
            cmake: options.cmake_architectures(),
            torch: options.torch_arch_list(),
        }
    }
}

/// The build files of one input, without the excluded ones.
fn read_input(
    path: &std::path::Path,
    exclude: &[PathBuf],
) -> CliResult<(cudapkgs_targets::Origin, Vec<SourceFile>)> {
    let (origin, mut files) = cudapkgs_targets::read(path).map_err(|error| {
        CliError::from_error(&error).with_hint("name a source folder, an sdist or a build file")
    })?;
    files.retain(|file| !exclude.iter().any(|prefix| file.path.starts_with(prefix)));
    Ok((origin, files))
}

fn json(output: Output, format: TextOrJson) -> bool {
    output.json || format == TextOrJson::Json
}
