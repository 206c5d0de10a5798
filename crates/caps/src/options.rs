//! The standard CUDA build options and their validation: the one place that decides
//! which GPU targets a build gets.

use std::fmt;

use serde::Serialize;

use crate::capability::{Capability, Variant};
use crate::platform::HostPlatform;
use crate::table::{self, GpuArch, OLDEST_CUDA};
use crate::version::CudaVersion;

/// What a user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaOptions {
    pub cuda: CudaVersion,
    /// `None`: the default set for the CUDA release and platform.
    pub capabilities: Option<Vec<Capability>>,
    /// Embed PTX for the highest capability so that newer GPUs can JIT it.
    pub forward_compat: bool,
    pub platform: HostPlatform,
}

/// Options after validation: the exact targets a build gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ResolvedOptions {
    pub cuda: CudaVersion,
    pub platform: HostPlatform,
    /// Sorted, without duplicates, never empty.
    pub capabilities: Vec<Capability>,
    /// True when `capabilities` is the default set rather than an explicit list.
    pub default_capabilities: bool,
    pub forward_compat: bool,
    /// The PTX target embedded for forward compatibility, if any.
    pub ptx: Option<Capability>,
    pub warnings: Vec<OptionsWarning>,
}

/// Something legal but probably not what the user meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OptionsWarning {
    /// Forward compatibility asked for PTX, but the highest capability is `a` or `f`,
    /// whose PTX runs only on that architecture or family: the PTX is emitted for the
    /// baseline capability instead.
    SpecificPtxReplaced {
        highest: Capability,
        ptx: Capability,
    },
}

impl fmt::Display for OptionsWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsWarning::SpecificPtxReplaced { highest, ptx } => {
                let reach = match highest.variant() {
                    Variant::FamilySpecific => "its family",
                    _ => "that one architecture",
                };
                write!(
                    f,
                    "forward compatibility with {highest} as the highest capability makes little sense: \
                     {} PTX runs on {reach} only, so the PTX is emitted as {} instead",
                    highest.compute_name(),
                    ptx.compute_name()
                )
            }
        }
    }
}

/// Options that cannot produce a working build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error(
        "no capabilities given: name at least one (for example 8.6) or leave them out for the default set"
    )]
    NoCapabilities,
    #[error(
        "CUDA {cuda} is older than any release cudapkgs knows (the GPU table starts at CUDA {oldest})"
    )]
    CudaTooOld {
        cuda: CudaVersion,
        oldest: CudaVersion,
    },
    #[error("unknown {} {}; known capabilities: {}", plural(unknown.len(), "capability", "capabilities"), join(unknown), join(known))]
    UnknownCapabilities {
        unknown: Vec<Capability>,
        known: Vec<Capability>,
    },
    #[error("{}; CUDA {cuda} supports {}", describe_unsupported(unsupported, *cuda), join(supported))]
    UnsupportedByCuda {
        cuda: CudaVersion,
        unsupported: Vec<Capability>,
        supported: Vec<Capability>,
    },
    #[error(
        "Jetson {} {} {} an aarch64 host, but the host platform is {platform}",
        plural(jetson.len(), "capability", "capabilities"),
        join(jetson),
        plural(jetson.len(), "needs", "need")
    )]
    JetsonOnNonAarch64 {
        jetson: Vec<Capability>,
        platform: HostPlatform,
        /// The platform that builds for them.
        suggested: HostPlatform,
        /// The capabilities the host platform does build for.
        alternatives: Vec<Capability>,
    },
    #[error(
        "Jetson {} {} {} NVIDIA's separate Jetson packages and cannot share a build with {}; build them separately",
        plural(jetson.len(), "capability", "capabilities"),
        join(jetson),
        plural(jetson.len(), "uses", "use"),
        join(others)
    )]
    JetsonMixed {
        jetson: Vec<Capability>,
        others: Vec<Capability>,
    },
    #[error(
        "{} {} {} NVIDIA's Jetson packages, but the host platform is {platform}",
        plural(jetson.len(), "capability", "capabilities"),
        join(jetson),
        plural(jetson.len(), "needs", "need")
    )]
    JetsonNeedsJetsonPlatform {
        jetson: Vec<Capability>,
        platform: HostPlatform,
    },
    #[error(
        "the aarch64-jetson platform builds only for Jetson boards, but {} {} not; choose from {} or build for aarch64-server",
        join(others),
        plural(others.len(), "is", "are"),
        join(jetson_choices)
    )]
    NonJetsonOnJetsonPlatform {
        others: Vec<Capability>,
        jetson_choices: Vec<Capability>,
    },
}

fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
}

fn join(capabilities: &[Capability]) -> String {
    let names: Vec<String> = capabilities.iter().map(ToString::to_string).collect();
    names.join(", ")
}

fn describe_unsupported(unsupported: &[Capability], cuda: CudaVersion) -> String {
    let parts: Vec<String> = unsupported
        .iter()
        .map(|capability| {
            let range = table::lookup(*capability).map_or_else(String::new, GpuArch::cuda_range);
            format!("capability {capability} is not supported by CUDA {cuda} (it needs {range})")
        })
        .collect();
    parts.join("; ")
}

fn rows(capabilities: &[Capability]) -> impl Iterator<Item = &'static GpuArch> + '_ {
    capabilities
        .iter()
        .filter_map(|capability| table::lookup(*capability))
}

/// Refuses capabilities that are not in the GPU table (no GPU has them), naming the
/// known ones.
pub fn check_known(capabilities: &[Capability]) -> Result<(), OptionsError> {
    let unknown: Vec<Capability> = capabilities
        .iter()
        .copied()
        .filter(|capability| table::lookup(*capability).is_none())
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(OptionsError::UnknownCapabilities {
        unknown,
        known: table::GPU_TABLE
            .iter()
            .map(|arch| arch.capability)
            .collect(),
    })
}

impl CudaOptions {
    /// Validates the options and fixes the exact target list.
    pub fn resolve(&self) -> Result<ResolvedOptions, OptionsError> {
        if self.cuda < OLDEST_CUDA {
            return Err(OptionsError::CudaTooOld {
                cuda: self.cuda,
                oldest: OLDEST_CUDA,
            });
        }
        let (mut capabilities, default_capabilities) = match &self.capabilities {
            Some(list) => (list.clone(), false),
            None => (self.default_set(), true),
        };
        capabilities.sort();
        capabilities.dedup();
        if capabilities.is_empty() {
            return Err(OptionsError::NoCapabilities);
        }
        self.check(&capabilities)?;

        let mut warnings = Vec::new();
        let ptx = if self.forward_compat {
            let highest = *capabilities.last().expect("checked non-empty");
            let ptx = highest.without_variant();
            if ptx != highest {
                warnings.push(OptionsWarning::SpecificPtxReplaced { highest, ptx });
            }
            Some(ptx)
        } else {
            None
        };

        Ok(ResolvedOptions {
            cuda: self.cuda,
            platform: self.platform,
            capabilities,
            default_capabilities,
            forward_compat: self.forward_compat,
            ptx,
            warnings,
        })
    }

    /// The default set: on Jetson boards the Jetson capabilities of this release, elsewhere
    /// the table's default set.
    fn default_set(&self) -> Vec<Capability> {
        if self.platform == HostPlatform::Aarch64Jetson {
            self.jetson_platform_choices()
                .into_iter()
                .filter(|capability| capability.variant() == Variant::Baseline)
                .collect()
        } else {
            table::default_capabilities(self.cuda)
        }
    }

    fn jetson_platform_choices(&self) -> Vec<Capability> {
        table::GPU_TABLE
            .iter()
            .filter(|arch| arch.supported_by(self.cuda) && arch.needs_jetson_platform())
            .map(|arch| arch.capability)
            .collect()
    }

    fn check(&self, capabilities: &[Capability]) -> Result<(), OptionsError> {
        check_known(capabilities)?;

        let unsupported: Vec<Capability> = rows(capabilities)
            .filter(|arch| !arch.supported_by(self.cuda))
            .map(|arch| arch.capability)
            .collect();
        if !unsupported.is_empty() {
            return Err(OptionsError::UnsupportedByCuda {
                cuda: self.cuda,
                unsupported,
                supported: table::supported_capabilities(self.cuda),
            });
        }

        let jetson: Vec<Capability> = rows(capabilities)
            .filter(|arch| arch.jetson)
            .map(|arch| arch.capability)
            .collect();
        if !jetson.is_empty() && !self.platform.is_aarch64() {
            let suggested = if rows(&jetson).any(GpuArch::needs_jetson_platform) {
                HostPlatform::Aarch64Jetson
            } else {
                HostPlatform::Aarch64Server
            };
            return Err(OptionsError::JetsonOnNonAarch64 {
                jetson,
                platform: self.platform,
                suggested,
                alternatives: table::default_capabilities(self.cuda),
            });
        }

        let (separate, others): (Vec<&GpuArch>, Vec<&GpuArch>) =
            rows(capabilities).partition(|arch| arch.needs_jetson_platform());
        let separate: Vec<Capability> = separate.iter().map(|arch| arch.capability).collect();
        let others: Vec<Capability> = others.iter().map(|arch| arch.capability).collect();
        if !separate.is_empty() && !others.is_empty() {
            return Err(OptionsError::JetsonMixed {
                jetson: separate,
                others,
            });
        }
        if !separate.is_empty() && self.platform != HostPlatform::Aarch64Jetson {
            return Err(OptionsError::JetsonNeedsJetsonPlatform {
                jetson: separate,
                platform: self.platform,
            });
        }
        if !others.is_empty() && self.platform == HostPlatform::Aarch64Jetson {
            return Err(OptionsError::NonJetsonOnJetsonPlatform {
                others,
                jetson_choices: self.jetson_platform_choices(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::parse_capability_list;

    fn options(cuda: &str, capabilities: Option<&str>) -> CudaOptions {
        CudaOptions {
            cuda: cuda.parse().expect(cuda),
            capabilities: capabilities.map(|list| parse_capability_list(list).expect(list)),
            forward_compat: true,
            platform: HostPlatform::X86_64,
        }
    }

    fn names(capabilities: &[Capability]) -> String {
        join(capabilities)
    }

    #[test]
    fn default_set_for_cuda_12_9_on_x86_64() {
        let resolved = options("12.9", None).resolve().expect("valid");
        assert_eq!(
            names(&resolved.capabilities),
            "7.5, 8.0, 8.6, 8.9, 9.0, 10.0, 10.3, 12.0, 12.1"
        );
        assert!(resolved.default_capabilities);
        assert_eq!(resolved.ptx.map(|c| c.to_string()).as_deref(), Some("12.1"));
        assert!(resolved.warnings.is_empty());
    }

    #[test]
    fn explicit_lists_are_sorted_and_deduplicated() {
        let resolved = options("12.9", Some("9.0 8.6 sm_86 7.5"))
            .resolve()
            .expect("valid");
        assert_eq!(names(&resolved.capabilities), "7.5, 8.6, 9.0");
        assert!(!resolved.default_capabilities);
    }

    #[test]
    fn refuses_unknown_capabilities_listing_the_known_ones() {
        let err = options("12.9", Some("8.6 9.1 6.9"))
            .resolve()
            .expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.starts_with("unknown capabilities 6.9, 9.1; known capabilities: 3.5, 3.7"),
            "{text}"
        );
        assert!(text.contains("12.1f"), "{text}");
    }

    #[test]
    fn refuses_capabilities_outside_the_cuda_range_saying_the_range() {
        let text = options("12.9", Some("3.5 8.6"))
            .resolve()
            .expect_err("old")
            .to_string();
        assert!(
            text.starts_with("capability 3.5 is not supported by CUDA 12.9 (it needs CUDA 10.0 to 11.8); CUDA 12.9 supports 5.0, 5.2"),
            "{text}"
        );
        let text = options("12.6", Some("10.0"))
            .resolve()
            .expect_err("new")
            .to_string();
        assert!(text.contains("(it needs CUDA 12.7 and later)"), "{text}");
        let text = options("13.0", Some("10.1f"))
            .resolve()
            .expect_err("gone")
            .to_string();
        assert!(text.contains("(it needs CUDA 12.9 only)"), "{text}");
    }

    #[test]
    fn refuses_jetson_on_x86_64() {
        let text = options("12.6", Some("8.7"))
            .resolve()
            .expect_err("jetson")
            .to_string();
        assert!(
            text.starts_with(
                "Jetson capability 8.7 needs an aarch64 host, but the host platform is x86_64"
            ),
            "{text}"
        );
        let error = options("12.6", Some("8.7")).resolve().expect_err("jetson");
        assert!(
            matches!(
                error,
                OptionsError::JetsonOnNonAarch64 {
                    suggested: HostPlatform::Aarch64Jetson,
                    ..
                }
            ),
            "{error:?}"
        );
        let error = options("13.0", Some("11.0")).resolve().expect_err("thor");
        assert!(
            matches!(
                error,
                OptionsError::JetsonOnNonAarch64 {
                    suggested: HostPlatform::Aarch64Server,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn refuses_pre_thor_jetson_mixed_with_others() {
        let mut opts = options("12.6", Some("8.7 9.0"));
        opts.platform = HostPlatform::Aarch64Jetson;
        let text = opts.resolve().expect_err("mixed").to_string();
        assert_eq!(
            text,
            "Jetson capability 8.7 uses NVIDIA's separate Jetson packages and cannot share a build with 9.0; build them separately"
        );
        // Thor under CUDA 13 lives on the unified aarch64 packages and mixes freely.
        let mut thor = options("13.0", Some("11.0 9.0 12.1"));
        thor.platform = HostPlatform::Aarch64Server;
        assert!(thor.resolve().is_ok());
        // Xavier and Orin share the Jetson packages.
        let mut boards = options("12.2", Some("7.2 8.7"));
        boards.platform = HostPlatform::Aarch64Jetson;
        assert_eq!(
            names(&boards.resolve().expect("valid").capabilities),
            "7.2, 8.7"
        );
    }

    #[test]
    fn jetson_platform_and_capabilities_must_agree() {
        let mut server = options("12.6", Some("8.7"));
        server.platform = HostPlatform::Aarch64Server;
        let error = server.resolve().expect_err("server");
        assert!(
            matches!(error, OptionsError::JetsonNeedsJetsonPlatform { .. }),
            "{error:?}"
        );

        let mut board = options("12.6", Some("9.0"));
        board.platform = HostPlatform::Aarch64Jetson;
        let text = board.resolve().expect_err("board").to_string();
        assert!(
            text.contains("builds only for Jetson boards, but 9.0 is not; choose from 8.7"),
            "{text}"
        );
    }

    #[test]
    fn jetson_boards_default_to_their_capabilities() {
        for (cuda, expected) in [
            ("12.2", "7.2, 8.7"),
            ("12.6", "8.7"),
            ("12.9", "8.7, 10.1"),
            ("13.0", "8.7"),
        ] {
            let mut board = options(cuda, None);
            board.platform = HostPlatform::Aarch64Jetson;
            assert_eq!(
                names(&board.resolve().expect(cuda).capabilities),
                expected,
                "CUDA {cuda}"
            );
        }
    }

    #[test]
    fn forward_compat_on_specific_capabilities_warns_and_uses_the_baseline_ptx() {
        let resolved = options("12.9", Some("8.0 9.0a")).resolve().expect("valid");
        assert_eq!(resolved.ptx.map(|c| c.to_string()).as_deref(), Some("9.0"));
        assert_eq!(resolved.warnings.len(), 1);
        let text = resolved.warnings[0].to_string();
        assert!(
            text.contains("compute_90a PTX runs on that one architecture only"),
            "{text}"
        );
        assert!(text.contains("emitted as compute_90 instead"), "{text}");

        let family = options("12.9", Some("10.0f")).resolve().expect("valid");
        assert!(
            family.warnings[0]
                .to_string()
                .contains("runs on its family only")
        );

        let mut off = options("12.9", Some("9.0a"));
        off.forward_compat = false;
        let resolved = off.resolve().expect("valid");
        assert!(resolved.warnings.is_empty() && resolved.ptx.is_none());
    }

    #[test]
    fn refuses_empty_lists_and_ancient_releases() {
        assert_eq!(
            options("12.9", Some("")).resolve(),
            Err(OptionsError::NoCapabilities)
        );
        let text = options("9.2", None).resolve().expect_err("old").to_string();
        assert!(text.contains("starts at CUDA 10.0"), "{text}");
    }
}
