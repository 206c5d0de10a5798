//! Host platforms as NVIDIA's packages distinguish them.

use std::fmt;
use std::str::FromStr;

/// The platform CUDA code is built on and for.
///
/// aarch64 comes in two flavours that NVIDIA packages separately: servers (SBSA, also
/// Grace, DGX Spark and, from CUDA 13, Jetson Thor) and the Jetson boards that run
/// NVIDIA's own Linux for Tegra (Xavier, Orin, and Thor before CUDA 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostPlatform {
    X86_64,
    Aarch64Server,
    Aarch64Jetson,
}

impl HostPlatform {
    pub const ALL: [HostPlatform; 3] = [
        HostPlatform::X86_64,
        HostPlatform::Aarch64Server,
        HostPlatform::Aarch64Jetson,
    ];

    /// The name cudapkgs prints and accepts first.
    pub fn name(self) -> &'static str {
        match self {
            HostPlatform::X86_64 => "x86_64",
            HostPlatform::Aarch64Server => "aarch64-server",
            HostPlatform::Aarch64Jetson => "aarch64-jetson",
        }
    }

    /// The system name in NVIDIA's redistributable manifests.
    pub fn redist_system(self) -> &'static str {
        match self {
            HostPlatform::X86_64 => "linux-x86_64",
            HostPlatform::Aarch64Server => "linux-sbsa",
            HostPlatform::Aarch64Jetson => "linux-aarch64",
        }
    }

    /// The Nix system double.
    pub fn nix_system(self) -> &'static str {
        match self {
            HostPlatform::X86_64 => "x86_64-linux",
            HostPlatform::Aarch64Server | HostPlatform::Aarch64Jetson => "aarch64-linux",
        }
    }

    pub fn is_aarch64(self) -> bool {
        !matches!(self, HostPlatform::X86_64)
    }
}

impl fmt::Display for HostPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

serde_as_text!(HostPlatform);

/// A string that names no host platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown host platform `{input}`: choose x86_64, aarch64-server (also: sbsa, linux-sbsa) or aarch64-jetson (also: jetson, linux-aarch64)"
)]
pub struct ParsePlatformError {
    input: String,
}

impl FromStr for HostPlatform {
    type Err = ParsePlatformError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        // `linux-aarch64` is NVIDIA's name for Jetson packages; the Nix double
        // `aarch64-linux` says nothing about Jetson and means a server.
        match input.trim().to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" | "x86_64-linux" | "linux-x86_64" => {
                Ok(HostPlatform::X86_64)
            }
            "aarch64-server" | "aarch64" | "arm64" | "sbsa" | "linux-sbsa" | "aarch64-linux" => {
                Ok(HostPlatform::Aarch64Server)
            }
            "aarch64-jetson" | "jetson" | "linux-aarch64" | "tegra" => {
                Ok(HostPlatform::Aarch64Jetson)
            }
            _ => Err(ParsePlatformError {
                input: input.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_resolve() {
        for platform in HostPlatform::ALL {
            assert_eq!(
                platform.name().parse::<HostPlatform>().expect("parse"),
                platform
            );
            assert_eq!(
                platform
                    .redist_system()
                    .parse::<HostPlatform>()
                    .expect("parse"),
                platform
            );
        }
        assert_eq!("aarch64-linux".parse(), Ok(HostPlatform::Aarch64Server));
        assert_eq!("Jetson".parse(), Ok(HostPlatform::Aarch64Jetson));
        assert_eq!(HostPlatform::Aarch64Jetson.nix_system(), "aarch64-linux");
    }

    #[test]
    fn unknown_platform_lists_the_choices() {
        let err = "ppc64le"
            .parse::<HostPlatform>()
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("`ppc64le`") && err.contains("aarch64-jetson"),
            "{err}"
        );
    }
}
