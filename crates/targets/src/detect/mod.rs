//! The detectors, one per family of build syntax, and the scan of one file's text.

mod cmake;
mod meson;
mod nvcc;
mod python;
mod vars;

use std::collections::BTreeMap;

use crate::SourceFile;
use crate::finding::Finding;
use crate::lang::{Language, Masked, line_of};

/// What the other files of a tree say about a file's findings: where its CMake
/// functions are called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Per CMake function or macro (lower case): every call's file and line, and
    /// whether a `CMAKE_CUDA_ARCHITECTURES` guard encloses it.
    calls: BTreeMap<String, Vec<(String, usize, bool)>>,
}

impl Context {
    /// The context of a tree's build files.
    pub fn of(files: &[SourceFile]) -> Context {
        let mut calls: BTreeMap<String, Vec<(String, usize, bool)>> = BTreeMap::new();
        for file in files.iter().filter(|f| f.language == Language::CMake) {
            let masked = Masked::new(&file.text, Language::CMake);
            for (name, line, guarded) in cmake::calls(&masked) {
                calls.entry(name).or_default().push((
                    file.path.display().to_string(),
                    line,
                    guarded,
                ));
            }
        }
        Context { calls }
    }

    /// A place inside a function that is called, every time, only where the user's
    /// `CMAKE_CUDA_ARCHITECTURES` is unset, is a default.
    fn apply(&self, finding: &mut Finding) {
        let Some(function) = &finding.function else {
            return;
        };
        let Some(calls) = self.calls.get(function) else {
            return;
        };
        if finding.overrides_user && calls.iter().all(|(_, _, guarded)| *guarded) {
            let (file, line, _) = &calls[0];
            finding.overrides_user = false;
            finding.reason = format!(
                "a default: {function}() is called only where CMAKE_CUDA_ARCHITECTURES is unset ({file}:{line})"
            );
        }
    }
}

/// Every place in `text`, a file in `language`, that forces GPU targets, in the order
/// of the file, read on its own (see [`scan_text_in`] for a file of a tree).
pub fn scan_text(text: &str, language: Language) -> Vec<Finding> {
    scan_text_in(text, language, &Context::default())
}

/// [`scan_text`] for a file of a tree whose other files give `context`.
pub fn scan_text_in(text: &str, language: Language, context: &Context) -> Vec<Finding> {
    let masked = Masked::new(text, language);
    let mut findings = nvcc::detect(text, &masked, language);
    findings.extend(vars::detect(&masked.text));
    match language {
        Language::CMake => findings.extend(cmake::detect(&masked)),
        Language::Python => findings.extend(python::detect(&masked)),
        Language::Meson => findings.extend(meson::detect(&masked)),
        Language::Make | Language::Bazel | Language::Shell | Language::Toml => {}
    }
    findings.sort_by_key(|finding| (finding.span.0, finding.kind));
    // Two detectors may see one place (a variable assigned inside a flag string): the
    // first keeps it.
    let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
    for finding in findings {
        let overlaps = kept.iter().any(|other| {
            other.slots.iter().any(|a| {
                finding
                    .slots
                    .iter()
                    .any(|b| a.range.start < b.range.end && b.range.start < a.range.end)
            })
        });
        if !overlaps {
            kept.push(finding);
        }
    }
    for finding in &mut kept {
        context.apply(finding);
        finding.line = line_of(text, finding.span.0);
        finding.end_line = line_of(text, finding.span.1).max(finding.line);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Kind;
    use crate::target::Request;
    use cudapkgs_caps::{CudaOptions, HostPlatform, parse_capability_list};

    fn request(list: &str) -> Request {
        Request::new(
            CudaOptions {
                cuda: "12.9".parse().expect("cuda"),
                capabilities: Some(parse_capability_list(list).expect("list")),
                forward_compat: true,
                platform: HostPlatform::X86_64,
            }
            .resolve()
            .expect("valid"),
        )
    }

    /// (line, kind, overrides, architectures) of each finding.
    fn found(text: &str, language: Language) -> Vec<(usize, Kind, bool, String)> {
        scan_text(text, language)
            .into_iter()
            .map(|f| (f.line, f.kind, f.overrides_user, f.forced.names().join(" ")))
            .collect()
    }

    /// Rewrites `text` for `list` and checks that nothing conflicts afterwards.
    fn rewritten(text: &str, language: Language, list: &str) -> String {
        let request = request(list);
        let plan = crate::plan(text, language, &request, &Context::default());
        assert!(plan.manual.is_empty(), "{:?}", plan.manual);
        assert!(plan.remaining.is_empty(), "{:?}", plan.remaining);
        assert!(
            scan_text(&plan.new_text, language)
                .iter()
                .all(|f| !f.conflicts_with(&request)),
            "{}",
            plan.new_text
        );
        plan.new_text
    }

    #[test]
    fn makefiles_and_shell_scripts() {
        let make = "GENCODE = -gencode arch=compute_70,code=sm_70 \\\n  -gencode arch=compute_80,code=sm_80\nCUDA_ARCH ?= 75\nall:\n\tnvcc $(GENCODE) -arch=sm_61 k.cu # -arch=sm_50\n";
        assert_eq!(
            found(make, Language::Make),
            [
                (1, Kind::NvccGencode, true, "sm_70 sm_80".to_owned()),
                (5, Kind::NvccArch, true, "sm_61 compute_61".to_owned()),
            ]
        );
        let new = rewritten(make, Language::Make, "8.6");
        assert!(new.starts_with("GENCODE = -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_86,code=compute_86\n"), "{new}");
        let shell = "export TORCH_CUDA_ARCH_LIST=\"7.0 8.0\"\n: \"${TORCH_CUDA_ARCH_LIST:=8.6}\"\n";
        assert_eq!(
            found(shell, Language::Shell),
            [
                (1, Kind::TorchArchList, true, "sm_70 sm_80".to_owned()),
                (2, Kind::TorchArchList, false, "sm_86".to_owned()),
            ]
        );
        assert_eq!(
            rewritten(shell, Language::Shell, "9.0"),
            "export TORCH_CUDA_ARCH_LIST=\"9.0+PTX\"\n: \"${TORCH_CUDA_ARCH_LIST:=8.6}\"\n"
        );
    }

    #[test]
    fn cmake_architectures_properties_and_defaults() {
        let cmake = "set(CMAKE_CUDA_ARCHITECTURES 70 75)\nset(CMAKE_CUDA_ARCHITECTURES \"80\" CACHE STRING \"\")\nif(NOT CMAKE_CUDA_ARCHITECTURES)\n  set(CMAKE_CUDA_ARCHITECTURES native)\nendif()\nset_property(TARGET k PROPERTY CUDA_ARCHITECTURES 86-real 90-virtual)\nset_target_properties(j PROPERTIES CUDA_ARCHITECTURES \"${CMAKE_CUDA_ARCHITECTURES}\")\nlist(APPEND CUDA_NVCC_FLAGS \"-gencode arch=compute_60,code=sm_60\" \"-gencode arch=compute_61,code=sm_61\")\n";
        assert_eq!(
            found(cmake, Language::CMake),
            [
                (
                    1,
                    Kind::CmakeArchitectures,
                    true,
                    "sm_70 sm_75 compute_70 compute_75".to_owned()
                ),
                (
                    2,
                    Kind::CmakeArchitectures,
                    false,
                    "sm_80 compute_80".to_owned()
                ),
                (4, Kind::CmakeArchitectures, false, "native".to_owned()),
                (6, Kind::CmakeProperty, true, "sm_86 compute_90".to_owned()),
                (8, Kind::NvccGencode, true, "sm_60 sm_61".to_owned()),
            ]
        );
        let new = rewritten(cmake, Language::CMake, "9.0");
        assert!(new.starts_with("set(CMAKE_CUDA_ARCHITECTURES \"90-real;90-virtual\")\nset(CMAKE_CUDA_ARCHITECTURES \"80\" CACHE"), "{new}");
        assert!(
            new.contains("PROPERTY CUDA_ARCHITECTURES \"90-real;90-virtual\")"),
            "{new}"
        );
        assert!(new.contains("list(APPEND CUDA_NVCC_FLAGS -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90 )"), "{new}");
    }

    #[test]
    fn bazel_meson_and_pyproject() {
        let bazelrc = "build:cuda --repo_env=HERMETIC_CUDA_COMPUTE_CAPABILITIES=\"sm_50,sm_60,compute_90\"\nbuild --action_env TF_CUDA_COMPUTE_CAPABILITIES=7.5,8.6\n";
        assert_eq!(
            found(bazelrc, Language::Bazel),
            [
                (
                    1,
                    Kind::TensorflowCapabilities,
                    true,
                    "sm_50 sm_60 sm_90 compute_90".to_owned()
                ),
                (
                    2,
                    Kind::TensorflowCapabilities,
                    true,
                    "sm_75 sm_86 compute_75 compute_86".to_owned()
                ),
            ]
        );
        assert_eq!(
            rewritten(bazelrc, Language::Bazel, "8.0,9.0"),
            "build:cuda --repo_env=HERMETIC_CUDA_COMPUTE_CAPABILITIES=\"sm_80,compute_90\"\nbuild --action_env TF_CUDA_COMPUTE_CAPABILITIES=sm_80,compute_90\n"
        );
        let meson = "cuda = import('unstable-cuda')\nflags = cuda.nvcc_arch_flags('11.0', '7.0', '8.0+PTX')\n";
        assert_eq!(
            found(meson, Language::Meson),
            [(
                2,
                Kind::MesonArchFlags,
                true,
                "sm_70 sm_80 compute_80".to_owned()
            )]
        );
        assert!(
            rewritten(meson, Language::Meson, "8.6,9.0")
                .contains("nvcc_arch_flags('11.0', '8.6', '9.0+PTX')")
        );
        let toml = "[tool.scikit-build]\ncmake.args = [\"-DCMAKE_CUDA_ARCHITECTURES=70;80\"]\n";
        assert_eq!(
            found(toml, Language::Toml),
            [(
                2,
                Kind::CmakeArchitectures,
                true,
                "sm_70 sm_80 compute_70 compute_80".to_owned()
            )]
        );
    }

    #[test]
    fn python_lists_slots_and_conditions() {
        let setup = "import os\nif os.getenv('X'):\n    flags = ['-O3', '-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90,code=sm_90']\nextra = []\nif a:\n    extra.append('-gencode=arch=compute_70,code=sm_70')\nif b:\n    extra.append('-gencode=arch=compute_80,code=sm_80')\nSUPPORTED_ARCHS = ['8.0', '9.0']\n";
        let findings = found(setup, Language::Python);
        assert_eq!(findings.len(), 3, "{findings:?}");
        // One target fits every slot whatever the conditions keep.
        let new = rewritten(setup, Language::Python, "9.0");
        assert!(new.contains("flags = ['-O3', '-gencode', 'arch=compute_90,code=sm_90', '-gencode', 'arch=compute_90,code=compute_90']"), "{new}");
        assert!(
            new.contains("extra.append('-gencode=arch=compute_90,code=[sm_90,compute_90]')"),
            "{new}"
        );
        assert!(new.contains("SUPPORTED_ARCHS = ['9.0']"), "{new}");
        // Two targets in slots under different conditions: a person decides.
        let plan = crate::plan(
            setup,
            Language::Python,
            &request("8.6,9.0"),
            &Context::default(),
        );
        assert_eq!(plan.manual.len(), 1, "{:?}", plan.manual);
        assert_eq!(plan.manual[0].line, 6);
        assert!(plan.manual[0].reason.contains("different conditions"));
    }

    #[test]
    fn lists_without_a_ptx_only_spelling_compare_with_what_they_can_say() {
        // 9.0a with forward compatibility: SASS sm_90a and PTX compute_90, which
        // PyTorch can only write as `9.0a;9.0+PTX` (SASS sm_90 too).
        let text =
            "export TORCH_CUDA_ARCH_LIST=\"8.0\"\nexport TF_CUDA_COMPUTE_CAPABILITIES=sm_80\n";
        let new = rewritten(text, Language::Shell, "9.0a");
        assert_eq!(
            new,
            "export TORCH_CUDA_ARCH_LIST=\"9.0a;9.0+PTX\"\nexport TF_CUDA_COMPUTE_CAPABILITIES=sm_90a,compute_90\n"
        );
    }
}
