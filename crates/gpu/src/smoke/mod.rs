//! One small test per package of the CUDA set, each proving on the GPU that the
//! library under test loads, finds what it loads at run time, and computes a known
//! answer. They run in a child process with an empty environment, so nothing but the
//! files' runpaths and the loader's defaults can find a library, and
//! [`foreign_libraries`] then proves from `/proc/self/maps` where each one came from.

mod blas;
mod dnn;
mod math;
mod nccl;
mod runtime;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::driver::Context;
use crate::error::GpuError;

/// The smoke tests, by package.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SmokeTest {
    Cudart,
    Cublas,
    CublasLt,
    Cudnn,
    Cufft,
    Curand,
    Cusparse,
    Cusolver,
    Nccl,
    Nvrtc,
    NvJitLink,
}

impl SmokeTest {
    pub const ALL: [SmokeTest; 11] = [
        SmokeTest::Cudart,
        SmokeTest::Cublas,
        SmokeTest::CublasLt,
        SmokeTest::Cudnn,
        SmokeTest::Cufft,
        SmokeTest::Curand,
        SmokeTest::Cusparse,
        SmokeTest::Cusolver,
        SmokeTest::Nccl,
        SmokeTest::Nvrtc,
        SmokeTest::NvJitLink,
    ];

    /// The name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            SmokeTest::Cudart => "cudart",
            SmokeTest::Cublas => "cublas",
            SmokeTest::CublasLt => "cublaslt",
            SmokeTest::Cudnn => "cudnn",
            SmokeTest::Cufft => "cufft",
            SmokeTest::Curand => "curand",
            SmokeTest::Cusparse => "cusparse",
            SmokeTest::Cusolver => "cusolver",
            SmokeTest::Nccl => "nccl",
            SmokeTest::Nvrtc => "nvrtc",
            SmokeTest::NvJitLink => "nvjitlink",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|test| test.name() == name)
    }

    /// What the test does, for people.
    pub fn describe(self) -> &'static str {
        match self {
            SmokeTest::Cudart => "device query and a 1 MiB copy there and back",
            SmokeTest::Cublas => "SGEMM against the CPU",
            SmokeTest::CublasLt => "a matmul against the CPU",
            SmokeTest::Cudnn => "a convolution forward against the CPU",
            SmokeTest::Cufft => "a 1-D complex FFT against a DFT",
            SmokeTest::Curand => "uniform numbers, reproducible by seed",
            SmokeTest::Cusparse => "a CSR SpMV against the CPU",
            SmokeTest::Cusolver => "a Cholesky factorisation (potrf), checked by L·Lᵀ",
            SmokeTest::Nccl => "a one-rank all-reduce",
            SmokeTest::Nvrtc => "compile a kernel, load it with the driver and launch it",
            SmokeTest::NvJitLink => "link PTX to a cubin for the GPU and launch it",
        }
    }

    /// The library file name's start before the major version (`libcublas.so.`).
    fn soname_prefix(self) -> &'static str {
        match self {
            SmokeTest::Cudart => "libcudart.so.",
            SmokeTest::Cublas => "libcublas.so.",
            SmokeTest::CublasLt => "libcublasLt.so.",
            SmokeTest::Cudnn => "libcudnn.so.",
            SmokeTest::Cufft => "libcufft.so.",
            SmokeTest::Curand => "libcurand.so.",
            SmokeTest::Cusparse => "libcusparse.so.",
            SmokeTest::Cusolver => "libcusolver.so.",
            SmokeTest::Nccl => "libnccl.so.",
            SmokeTest::Nvrtc => "libnvrtc.so.",
            SmokeTest::NvJitLink => "libnvJitLink.so.",
        }
    }

    /// The test for a library file name: `libcublas.so.13` and `libcublas.so.13.1.0`
    /// are cuBLAS; `libcublas.so` (the link for the linker) and `libcublasLt.so.13`
    /// are not.
    pub fn for_file_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|test| {
            name.strip_prefix(test.soname_prefix())
                .is_some_and(|version| {
                    !version.is_empty()
                        && version.split('.').all(|part| {
                            !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
                        })
                })
        })
    }

    /// The library's major version, from its file name.
    fn major(self, library: &Path) -> Option<u32> {
        let name = library.file_name()?.to_str()?;
        name.strip_prefix(self.soname_prefix())?
            .split('.')
            .next()?
            .parse()
            .ok()
    }

    /// Runs the test on the current context's GPU; the answer says what was checked.
    pub fn run(self, context: &Context<'_>, library: &Path) -> Result<String, GpuError> {
        match self {
            SmokeTest::Cudart => runtime::cudart(context, library),
            SmokeTest::Cublas => blas::cublas(context, library),
            SmokeTest::CublasLt => blas::cublaslt(context, library),
            SmokeTest::Cusolver => blas::cusolver(context, library),
            SmokeTest::Cudnn => dnn::cudnn(context, library),
            SmokeTest::Cufft => math::cufft(context, library),
            SmokeTest::Curand => math::curand(context, library),
            SmokeTest::Cusparse => math::cusparse(context, library),
            SmokeTest::Nccl => nccl::all_reduce(context, library),
            SmokeTest::Nvrtc => runtime::nvrtc(context, library),
            SmokeTest::NvJitLink => {
                runtime::nvjitlink(context, library, self.major(library).unwrap_or(0))
            }
        }
    }
}

/// The smoke tests a set of files calls for: one per library file, the same file
/// reached by several names counted once (the first name kept).
pub fn tests_for(files: &[PathBuf]) -> Vec<(SmokeTest, PathBuf)> {
    let mut found: Vec<(SmokeTest, PathBuf, PathBuf)> = Vec::new();
    for file in files {
        let Some(test) = file
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(SmokeTest::for_file_name)
        else {
            continue;
        };
        let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        if !found.iter().any(|(_, _, seen)| *seen == real) {
            found.push((test, file.clone(), real));
        }
    }
    found.sort();
    found
        .into_iter()
        .map(|(test, file, _)| (test, file))
        .collect()
}

/// The result of one smoke test in its child process.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SmokeOutcome {
    pub passed: bool,
    /// What was checked, or what failed.
    pub detail: String,
    /// CUDA libraries mapped from outside the paths under test, and driver libraries
    /// from outside the driver folder.
    pub foreign: Vec<PathBuf>,
    /// Every CUDA and driver library the process mapped.
    pub mapped: Vec<PathBuf>,
}

/// The start of the file names of NVIDIA's CUDA libraries.
const CUDA_LIBRARIES: &[&str] = &[
    "libcudart",
    "libcublas",
    "libcudnn",
    "libcufft",
    "libcurand",
    "libcusparse",
    "libcusolver",
    "libnccl",
    "libnvrtc",
    "libnvJitLink",
    "libnvvm",
    "libnvblas",
    "libcupti",
    "libnvToolsExt",
    "libcufile",
    "libnvshmem",
    "libcusparseLt",
];

fn is_driver(name: &str) -> bool {
    name.starts_with("libcuda.so")
}

fn is_cuda_library(name: &str) -> bool {
    CUDA_LIBRARIES.iter().any(|prefix| name.starts_with(prefix))
}

/// The files of `/proc/self/maps` (or any maps text) that are CUDA or driver libraries.
pub fn mapped_libraries(maps: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path
        let Some(path) = line.splitn(6, ' ').nth(5).map(str::trim_start) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        let path = PathBuf::from(path.trim_end_matches(" (deleted)"));
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if (is_driver(name) || is_cuda_library(name)) && !found.contains(&path) {
            found.push(path);
        }
    }
    found
}

/// The mapped libraries that came from the wrong place: a CUDA library from outside
/// every path under test, the driver from outside the driver folder.
pub fn foreign_libraries(
    mapped: &[PathBuf],
    under_test: &[PathBuf],
    driver_folder: &Path,
) -> Vec<PathBuf> {
    let real = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let roots: Vec<PathBuf> = under_test.iter().map(|root| real(root)).collect();
    let driver_folder = real(driver_folder);
    mapped
        .iter()
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let path = real(path);
            if is_driver(name) {
                path.parent() != Some(driver_folder.as_path())
            } else {
                !roots.iter().any(|root| path.starts_with(root))
            }
        })
        .cloned()
        .collect()
}

/// The largest difference between two equally long lists of numbers.
fn max_error(got: &[f32], want: &[f32]) -> f32 {
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Fails unless every number is within `tolerance` of the CPU's.
fn agree(what: &str, got: &[f32], want: &[f32], tolerance: f32) -> Result<String, GpuError> {
    let error = max_error(got, want);
    if got.len() == want.len() && error <= tolerance {
        Ok(format!(
            "{what} matches the CPU (largest difference {error:.1e})"
        ))
    } else {
        Err(GpuError::Wrong(format!(
            "{what} differs from the CPU by {error:.3e} (tolerance {tolerance:.1e})"
        )))
    }
}

/// Numbers in [-1, 1) that differ from run to run of nothing but `seed`.
fn numbers(count: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            #[allow(clippy::cast_precision_loss, reason = "a uniform number from 24 bits")]
            let unit = (state >> 8) as f32 / (1u32 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect()
}

#[allow(
    clippy::many_single_char_names,
    reason = "BLAS's names for the operands"
)]
/// `C = A·B` for column-major `m×k` and `k×n` matrices.
fn matmul(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for col in 0..n {
        for row in 0..m {
            c[row + col * m] = (0..k).map(|i| a[row + i * m] * b[i + col * k]).sum();
        }
    }
    c
}

/// Fails with the library's status code unless it is 0 (every CUDA library's success).
fn status(library: &'static str, call: &'static str, code: i32) -> Result<(), GpuError> {
    if code == 0 {
        Ok(())
    } else {
        Err(GpuError::Library {
            library,
            call,
            code,
        })
    }
}

fn int(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn long(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn index(value: i32) -> usize {
    usize::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_file_names_pick_their_test() {
        for (name, test) in [
            ("libcublas.so.13", Some(SmokeTest::Cublas)),
            ("libcublas.so.13.1.0.3", Some(SmokeTest::Cublas)),
            ("libcublasLt.so.13", Some(SmokeTest::CublasLt)),
            ("libcublas.so", None),
            ("libcudnn.so.9", Some(SmokeTest::Cudnn)),
            ("libcudnn_ops.so.9", None),
            ("libnvrtc.so.13", Some(SmokeTest::Nvrtc)),
            ("libnvrtc-builtins.so.13.0", None),
            ("libnvrtc.alt.so.13", None),
            ("libnvJitLink.so.13", Some(SmokeTest::NvJitLink)),
            ("libnccl.so.2", Some(SmokeTest::Nccl)),
            ("libcufftw.so.12", None),
            ("libcublas.so.13.x", None),
        ] {
            assert_eq!(SmokeTest::for_file_name(name), test, "{name}");
        }
        assert_eq!(
            SmokeTest::NvJitLink.major(Path::new("/x/libnvJitLink.so.13")),
            Some(13)
        );
    }

    #[test]
    fn maps_name_each_library_once_and_judge_its_origin() {
        let maps = "\
7f00-7f01 r--p 00000000 fd:01 1 /store/abc-libcublas/lib/libcublas.so.13
7f01-7f02 r-xp 00001000 fd:01 1 /store/abc-libcublas/lib/libcublas.so.13
7f02-7f03 r--p 00000000 fd:01 2 /usr/local/cuda/lib64/libcublasLt.so.13
7f03-7f04 r--p 00000000 fd:01 3 /driver/libcuda.so.1
7f04-7f05 r--p 00000000 fd:01 4 /usr/lib/libc.so.6
7f05-7f06 rw-p 00000000 00:00 0 [heap]
7f06-7f07 rw-p 00000000 00:00 0
";
        let mapped = mapped_libraries(maps);
        assert_eq!(
            mapped,
            [
                PathBuf::from("/store/abc-libcublas/lib/libcublas.so.13"),
                PathBuf::from("/usr/local/cuda/lib64/libcublasLt.so.13"),
                PathBuf::from("/driver/libcuda.so.1"),
            ]
        );
        let foreign = foreign_libraries(
            &mapped,
            &[PathBuf::from("/store/abc-libcublas")],
            Path::new("/driver"),
        );
        assert_eq!(
            foreign,
            [PathBuf::from("/usr/local/cuda/lib64/libcublasLt.so.13")]
        );
        let foreign = foreign_libraries(&mapped, &[PathBuf::from("/")], Path::new("/other"));
        assert_eq!(foreign, [PathBuf::from("/driver/libcuda.so.1")]);
    }

    #[test]
    fn the_cpu_side_of_the_checks_is_right() {
        // [1 3; 2 4] · [5 7; 6 8] column-major.
        let c = matmul(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2, 2, 2);
        assert_eq!(c, [23.0, 34.0, 31.0, 46.0]);
        assert!(agree("x", &c, &[23.0, 34.0, 31.0, 46.5], 0.1).is_err());
        let values = numbers(1000, 7);
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_ne!(values, numbers(1000, 8));
    }
}
