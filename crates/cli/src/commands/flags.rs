//! `cudapkgs flags`: the standard CUDA options, resolved and rendered.

use std::fmt::Write as _;

use cudapkgs_caps::{
    Capability, CompilerVerdict, CudaVersion, HostPlatform, ResolvedOptions, check_host_compiler,
};
use serde::Serialize;

use crate::cli::{FlagsArgs, FlagsFormat};
use crate::error::{CliError, CliResult, Exit, options_warning};
use crate::output::{Output, schema_of};
use crate::settings::{Config, EnvLookup, cuda_settings};

/// The stable JSON document of `cudapkgs flags --format json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct FlagsReport<'a> {
    cuda: CudaVersion,
    platform: HostPlatform,
    capabilities: &'a [Capability],
    default_capabilities: bool,
    forward_compat: bool,
    ptx: Option<Capability>,
    nvcc: Vec<String>,
    cmake: String,
    torch: String,
    tensorflow: String,
    nix: String,
    host_compiler: Option<&'a CompilerVerdict>,
    warnings: Vec<String>,
}

/// The JSON document of `flags --format json`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("flags", schema_of::<FlagsReport>())]
}

pub fn run(
    args: &FlagsArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    let format = effective_format(args.format, output.json)?;
    let request = cuda_settings(args, config, env)?;
    for (setting, source) in &request.sources {
        output.detail(format!("{setting}: from {source}"));
    }
    let resolved = request.options.resolve()?;
    let verdict = request
        .host_compiler
        .map(|compiler| check_host_compiler(compiler, resolved.cuda))
        .transpose()
        .map_err(CliError::from)?;

    if format != FlagsFormat::Json {
        for warning in &resolved.warnings {
            output.warn(options_warning(warning));
        }
    }
    print(format, &resolved, verdict.as_ref())?;

    match &verdict {
        Some(verdict) if !verdict.accepted => {
            if format != FlagsFormat::Human && format != FlagsFormat::Json {
                eprintln!("problem: {verdict}");
            }
            Ok(Exit::Problems)
        }
        _ => Ok(Exit::Success),
    }
}

fn effective_format(format: FlagsFormat, json: bool) -> CliResult<FlagsFormat> {
    match (json, format) {
        (false, format) => Ok(format),
        (true, FlagsFormat::Human | FlagsFormat::Json) => Ok(FlagsFormat::Json),
        (true, other) => Err(CliError::new(format!(
            "--json conflicts with --format {}",
            format_name(other)
        ))
        .with_hint("drop one of them")),
    }
}

fn format_name(format: FlagsFormat) -> String {
    clap::ValueEnum::to_possible_value(&format)
        .map(|value| value.get_name().to_owned())
        .unwrap_or_default()
}

fn print(
    format: FlagsFormat,
    resolved: &ResolvedOptions,
    verdict: Option<&CompilerVerdict>,
) -> CliResult<()> {
    match format {
        FlagsFormat::Human => Output::print(&human(resolved, verdict)),
        FlagsFormat::Nvcc => Output::print(&format!("{}\n", resolved.nvcc_flags().join(" "))),
        FlagsFormat::Cmake => Output::print(&format!("{}\n", resolved.cmake_architectures())),
        FlagsFormat::Torch => Output::print(&format!("{}\n", resolved.torch_arch_list())),
        FlagsFormat::Tensorflow => {
            Output::print(&format!("{}\n", resolved.tensorflow_capabilities()))
        }
        FlagsFormat::Nix => Output::print(&resolved.nix_config()),
        FlagsFormat::Env => Output::print(&resolved.env_exports()),
        FlagsFormat::Json => Output::print_json(&FlagsReport {
            cuda: resolved.cuda,
            platform: resolved.platform,
            capabilities: &resolved.capabilities,
            default_capabilities: resolved.default_capabilities,
            forward_compat: resolved.forward_compat,
            ptx: resolved.ptx,
            nvcc: resolved.nvcc_flags(),
            cmake: resolved.cmake_architectures(),
            torch: resolved.torch_arch_list(),
            tensorflow: resolved.tensorflow_capabilities(),
            nix: resolved.nix_config(),
            host_compiler: verdict,
            warnings: resolved.warnings.iter().map(options_warning).collect(),
        }),
    }
}

fn human(resolved: &ResolvedOptions, verdict: Option<&CompilerVerdict>) -> String {
    let capabilities: Vec<String> = resolved
        .capabilities
        .iter()
        .map(ToString::to_string)
        .collect();
    let origin = if resolved.default_capabilities {
        format!(" (default set for CUDA {})", resolved.cuda)
    } else {
        String::new()
    };
    let ptx = resolved.ptx.map_or_else(
        || "none (forward compatibility off)".to_owned(),
        |ptx| format!("{} (newer GPUs JIT-compile it)", ptx.compute_name()),
    );
    let nix_line = resolved
        .nix_config()
        .lines()
        .filter(|line| line.starts_with("  "))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = format!(
        "CUDA {cuda} on {platform}\n\
         capabilities{origin}: {caps}\n\
         PTX: {ptx}\n\n\
         nvcc        {nvcc}\n\
         CMake       CMAKE_CUDA_ARCHITECTURES=\"{cmake}\"\n\
         PyTorch     TORCH_CUDA_ARCH_LIST=\"{torch}\"\n\
         TensorFlow  TF_CUDA_COMPUTE_CAPABILITIES=\"{tf}\"\n\
         Nixpkgs     {nix_line}\n",
        cuda = resolved.cuda,
        platform = resolved.platform,
        caps = capabilities.join(" "),
        nvcc = resolved.nvcc_flags().join(" "),
        cmake = resolved.cmake_architectures(),
        torch = resolved.torch_arch_list(),
        tf = resolved.tensorflow_capabilities(),
    );
    if let Some(verdict) = verdict {
        let mark = if verdict.accepted { "ok" } else { "problem" };
        let _ = write!(text, "\nhost compiler: {mark}: {verdict}\n");
    }
    text
}
