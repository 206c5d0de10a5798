//! The GPU capability table: which CUDA releases support which capability, and which
//! capabilities a build targets when nobody says otherwise.

use serde::Serialize;

use crate::capability::{Capability, Variant};
use crate::version::CudaVersion;

/// One capability's row in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct GpuArch {
    pub capability: Capability,
    /// Microarchitecture name: `Hopper`.
    pub architecture: &'static str,
    /// Part of NVIDIA's Jetson line (aarch64 boards).
    pub jetson: bool,
    /// First CUDA release that supports it.
    pub min_cuda: CudaVersion,
    /// Last CUDA release that supports it (inclusive); `None` while still supported.
    pub max_cuda: Option<CudaVersion>,
    /// Last CUDA release in which it belongs to the default set; `None` while it does.
    pub default_until: Option<CudaVersion>,
    /// Products or remarks.
    pub notes: &'static str,
}

impl GpuArch {
    pub fn supported_by(&self, cuda: CudaVersion) -> bool {
        self.min_cuda <= cuda && self.max_cuda.is_none_or(|max| cuda <= max)
    }

    /// In the default set: supported, baseline, not Jetson, and not retired from defaults.
    pub fn default_for(&self, cuda: CudaVersion) -> bool {
        self.supported_by(cuda)
            && !self.jetson
            && self.capability.variant() == Variant::Baseline
            && self.default_until.is_none_or(|last| cuda <= last)
    }

    /// Jetson capabilities whose builds use NVIDIA's separate Jetson (`linux-aarch64`)
    /// packages: Xavier, Orin, and Thor while it was 10.1. Thor moved to the unified
    /// aarch64 packages as 11.0 in CUDA 13, so 11.x shares builds with other GPUs.
    pub fn needs_jetson_platform(&self) -> bool {
        self.jetson && self.capability.major() < 11
    }

    /// The supported range in words: `CUDA 10.0 to 11.8`, `CUDA 11.8 and later`.
    pub fn cuda_range(&self) -> String {
        match self.max_cuda {
            Some(max) if max == self.min_cuda => format!("CUDA {max} only"),
            Some(max) => format!("CUDA {} to {max}", self.min_cuda),
            None => format!("CUDA {} and later", self.min_cuda),
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one argument per table column keeps the table readable"
)]
const fn row(
    major: u8,
    minor: u8,
    variant: Variant,
    architecture: &'static str,
    min: (u8, u8),
    max: Option<(u8, u8)>,
    default_until: Option<(u8, u8)>,
    jetson: bool,
    notes: &'static str,
) -> GpuArch {
    const fn version(v: Option<(u8, u8)>) -> Option<CudaVersion> {
        match v {
            Some((major, minor)) => Some(CudaVersion::new(major, minor)),
            None => None,
        }
    }
    GpuArch {
        capability: Capability::new(major, minor, variant),
        architecture,
        jetson,
        min_cuda: CudaVersion::new(min.0, min.1),
        max_cuda: version(max),
        default_until: version(default_until),
        notes,
    }
}

use Variant::{ArchSpecific as A, Baseline as B, FamilySpecific as F};

/// Every known capability, sorted.
pub static GPU_TABLE: &[GpuArch] = &[
    row(
        3,
        5,
        B,
        "Kepler",
        (10, 0),
        Some((11, 8)),
        Some((11, 0)),
        false,
        "Tesla K40",
    ),
    row(
        3,
        7,
        B,
        "Kepler",
        (10, 0),
        Some((11, 8)),
        Some((11, 0)),
        false,
        "Tesla K80",
    ),
    row(
        5,
        0,
        B,
        "Maxwell",
        (10, 0),
        Some((12, 9)),
        Some((11, 0)),
        false,
        "Quadro M series",
    ),
    row(
        5,
        2,
        B,
        "Maxwell",
        (10, 0),
        Some((12, 9)),
        Some((11, 0)),
        false,
        "GTX 900, Tesla M40/M60",
    ),
    row(
        6,
        0,
        B,
        "Pascal",
        (10, 0),
        Some((12, 9)),
        Some((12, 3)),
        false,
        "Tesla P100",
    ),
    row(
        6,
        1,
        B,
        "Pascal",
        (10, 0),
        Some((12, 9)),
        Some((12, 3)),
        false,
        "GTX 10xx, Tesla P4/P40",
    ),
    row(
        7,
        0,
        B,
        "Volta",
        (10, 0),
        Some((12, 9)),
        Some((12, 5)),
        false,
        "V100, Titan V",
    ),
    row(
        7,
        2,
        B,
        "Volta",
        (10, 0),
        Some((12, 2)),
        None,
        true,
        "Jetson Xavier",
    ),
    row(
        7,
        5,
        B,
        "Turing",
        (10, 0),
        None,
        None,
        false,
        "T4, RTX 20xx",
    ),
    row(8, 0, B, "Ampere", (11, 2), None, None, false, "A100, A30"),
    row(
        8,
        6,
        B,
        "Ampere",
        (11, 2),
        None,
        None,
        false,
        "RTX 30xx, A10, A40, RTX A6000",
    ),
    row(8, 7, B, "Ampere", (11, 4), None, None, true, "Jetson Orin"),
    row(
        8,
        9,
        B,
        "Ada",
        (11, 8),
        None,
        None,
        false,
        "RTX 40xx, L4, L40, L40S",
    ),
    row(
        9,
        0,
        B,
        "Hopper",
        (11, 8),
        None,
        None,
        false,
        "H100, H200, GH200",
    ),
    row(
        9,
        0,
        A,
        "Hopper",
        (12, 0),
        None,
        None,
        false,
        "arch-specific",
    ),
    row(
        10,
        0,
        B,
        "Blackwell",
        (12, 7),
        None,
        None,
        false,
        "B200, GB200",
    ),
    row(
        10,
        0,
        A,
        "Blackwell",
        (12, 7),
        None,
        None,
        false,
        "arch-specific",
    ),
    row(10, 0, F, "Blackwell", (12, 9), None, None, false, "family"),
    row(
        10,
        1,
        B,
        "Blackwell",
        (12, 7),
        Some((12, 9)),
        None,
        true,
        "Jetson Thor before CUDA 13",
    ),
    row(
        10,
        1,
        A,
        "Blackwell",
        (12, 7),
        Some((12, 9)),
        None,
        true,
        "Jetson Thor before CUDA 13",
    ),
    row(
        10,
        1,
        F,
        "Blackwell",
        (12, 9),
        Some((12, 9)),
        None,
        true,
        "Jetson Thor before CUDA 13",
    ),
    row(
        10,
        3,
        B,
        "Blackwell",
        (12, 9),
        None,
        None,
        false,
        "B300, GB300",
    ),
    row(
        10,
        3,
        A,
        "Blackwell",
        (12, 9),
        None,
        None,
        false,
        "arch-specific",
    ),
    row(10, 3, F, "Blackwell", (12, 9), None, None, false, "family"),
    row(
        11,
        0,
        B,
        "Blackwell",
        (13, 0),
        None,
        None,
        true,
        "Jetson Thor from CUDA 13",
    ),
    row(
        11,
        0,
        A,
        "Blackwell",
        (13, 0),
        None,
        None,
        true,
        "Jetson Thor from CUDA 13",
    ),
    row(
        11,
        0,
        F,
        "Blackwell",
        (13, 0),
        None,
        None,
        true,
        "Jetson Thor from CUDA 13",
    ),
    row(
        12,
        0,
        B,
        "Blackwell",
        (12, 8),
        None,
        None,
        false,
        "RTX 50xx, RTX PRO 6000",
    ),
    row(
        12,
        0,
        A,
        "Blackwell",
        (12, 8),
        None,
        None,
        false,
        "arch-specific",
    ),
    row(12, 0, F, "Blackwell", (12, 9), None, None, false, "family"),
    row(
        12,
        1,
        B,
        "Blackwell",
        (12, 9),
        None,
        None,
        false,
        "DGX Spark",
    ),
    row(
        12,
        1,
        A,
        "Blackwell",
        (12, 9),
        None,
        None,
        false,
        "arch-specific",
    ),
    row(12, 1, F, "Blackwell", (12, 9), None, None, false, "family"),
];

/// The table row of a capability, if it is a known one.
pub fn lookup(capability: Capability) -> Option<&'static GpuArch> {
    GPU_TABLE.iter().find(|arch| arch.capability == capability)
}

/// Every capability the given CUDA release supports, sorted.
pub fn supported_capabilities(cuda: CudaVersion) -> Vec<Capability> {
    GPU_TABLE
        .iter()
        .filter(|arch| arch.supported_by(cuda))
        .map(|arch| arch.capability)
        .collect()
}

/// The default capability set for a CUDA release (non-Jetson hosts).
pub fn default_capabilities(cuda: CudaVersion) -> Vec<Capability> {
    GPU_TABLE
        .iter()
        .filter(|arch| arch.default_for(cuda))
        .map(|arch| arch.capability)
        .collect()
}

/// The oldest CUDA release the table knows about.
pub const OLDEST_CUDA: CudaVersion = CudaVersion::new(10, 0);

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> CudaVersion {
        text.parse().expect(text)
    }

    fn list(text: &str) -> Vec<Capability> {
        crate::capability::parse_capability_list(text).expect(text)
    }

    #[test]
    fn table_is_sorted_without_duplicates() {
        for pair in GPU_TABLE.windows(2) {
            assert!(pair[0].capability < pair[1].capability, "{pair:?}");
        }
    }

    #[test]
    fn variant_rows_match_the_suffix_and_start_no_earlier_than_their_baseline() {
        for arch in GPU_TABLE {
            let base = lookup(arch.capability.without_variant()).expect("baseline row exists");
            assert!(base.min_cuda <= arch.min_cuda, "{}", arch.capability);
            assert_eq!(base.architecture, arch.architecture);
            assert_eq!(base.jetson, arch.jetson);
            if let Some(last) = arch.default_until {
                assert!(last >= arch.min_cuda);
            }
        }
    }

    #[test]
    fn default_sets_per_cuda_release() {
        for (cuda, expected) in [
            ("11.0", "3.5 3.7 5.0 5.2 6.0 6.1 7.0 7.5"),
            ("11.8", "6.0 6.1 7.0 7.5 8.0 8.6 8.9 9.0"),
            ("12.0", "6.0 6.1 7.0 7.5 8.0 8.6 8.9 9.0"),
            ("12.3", "6.0 6.1 7.0 7.5 8.0 8.6 8.9 9.0"),
            ("12.4", "7.0 7.5 8.0 8.6 8.9 9.0"),
            ("12.6", "7.5 8.0 8.6 8.9 9.0"),
            ("12.8", "7.5 8.0 8.6 8.9 9.0 10.0 12.0"),
            ("12.9", "7.5 8.0 8.6 8.9 9.0 10.0 10.3 12.0 12.1"),
            ("13.0", "7.5 8.0 8.6 8.9 9.0 10.0 10.3 12.0 12.1"),
        ] {
            assert_eq!(default_capabilities(v(cuda)), list(expected), "CUDA {cuda}");
        }
    }

    /// Every row's bounds: supported exactly from `min_cuda` through `max_cuda`.
    #[test]
    fn every_row_is_supported_exactly_within_its_range() {
        for arch in GPU_TABLE {
            let min = arch.min_cuda;
            assert!(arch.supported_by(min), "{} at {min}", arch.capability);
            let before = if min.minor() == 0 {
                CudaVersion::new(min.major() - 1, 9)
            } else {
                CudaVersion::new(min.major(), min.minor() - 1)
            };
            assert!(
                !arch.supported_by(before),
                "{} at {before}",
                arch.capability
            );
            match arch.max_cuda {
                Some(max) => {
                    assert!(arch.supported_by(max), "{} at {max}", arch.capability);
                    let after = if max.minor() == 9 {
                        CudaVersion::new(max.major() + 1, 0)
                    } else {
                        CudaVersion::new(max.major(), max.minor() + 1)
                    };
                    assert!(!arch.supported_by(after), "{} at {after}", arch.capability);
                }
                None => assert!(arch.supported_by(v("99.9")), "{}", arch.capability),
            }
        }
    }

    #[test]
    fn reference_rows_spot_checks() {
        let row = |c: &str| lookup(c.parse().expect(c)).expect(c);
        assert_eq!(row("3.7").cuda_range(), "CUDA 10.0 to 11.8");
        assert_eq!(row("10.1f").cuda_range(), "CUDA 12.9 only");
        assert_eq!(row("9.0").cuda_range(), "CUDA 11.8 and later");
        assert!(row("8.7").needs_jetson_platform());
        assert!(row("10.1a").needs_jetson_platform());
        assert!(row("11.0").jetson && !row("11.0").needs_jetson_platform());
        assert!(!row("12.1").jetson);
        assert!(!row("7.0").default_for(v("12.6")) && row("7.0").default_for(v("12.5")));
        assert!(lookup("9.1".parse().expect("9.1")).is_none());
    }

    #[test]
    fn cuda_13_drops_pre_turing_and_thor_moves_to_11() {
        let supported = supported_capabilities(v("13.0"));
        for gone in [
            "5.0", "5.2", "6.0", "6.1", "7.0", "7.2", "10.1", "10.1a", "10.1f",
        ] {
            assert!(!supported.contains(&gone.parse().expect(gone)), "{gone}");
        }
        for present in ["7.5", "8.7", "11.0", "11.0f", "12.1a"] {
            assert!(
                supported.contains(&present.parse().expect(present)),
                "{present}"
            );
        }
    }
}
