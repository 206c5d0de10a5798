//! `cudapkgs gpus`: the GPU table, for people and for scripts.

use cudapkgs_caps::{Capability, CudaVersion, GPU_TABLE, GpuArch, PRODUCTS, products_with};
use serde::Serialize;

use crate::cli::{GpusArgs, TextOrJson};
use crate::error::{CliResult, Exit};
use crate::output::{Output, schema_of};

/// One row of `cudapkgs gpus --format json`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct GpuRow {
    capability: Capability,
    architecture: &'static str,
    jetson: bool,
    min_cuda: CudaVersion,
    max_cuda: Option<CudaVersion>,
    default_until: Option<CudaVersion>,
    /// Present with --cuda: whether that release builds it by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<bool>,
    products: Vec<&'static str>,
}

/// The JSON document of `gpus`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![("gpus", schema_of::<Vec<GpuRow>>())]
}

pub fn run(args: &GpusArgs, output: Output) -> CliResult<Exit> {
    let rows: Vec<GpuRow> = GPU_TABLE
        .iter()
        .filter(|arch| args.cuda.is_none_or(|cuda| arch.supported_by(cuda)))
        .map(|arch| row(arch, args.cuda))
        .collect();
    if output.json || args.format == TextOrJson::Json {
        Output::print_json(&rows)?;
        return Ok(Exit::Success);
    }
    Output::print(&table(&rows, args.cuda, output.width))?;
    Ok(Exit::Success)
}

fn row(arch: &GpuArch, cuda: Option<CudaVersion>) -> GpuRow {
    let products = match cuda {
        Some(cuda) => products_with(arch.capability, cuda),
        None => PRODUCTS
            .iter()
            .filter(|product| {
                product.capability == arch.capability
                    || product
                        .renumbered
                        .is_some_and(|(_, before)| before == arch.capability)
            })
            .collect(),
    };
    GpuRow {
        capability: arch.capability,
        architecture: arch.architecture,
        jetson: arch.jetson,
        min_cuda: arch.min_cuda,
        max_cuda: arch.max_cuda,
        default_until: arch.default_until,
        default: cuda.map(|cuda| arch.default_for(cuda)),
        products: products.iter().map(|product| product.name).collect(),
    }
}

fn table(rows: &[GpuRow], cuda: Option<CudaVersion>, width: Option<usize>) -> String {
    let mut lines = vec![format!(
        "{:<12} {:<10} {:<14} {:<14} {}",
        "capability", "arch", "CUDA", "default until", "products"
    )];
    for row in rows {
        let mark = if row.default == Some(true) { "*" } else { " " };
        let range = match row.max_cuda {
            Some(max) => format!("{}–{max}", row.min_cuda),
            None => format!("{}+", row.min_cuda),
        };
        let until = row
            .default_until
            .map_or_else(String::new, |v| v.to_string());
        let mut products: Vec<String> = row.products.iter().map(|&p| p.to_owned()).collect();
        if row.jetson {
            match products.first_mut() {
                Some(first) => *first = format!("Jetson: {first}"),
                None => products.push("Jetson".to_owned()),
            }
        }
        let lead = format!(
            "{:<12} {:<10} {:<14} {:<14} ",
            format!("{}{mark}", row.capability),
            row.architecture,
            range,
            until,
        );
        lines.push(crate::table::list_row(&lead, &products, width));
    }
    if let Some(cuda) = cuda {
        lines.push(format!(
            "\n* in the default set of CUDA {cuda} (x86_64 and aarch64 servers)"
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}
