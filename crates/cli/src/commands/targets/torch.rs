//! `cudapkgs targets torch`: PyTorch's extension allow-list, checked, extended, restored.

use cudapkgs_targets::torch::{self, Naming};
use serde::Serialize;
use std::fmt::Write as _;

use super::{RequestJson, TorchArgs, json, request};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::settings::{Config, EnvLookup};

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct TorchJson {
    request: RequestJson,
    installations: Vec<InstallationJson>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct InstallationJson {
    file: String,
    version: Option<String>,
    cuda: Option<String>,
    supported: Vec<String>,
    added: Vec<String>,
    refused: Vec<String>,
    naming: Naming,
    /// What this run did: `none`, `allowed`, `restored`.
    action: &'static str,
}

/// The JSON document of `targets torch`.
pub(super) fn schema() -> (&'static str, schemars::Schema) {
    ("targets-torch", schema_of::<TorchJson>())
}

pub(super) fn run(
    args: &TorchArgs,
    output: Output,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<Exit> {
    let fail = |error: cudapkgs_targets::Error| CliError::from_error(&error);
    let (folder, installations) = torch::find(&args.path).map_err(fail)?;
    if installations.is_empty() {
        return Err(CliError::new(format!(
            "no PyTorch in {}: looked for torch/utils/cpp_extension.py, site-packages/torch and lib/python3.*/site-packages/torch",
            args.path.display()
        ))
        .with_hint("name the virtual environment, its site-packages folder or the torch package"));
    }
    // The CUDA release PyTorch was built with is the one its extensions build with.
    let torch_cuda = installations
        .iter()
        .find_map(|installation| installation.cuda.as_deref()?.parse().ok());
    let request = request(&args.request, output, config, env, torch_cuda, true)?
        .expect("the default set stands in for a request");
    let root = cudapkgs_targets::open_root(&folder).map_err(fail)?;
    let mut reports = Vec::new();
    let mut refusing = false;
    for installation in installations {
        let relative = &installation.cpp_extension;
        let shown = folder.join(relative);
        let bytes = root
            .read(relative, cudapkgs_targets::MAX_FILE_BYTES)
            .map_err(|error| {
                CliError::new(format!("cannot read {}", shown.display())).caused_by(&error)
            })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| CliError::new(format!("{} is not UTF-8 text", shown.display())))?;
        let mut list = torch::read_allow_list(&text, &shown).map_err(fail)?;
        let mut refused = torch::refused(&list, &request);
        let mut action = "none";
        if args.allow && !refused.is_empty() {
            let patched = torch::allow(&text, &refused, &shown).map_err(fail)?;
            cudapkgs_targets::replace_file(&root, relative, patched.as_bytes()).map_err(fail)?;
            list = torch::read_allow_list(&patched, &shown).map_err(fail)?;
            refused = torch::refused(&list, &request);
            action = "allowed";
            if list.naming == Naming::Unknown {
                output.warn(format!(
                    "{}: this PyTorch names nvcc targets in a way cudapkgs does not know; check the flags it passes for the added capabilities",
                    shown.display()
                ));
            }
        } else if args.undo {
            if let Some(original) = torch::undo(&text, &shown).map_err(fail)? {
                cudapkgs_targets::replace_file(&root, relative, original.as_bytes())
                    .map_err(fail)?;
                list = torch::read_allow_list(&original, &shown).map_err(fail)?;
                refused = torch::refused(&list, &request);
                action = "restored";
            }
        }
        refusing |= !refused.is_empty();
        reports.push(InstallationJson {
            file: shown.display().to_string(),
            version: installation.version,
            cuda: installation.cuda,
            supported: list.supported,
            added: list.added,
            refused,
            naming: list.naming,
            action,
        });
    }
    if json(output, args.format) {
        Output::print_json(&TorchJson {
            request: RequestJson::new(&request),
            installations: reports,
        })?;
    } else {
        Output::print(&human(&reports, &request))?;
    }
    // Undoing restores what PyTorch refuses; that is what was asked for.
    Ok(if refusing && !args.undo {
        Exit::Problems
    } else {
        Exit::Success
    })
}

fn human(reports: &[InstallationJson], request: &cudapkgs_targets::Request) -> String {
    let mut out = String::new();
    for report in reports {
        let version = match (&report.version, &report.cuda) {
            (Some(version), Some(cuda)) => format!("PyTorch {version} (CUDA {cuda})"),
            (Some(version), None) => format!("PyTorch {version}"),
            _ => "PyTorch".to_owned(),
        };
        let _ = writeln!(out, "{}: {version}", report.file);
        let _ = writeln!(out, "  allows      {}", report.supported.join(" "));
        if !report.added.is_empty() {
            let _ = writeln!(
                out,
                "  added       {} (by cudapkgs; --undo restores the file)",
                report.added.join(" ")
            );
        }
        let _ = writeln!(
            out,
            "  requested   {}",
            request.options.torch_arch_list().replace(';', " ")
        );
        match report.action {
            "allowed" => {
                let _ = writeln!(
                    out,
                    "  allowed now: extensions for the requested capabilities build"
                );
            }
            "restored" => {
                let _ = writeln!(out, "  restored as PyTorch shipped it");
            }
            _ => {}
        }
        if report.refused.is_empty() {
            let _ = writeln!(out, "  refused     none");
        } else {
            let _ = writeln!(
                out,
                "  refused     {} (ValueError: Unknown CUDA arch; --allow adds them)",
                report.refused.join(" ")
            );
        }
    }
    out
}
