//! Resolved options written the way each build system wants them.
//!
//! Every rendering states exactly the targets of the nvcc flags: SASS for each
//! capability, PTX only for the forward-compatibility target. Where a tool's plain
//! spelling would add PTX everywhere (CMake's `86`, TensorFlow's `8.6`), the explicit
//! spelling is used instead.

use std::fmt::Write as _;

use crate::capability::Capability;
use crate::options::ResolvedOptions;

impl ResolvedOptions {
    /// nvcc `-gencode` flags: SASS per capability, then PTX for forward compatibility.
    pub fn nvcc_flags(&self) -> Vec<String> {
        let mut flags: Vec<String> = self
            .capabilities
            .iter()
            .map(|c| format!("-gencode=arch={},code={}", c.compute_name(), c.sm_name()))
            .collect();
        if let Some(ptx) = self.ptx {
            flags.push(format!(
                "-gencode=arch={},code={}",
                ptx.compute_name(),
                ptx.compute_name()
            ));
        }
        flags
    }

    /// CMake `CMAKE_CUDA_ARCHITECTURES` (and the `CUDAARCHS` environment variable):
    /// `75-real;86-real;86-virtual`.
    pub fn cmake_architectures(&self) -> String {
        let mut items: Vec<String> = self
            .capabilities
            .iter()
            .map(|c| format!("{}-real", c.digits()))
            .collect();
        if let Some(ptx) = self.ptx {
            items.push(format!("{}-virtual", ptx.digits()));
        }
        items.join(";")
    }

    /// PyTorch `TORCH_CUDA_ARCH_LIST`: `7.5;8.6+PTX`. PyTorch has no PTX-only spelling,
    /// so a forward-compatibility target that is not in the list adds its SASS too.
    pub fn torch_arch_list(&self) -> String {
        let mut items: Vec<String> = self.capabilities.iter().map(ToString::to_string).collect();
        match self.ptx {
            Some(ptx) if self.capabilities.last() == Some(&ptx) => {
                items.last_mut().expect("non-empty").push_str("+PTX");
            }
            Some(ptx) => items.push(format!("{ptx}+PTX")),
            None => {}
        }
        items.join(";")
    }

    /// TensorFlow `TF_CUDA_COMPUTE_CAPABILITIES`: `sm_75,compute_86`. TensorFlow reads
    /// `sm_XY` as SASS only and `compute_XY` (like a plain `X.Y`) as SASS plus PTX.
    pub fn tensorflow_capabilities(&self) -> String {
        let mut items: Vec<String> = self
            .capabilities
            .iter()
            .map(|c| {
                if Some(*c) == self.ptx {
                    c.compute_name()
                } else {
                    c.sm_name()
                }
            })
            .collect();
        if let Some(ptx) = self.ptx.filter(|ptx| !self.capabilities.contains(ptx)) {
            items.push(ptx.compute_name());
        }
        items.join(",")
    }

    /// A Nixpkgs `config` attribute set.
    pub fn nix_config(&self) -> String {
        let quoted: Vec<String> = self
            .capabilities
            .iter()
            .map(|c: &Capability| format!("\"{c}\""))
            .collect();
        format!(
            "# CUDA {cuda} on {platform}: use cudaPackages_{suffix}\n\
             {{\n  cudaSupport = true;\n  cudaCapabilities = [ {caps} ];\n  cudaForwardCompat = {fc};\n}}\n",
            cuda = self.cuda,
            platform = self.platform.nix_system(),
            suffix = self.cuda.nix_suffix(),
            caps = quoted.join(" "),
            fc = self.forward_compat,
        )
    }

    /// Shell `export` lines for every tool, plus cudapkgs' own settings so that
    /// sourcing them reproduces these options.
    pub fn env_exports(&self) -> String {
        let capabilities: Vec<String> = self.capabilities.iter().map(ToString::to_string).collect();
        let variables = [
            ("CUDAPKGS_CUDA", self.cuda.to_string()),
            ("CUDAPKGS_CAPABILITIES", capabilities.join(";")),
            ("CUDAPKGS_FORWARD_COMPAT", self.forward_compat.to_string()),
            ("CUDAPKGS_PLATFORM", self.platform.name().to_owned()),
            ("NVCC_APPEND_FLAGS", self.nvcc_flags().join(" ")),
            ("CUDAARCHS", self.cmake_architectures()),
            ("CMAKE_CUDA_ARCHITECTURES", self.cmake_architectures()),
            ("TORCH_CUDA_ARCH_LIST", self.torch_arch_list()),
            (
                "TF_CUDA_COMPUTE_CAPABILITIES",
                self.tensorflow_capabilities(),
            ),
        ];
        let mut out = String::new();
        for (name, value) in variables {
            let _ = writeln!(out, "export {name}={}", shell_quote(&value));
        }
        out
    }
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use crate::capability::parse_capability_list;
    use crate::options::{CudaOptions, ResolvedOptions};
    use crate::platform::HostPlatform;

    fn resolve(cuda: &str, capabilities: &str, forward_compat: bool) -> ResolvedOptions {
        CudaOptions {
            cuda: cuda.parse().expect(cuda),
            capabilities: Some(parse_capability_list(capabilities).expect(capabilities)),
            forward_compat,
            platform: HostPlatform::X86_64,
        }
        .resolve()
        .expect("valid")
    }

    #[test]
    fn nvcc_flags_match_the_reference_example_exactly() {
        let flags = resolve("12.9", "7.5 8.6", true).nvcc_flags().join(" ");
        assert_eq!(
            flags,
            "-gencode=arch=compute_75,code=sm_75 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_86,code=compute_86"
        );
        let flags = resolve("12.9", "7.5 8.6", false).nvcc_flags().join(" ");
        assert_eq!(
            flags,
            "-gencode=arch=compute_75,code=sm_75 -gencode=arch=compute_86,code=sm_86"
        );
    }

    #[test]
    fn nvcc_flags_keep_suffixes() {
        let flags = resolve("12.9", "9.0a 10.0f", true).nvcc_flags().join(" ");
        assert_eq!(
            flags,
            "-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_100f,code=sm_100f -gencode=arch=compute_100,code=compute_100"
        );
    }

    #[test]
    fn cmake_marks_real_and_virtual() {
        assert_eq!(
            resolve("12.9", "7.5 8.6", true).cmake_architectures(),
            "75-real;86-real;86-virtual"
        );
        assert_eq!(
            resolve("12.9", "7.5 8.6", false).cmake_architectures(),
            "75-real;86-real"
        );
        assert_eq!(
            resolve("12.9", "8.0 9.0a", true).cmake_architectures(),
            "80-real;90a-real;90-virtual"
        );
    }

    #[test]
    fn torch_adds_ptx_to_the_last() {
        assert_eq!(
            resolve("12.9", "7.5 8.6", true).torch_arch_list(),
            "7.5;8.6+PTX"
        );
        assert_eq!(
            resolve("12.9", "7.5 8.6", false).torch_arch_list(),
            "7.5;8.6"
        );
        assert_eq!(
            resolve("12.9", "8.0 9.0a", true).torch_arch_list(),
            "8.0;9.0a;9.0+PTX"
        );
    }

    #[test]
    fn tensorflow_separates_sass_and_ptx() {
        assert_eq!(
            resolve("12.9", "7.5 8.6", true).tensorflow_capabilities(),
            "sm_75,compute_86"
        );
        assert_eq!(
            resolve("12.9", "7.5 8.6", false).tensorflow_capabilities(),
            "sm_75,sm_86"
        );
        assert_eq!(
            resolve("12.9", "9.0a", true).tensorflow_capabilities(),
            "sm_90a,compute_90"
        );
    }

    #[test]
    fn nix_config_is_a_nixpkgs_config_set() {
        assert_eq!(
            resolve("12.9", "7.5 8.6", true).nix_config(),
            "# CUDA 12.9 on x86_64-linux: use cudaPackages_12_9\n{\n  cudaSupport = true;\n  cudaCapabilities = [ \"7.5\" \"8.6\" ];\n  cudaForwardCompat = true;\n}\n"
        );
    }

    #[test]
    fn env_exports_quote_every_value() {
        let text = resolve("12.9", "7.5 8.6", true).env_exports();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "export CUDAPKGS_CUDA='12.9'");
        assert_eq!(lines[1], "export CUDAPKGS_CAPABILITIES='7.5;8.6'");
        assert!(lines.contains(&"export CUDAARCHS='75-real;86-real;86-virtual'"));
        assert!(lines.contains(&"export TORCH_CUDA_ARCH_LIST='7.5;8.6+PTX'"));
        assert!(lines.contains(
            &"export NVCC_APPEND_FLAGS='-gencode=arch=compute_75,code=sm_75 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_86,code=compute_86'"
        ));
        assert_eq!(super::shell_quote("it's"), r"'it'\''s'");
    }
}
