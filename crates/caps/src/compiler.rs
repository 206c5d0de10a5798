//! Which host compilers nvcc accepts. nvcc checks the host compiler's major version and
//! refuses ones outside its range, so a build environment has to pick one inside it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::version::CudaVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompilerFamily {
    Gcc,
    Clang,
}

impl CompilerFamily {
    pub fn name(self) -> &'static str {
        match self {
            CompilerFamily::Gcc => "gcc",
            CompilerFamily::Clang => "clang",
        }
    }
}

/// A host compiler at major-version granularity: `gcc-14`, `clang-19`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostCompiler {
    pub family: CompilerFamily,
    pub major: u32,
}

impl fmt::Display for HostCompiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.family.name(), self.major)
    }
}

serde_as_text!(HostCompiler);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host compiler `{input}`: write it like gcc-14, g++-13, gcc14 or clang-19")]
pub struct ParseCompilerError {
    input: String,
}

impl FromStr for HostCompiler {
    type Err = ParseCompilerError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || ParseCompilerError {
            input: input.to_owned(),
        };
        let text = input.trim().to_ascii_lowercase();
        let (family, rest) = [
            ("clang++", CompilerFamily::Clang),
            ("clang", CompilerFamily::Clang),
            ("g++", CompilerFamily::Gcc),
            ("gcc", CompilerFamily::Gcc),
        ]
        .iter()
        .find_map(|(prefix, family)| text.strip_prefix(prefix).map(|rest| (*family, rest)))
        .ok_or_else(error)?;
        let version = rest.trim_start_matches(['-', ' ', '_']);
        let major = version.split('.').next().unwrap_or_default();
        if major.is_empty() || major.len() > 3 || !major.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        let rest_is_version = version
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        if !rest_is_version {
            return Err(error());
        }
        Ok(HostCompiler {
            family,
            major: major.parse().map_err(|_| error())?,
        })
    }
}

/// From this CUDA release on (until the next row), nvcc accepts these major versions.
#[derive(Debug, Clone, Copy)]
struct Limits {
    since: CudaVersion,
    gcc_max: u32,
    clang_max: u32,
}

const GCC_MIN: u32 = 6;
const CLANG_MIN: u32 = 7;

/// NVIDIA's host-compiler support policy per release; a release without its own row
/// (12.7 was never published) takes the row before it.
const LIMITS: &[Limits] = &[
    limits(11, 0, 9, 9),
    limits(11, 1, 10, 10),
    limits(11, 2, 10, 11),
    limits(11, 4, 10, 12),
    // nvcc 11.4/11.5 nominally take gcc 11, but glibc headers of that era break CUDA
    // code under it; the working maximum moves to 11 with CUDA 11.6.
    limits(11, 6, 11, 12),
    limits(11, 7, 11, 13),
    limits(11, 8, 11, 14),
    limits(12, 0, 12, 14),
    limits(12, 1, 12, 15),
    limits(12, 2, 12, 16),
    limits(12, 4, 13, 17),
    limits(12, 6, 13, 18),
    limits(12, 8, 14, 19),
    limits(13, 0, 15, 20),
];

const fn limits(major: u8, minor: u8, gcc_max: u32, clang_max: u32) -> Limits {
    Limits {
        since: CudaVersion::new(major, minor),
        gcc_max,
        clang_max,
    }
}

/// The newest release whose limits are tabulated; later releases are assumed to
/// accept at least what it accepts.
pub fn newest_tabulated_cuda() -> CudaVersion {
    LIMITS[LIMITS.len() - 1].since
}

/// The answer to "does nvcc from this CUDA release take this compiler?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CompilerVerdict {
    pub compiler: HostCompiler,
    pub cuda: CudaVersion,
    pub accepted: bool,
    /// Oldest and newest major version of this family that nvcc accepts.
    pub min_major: u32,
    pub max_major: u32,
    /// The compiler to use instead when this one is refused.
    pub use_instead: Option<HostCompiler>,
    /// Set when the CUDA release is newer than the table: limits are those of the
    /// newest tabulated release.
    pub extrapolated_from: Option<CudaVersion>,
}

impl fmt::Display for CompilerVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = self.compiler.family.name();
        let range = format!("{family} {} to {}", self.min_major, self.max_major);
        if self.accepted {
            write!(
                f,
                "{} is accepted by nvcc from CUDA {} (it takes {range})",
                self.compiler, self.cuda
            )?;
        } else {
            write!(
                f,
                "{} is refused by nvcc from CUDA {} (it takes {range})",
                self.compiler, self.cuda
            )?;
            if let Some(instead) = self.use_instead {
                write!(f, "; use {instead} instead")?;
            }
        }
        if let Some(base) = self.extrapolated_from {
            write!(
                f,
                " [limits of CUDA {base}, the newest release tabulated; newer releases may accept more]"
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no host-compiler limits are known for CUDA {cuda}: the table starts at CUDA {oldest}")]
pub struct UnknownCompilerLimits {
    pub cuda: CudaVersion,
    pub oldest: CudaVersion,
}

/// Checks a host compiler against nvcc's limits for a CUDA release.
pub fn check_host_compiler(
    compiler: HostCompiler,
    cuda: CudaVersion,
) -> Result<CompilerVerdict, UnknownCompilerLimits> {
    let row = LIMITS
        .iter()
        .rev()
        .find(|row| row.since <= cuda)
        .ok_or(UnknownCompilerLimits {
            cuda,
            oldest: LIMITS[0].since,
        })?;
    let (min_major, max_major) = match compiler.family {
        CompilerFamily::Gcc => (GCC_MIN, row.gcc_max),
        CompilerFamily::Clang => (CLANG_MIN, row.clang_max),
    };
    let accepted = (min_major..=max_major).contains(&compiler.major);
    let use_instead = (!accepted).then(|| HostCompiler {
        family: compiler.family,
        major: compiler.major.clamp(min_major, max_major),
    });
    let newest = newest_tabulated_cuda();
    Ok(CompilerVerdict {
        compiler,
        cuda,
        accepted,
        min_major,
        max_major,
        use_instead,
        extrapolated_from: (cuda > newest).then_some(newest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(text: &str) -> HostCompiler {
        text.parse().expect(text)
    }

    fn v(text: &str) -> CudaVersion {
        text.parse().expect(text)
    }

    #[test]
    fn parses_compiler_spellings() {
        for (text, family, major) in [
            ("gcc-14", CompilerFamily::Gcc, 14),
            ("gcc14", CompilerFamily::Gcc, 14),
            ("gcc 14.2.0", CompilerFamily::Gcc, 14),
            ("g++-13", CompilerFamily::Gcc, 13),
            ("clang-19", CompilerFamily::Clang, 19),
            ("clang++-18.1", CompilerFamily::Clang, 18),
            ("GCC_12", CompilerFamily::Gcc, 12),
        ] {
            assert_eq!(cc(text), HostCompiler { family, major }, "{text}");
        }
        for bad in [
            "gcc",
            "icc-2021",
            "gcc-",
            "gcc-x",
            "clang-19.x",
            "gcc-14..1",
        ] {
            assert!(bad.parse::<HostCompiler>().is_err(), "{bad}");
        }
    }

    /// The gcc maximum from the reference, for every release in each range.
    #[test]
    fn gcc_maximum_per_release() {
        for (releases, max) in [
            (&["11.0"][..], 9),
            (&["11.1", "11.2", "11.3", "11.4", "11.5"][..], 10),
            (&["11.6", "11.7", "11.8"][..], 11),
            (&["12.0", "12.1", "12.2", "12.3"][..], 12),
            (&["12.4", "12.5", "12.6"][..], 13),
            (&["12.8", "12.9"][..], 14),
            (&["13.0"][..], 15),
        ] {
            for release in releases {
                let ok = check_host_compiler(cc(&format!("gcc-{max}")), v(release)).expect("known");
                assert!(ok.accepted, "gcc-{max} on {release}");
                let refused = check_host_compiler(cc(&format!("gcc-{}", max + 1)), v(release))
                    .expect("known");
                assert!(!refused.accepted, "gcc-{} on {release}", max + 1);
                assert_eq!(refused.use_instead, Some(cc(&format!("gcc-{max}"))));
            }
        }
    }

    #[test]
    fn clang_limits_and_minimums() {
        assert!(
            check_host_compiler(cc("clang-19"), v("12.9"))
                .expect("known")
                .accepted
        );
        assert!(
            !check_host_compiler(cc("clang-20"), v("12.9"))
                .expect("known")
                .accepted
        );
        assert!(
            check_host_compiler(cc("clang-20"), v("13.0"))
                .expect("known")
                .accepted
        );
        let old = check_host_compiler(cc("gcc-5"), v("12.9")).expect("known");
        assert!(!old.accepted);
        assert_eq!(old.use_instead, Some(cc("gcc-6")));
        let old = check_host_compiler(cc("clang-6"), v("12.9")).expect("known");
        assert_eq!(old.use_instead, Some(cc("clang-7")));
    }

    #[test]
    fn messages_name_the_range_and_the_replacement() {
        let verdict = check_host_compiler(cc("gcc-14"), v("12.6")).expect("known");
        assert_eq!(
            verdict.to_string(),
            "gcc-14 is refused by nvcc from CUDA 12.6 (it takes gcc 6 to 13); use gcc-13 instead"
        );
        let verdict = check_host_compiler(cc("gcc-14"), v("12.9")).expect("known");
        assert_eq!(
            verdict.to_string(),
            "gcc-14 is accepted by nvcc from CUDA 12.9 (it takes gcc 6 to 14)"
        );
    }

    #[test]
    fn newer_releases_take_the_newest_row_and_say_so() {
        let verdict = check_host_compiler(cc("gcc-15"), v("13.5")).expect("known");
        assert!(verdict.accepted);
        assert_eq!(verdict.extrapolated_from, Some(v("13.0")));
        assert!(verdict.to_string().contains("newest release tabulated"));
        let err = check_host_compiler(cc("gcc-8"), v("10.2")).expect_err("unknown");
        assert!(err.to_string().contains("starts at CUDA 11.0"), "{err}");
    }
}
