//! CUDA capabilities, CUDA versions, host platforms, the GPU table, product names,
//! nvcc's host-compiler limits, and the standard build options rendered for every
//! build system.
//!
//! Pure data and logic: nothing here touches the file system, the network or the
//! environment.

/// Serializes a type as its `Display` text and deserializes it through `FromStr`, so
/// JSON and configuration files spell values the way the command line does; its JSON
/// Schema is a string.
macro_rules! serde_as_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        /// A string in JSON, as the command line spells it.
        impl schemars::JsonSchema for $type {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string" })
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

mod capability;
mod compiler;
mod options;
mod platform;
mod products;
mod render;
mod table;
mod version;

pub use capability::{Capability, ParseCapabilityError, Variant, parse_capability_list};
pub use compiler::{
    CompilerFamily, CompilerVerdict, HostCompiler, ParseCompilerError, UnknownCompilerLimits,
    check_host_compiler, newest_tabulated_cuda,
};
pub use options::{CudaOptions, OptionsError, OptionsWarning, ResolvedOptions, check_known};
pub use platform::{HostPlatform, ParsePlatformError};
pub use products::{PRODUCTS, Product, find_product, products_with, similar_products};
pub use table::{
    GPU_TABLE, GpuArch, OLDEST_CUDA, default_capabilities, lookup, supported_capabilities,
};
pub use version::{CudaVersion, ParseCudaVersionError};

/// The CUDA release used when none is configured: the one Nixpkgs' default
/// `cudaPackages` set tracks.
pub const DEFAULT_CUDA: CudaVersion = CudaVersion::new(12, 9);

/// Every way this crate refuses input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Capability(#[from] ParseCapabilityError),
    #[error(transparent)]
    CudaVersion(#[from] ParseCudaVersionError),
    #[error(transparent)]
    Platform(#[from] ParsePlatformError),
    #[error(transparent)]
    Compiler(#[from] ParseCompilerError),
    #[error(transparent)]
    CompilerLimits(#[from] UnknownCompilerLimits),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(
        "unknown GPU `{name}`{}; run `cudapkgs gpus` for the known names, or give the capability (for example 8.6)",
        suggestions(similar)
    )]
    UnknownGpu {
        name: String,
        similar: Vec<&'static str>,
    },
}

fn suggestions(similar: &[&str]) -> String {
    if similar.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", similar.join(", "))
    }
}

/// Resolves what a user typed after `--gpu`: a product name (`RTX 4090`) or a
/// capability (`8.9`, `sm_89`).
pub fn gpu_capability(name: &str, cuda: CudaVersion) -> Result<Capability, Error> {
    if let Some(product) = find_product(name) {
        return Ok(product.capability_for(cuda));
    }
    if let Ok(capability) = name.parse::<Capability>() {
        return Ok(capability);
    }
    Err(Error::UnknownGpu {
        name: name.to_owned(),
        similar: similar_products(name).iter().map(|p| p.name).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_names_and_capabilities_both_resolve() {
        let cuda = DEFAULT_CUDA;
        assert_eq!(
            gpu_capability("RTX 4090", cuda),
            Ok(Capability::baseline(8, 9))
        );
        assert_eq!(
            gpu_capability("sm_90a", cuda).map(|c| c.to_string()),
            Ok("9.0a".into())
        );
        let err = gpu_capability("RTX 6000", cuda)
            .expect_err("ambiguous")
            .to_string();
        assert!(err.starts_with("unknown GPU `RTX 6000` (did you mean Quadro RTX 6000, RTX A6000, RTX 6000 Ada, RTX PRO 6000 Blackwell?)"), "{err}");
        let err = gpu_capability("Radeon", cuda)
            .expect_err("unknown")
            .to_string();
        assert_eq!(
            err,
            "unknown GPU `Radeon`; run `cudapkgs gpus` for the known names, or give the capability (for example 8.6)"
        );
    }
}
