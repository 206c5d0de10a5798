//! Which package of NVIDIA's releases provides a library, which product (and so which
//! manifest folder) a package is released in, and what each package's libraries load
//! from other packages: what resolution needs before anything is downloaded.
//!
//! The builder reads the real needs from the files once they are unpacked; these
//! tables let a request bring what it will need in one go, and name the package that
//! would provide a library nobody provides.

/// Products released apart from the CUDA toolkit, each with its own manifests under
/// `<base>/<product>/redist/`, and their packages. Everything else is in `cuda`'s.
const PRODUCTS: &[(&str, &[&str])] = &[
    ("cudnn", &["cudnn"]),
    ("cutensor", &["libcutensor"]),
    ("cusparselt", &["libcusparse_lt"]),
    ("nccl", &["nccl"]),
    ("cudss", &["libcudss"]),
    ("nvshmem", &["libnvshmem"]),
];

/// The product whose manifests list `package` (`cuda` for the toolkit's packages).
pub fn product_of(package: &str) -> &'static str {
    PRODUCTS
        .iter()
        .find(|(_, packages)| packages.contains(&package))
        .map_or("cuda", |(product, _)| product)
}

/// The products besides `cuda`.
pub fn separate_products() -> impl Iterator<Item = &'static str> {
    PRODUCTS.iter().map(|(product, _)| *product)
}

/// Library name stems (the file name up to `.so`) → the package that has them.
const LIBRARIES: &[(&str, &str)] = &[
    ("libcudart", "cuda_cudart"),
    ("libnvrtc", "cuda_nvrtc"),
    ("libnvrtc-builtins", "cuda_nvrtc"),
    ("libcupti", "cuda_cupti"),
    ("libnvperf_host", "cuda_cupti"),
    ("libnvperf_target", "cuda_cupti"),
    ("libpcsamplingutil", "cuda_cupti"),
    ("libnvToolsExt", "cuda_nvtx"),
    ("libOpenCL", "cuda_opencl"),
    ("libcublas", "libcublas"),
    ("libcublasLt", "libcublas"),
    ("libnvblas", "libcublas"),
    ("libcufft", "libcufft"),
    ("libcufftw", "libcufft"),
    ("libcufile", "libcufile"),
    ("libcufile_rdma", "libcufile"),
    ("libcurand", "libcurand"),
    ("libcusolver", "libcusolver"),
    ("libcusolverMg", "libcusolver"),
    ("libcusparse", "libcusparse"),
    ("libnvJitLink", "libnvjitlink"),
    ("libnvjpeg", "libnvjpeg"),
    ("libnvfatbin", "libnvfatbin"),
    ("libnccl", "nccl"),
    ("libcusparseLt", "libcusparse_lt"),
    ("libcutensor", "libcutensor"),
    ("libcutensorMg", "libcutensor"),
    ("libcudss", "libcudss"),
    ("libnvshmem_host", "libnvshmem"),
];

/// NPP's libraries, all in `libnpp`.
const NPP: &[&str] = &[
    "libnppc",
    "libnppial",
    "libnppicc",
    "libnppidei",
    "libnppif",
    "libnppig",
    "libnppim",
    "libnppist",
    "libnppisu",
    "libnppitc",
    "libnpps",
];

/// The package that provides `library` (`libcublasLt.so.13`) in a release of CUDA major
/// `cuda_major`, if it is NVIDIA's.
pub fn provider(library: &str, cuda_major: u32) -> Option<&'static str> {
    let stem = library.split(".so").next().unwrap_or(library);
    if stem == "libnvvm" {
        // NVVM left the compiler package for one of its own in CUDA 13.
        return Some(if cuda_major <= 12 {
            "cuda_nvcc"
        } else {
            "libnvvm"
        });
    }
    if let Some((_, package)) = LIBRARIES.iter().find(|(s, _)| *s == stem) {
        return Some(package);
    }
    if NPP.contains(&stem) {
        return Some("libnpp");
    }
    // cuDNN's front library and its sub-libraries (`libcudnn_ops`, `libcudnn_graph`).
    stem.strip_prefix("libcudnn")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
        .then_some("cudnn")
}

/// What a package's libraries need from other packages, as NEEDED entries or as
/// libraries they load at run time (read from NVIDIA's files: cuDNN's sub-libraries
/// name `libcublasLt.so.N` and `libnvrtc.so.N` in their read-only data and load them
/// with `dlopen`; cuBLASLt loads NVRTC; cuSOLVER needs cuBLAS, cuSPARSE and nvJitLink).
/// Wheels declare some of this in `Requires-Dist`, never the run-time loads, and
/// NVIDIA's manifests declare none of it.
const NEEDS: &[(&str, &[&str])] = &[
    ("cudnn", &["libcublasLt", "libcublas", "libnvrtc"]),
    ("libcublas", &["libnvrtc"]),
    (
        "libcusolver",
        &["libcublas", "libcublasLt", "libcusparse", "libnvJitLink"],
    ),
    ("libcusparse", &["libnvJitLink"]),
    ("libcufft", &["libnvJitLink"]),
    ("libcutensor", &["libcublasLt"]),
    ("libcudss", &["libcublas", "libcublasLt"]),
    ("cuda_nvcc", &["libcudart"]),
];

/// The packages whose libraries `package` needs, in a release of CUDA major `cuda_major`.
pub fn needs(package: &str, cuda_major: u32) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    let libraries = NEEDS
        .iter()
        .find(|(p, _)| *p == package)
        .map_or(&[][..], |(_, libraries)| libraries);
    for library in libraries {
        if let Some(other) = provider(library, cuda_major).filter(|other| *other != package) {
            if !packages.contains(&other) {
                packages.push(other);
            }
        }
    }
    if package == "cuda_nvcc" && cuda_major >= 13 {
        packages.extend(["libnvvm", "cuda_crt"]);
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_map_to_their_packages() {
        let cases = [
            ("libcublasLt.so.13", 13, Some("libcublas")),
            ("libcublas.so.12.9.1.4", 12, Some("libcublas")),
            ("libnvrtc-builtins.so.13.0", 13, Some("cuda_nvrtc")),
            ("libnvJitLink.so.13", 13, Some("libnvjitlink")),
            ("libcudnn_graph.so.9", 12, Some("cudnn")),
            ("libcudnn.so.9", 13, Some("cudnn")),
            ("libnppial.so.13", 13, Some("libnpp")),
            ("libcusparseLt.so.0", 12, Some("libcusparse_lt")),
            ("libcusparse.so.12", 12, Some("libcusparse")),
            ("libnvvm.so.4", 12, Some("cuda_nvcc")),
            ("libnvvm.so.4", 13, Some("libnvvm")),
            ("libcuda.so.1", 13, None),
            ("libstdc++.so.6", 13, None),
            ("libnppx_own.so", 13, None),
        ];
        for (library, major, package) in cases {
            assert_eq!(provider(library, major), package, "{library}");
        }
    }

    #[test]
    fn needs_name_packages_of_the_release() {
        assert_eq!(needs("cudnn", 12), ["libcublas", "cuda_nvrtc"]);
        assert_eq!(
            needs("libcusolver", 13),
            ["libcublas", "libcusparse", "libnvjitlink"]
        );
        assert_eq!(
            needs("cuda_nvcc", 13),
            ["cuda_cudart", "libnvvm", "cuda_crt"]
        );
        assert!(needs("cuda_cudart", 13).is_empty());
        assert_eq!(product_of("cudnn"), "cudnn");
        assert_eq!(product_of("libcusparse_lt"), "cusparselt");
        assert_eq!(product_of("libcublas"), "cuda");
    }
}
