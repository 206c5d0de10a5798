//! What a scan reports: a place in a build file that forces GPU targets, and the exact
//! bytes a rewrite would replace there.

use std::collections::BTreeSet;
use std::ops::Range;

use cudapkgs_caps::Capability;
use serde::Serialize;

use crate::target::{Forced, Request, Target};

/// What kind of place forces the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// nvcc `-gencode arch=compute_XX,code=sm_XX` values.
    NvccGencode,
    /// nvcc `-arch=sm_XX` (or `--gpu-architecture`).
    NvccArch,
    /// `CMAKE_CUDA_ARCHITECTURES` (or `CUDAARCHS`) given a value by the project.
    CmakeArchitectures,
    /// A target's `CUDA_ARCHITECTURES` property.
    CmakeProperty,
    /// A project's own list of architectures (`CUDA_SUPPORTED_ARCHS`, `CUDA_ARCHS`).
    ArchList,
    /// `TORCH_CUDA_ARCH_LIST` given a value by the project.
    TorchArchList,
    /// TensorFlow's and XLA's `TF_CUDA_COMPUTE_CAPABILITIES`, Bazel's
    /// `--cuda_compute_capabilities`.
    TensorflowCapabilities,
    /// Meson's `cuda.nvcc_arch_flags()` with a literal list.
    MesonArchFlags,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NvccGencode => "nvcc-gencode",
            Kind::NvccArch => "nvcc-arch",
            Kind::CmakeArchitectures => "cmake-architectures",
            Kind::CmakeProperty => "cmake-property",
            Kind::ArchList => "arch-list",
            Kind::TorchArchList => "torch-arch-list",
            Kind::TensorflowCapabilities => "tensorflow-capabilities",
            Kind::MesonArchFlags => "meson-arch-flags",
        }
    }

    /// Whether the place states exact targets (SASS and PTX) or only capabilities whose
    /// code the project chooses itself.
    fn states_targets(self) -> bool {
        self != Kind::ArchList
    }
}

/// A place that forces GPU targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based lines of the first and last place of the finding.
    pub line: usize,
    pub end_line: usize,
    pub kind: Kind,
    pub forced: Forced,
    /// True when the targets apply whatever the user sets (`TORCH_CUDA_ARCH_LIST`,
    /// `CMAKE_CUDA_ARCHITECTURES`, `CUDAARCHS`); false for a default the user's choice
    /// replaces.
    pub overrides_user: bool,
    /// A list of what the project supports, which filters the user's request rather
    /// than replacing it (`CUDA_SUPPORTED_ARCHS`): it disagrees only when it lacks a
    /// requested capability.
    pub upper_bound: bool,
    /// Why, in a few words: what the place ignores, or what guards it.
    pub reason: String,
    /// What a rewrite replaces.
    pub(crate) slots: Vec<Slot>,
    /// Byte offsets of the first and last place, turned into lines by the scan.
    pub(crate) span: (usize, usize),
    /// The CMake function or macro whose body holds the place: whether it forces
    /// anything depends on where it is called.
    pub(crate) function: Option<String>,
}

impl Finding {
    /// Whether the place forces something other than the request.
    pub fn disagrees_with(&self, request: &Request) -> bool {
        match &self.forced {
            Forced::Keyword(_) => true,
            Forced::Targets(targets) if self.kind.states_targets() => {
                *targets != request.expressed_as(self.kind)
            }
            Forced::Targets(_) if self.upper_bound => {
                !request.capabilities().is_subset(&self.forced.sass())
            }
            Forced::Targets(_) => self.forced.sass() != request.capabilities(),
        }
    }

    /// Whether the place keeps the build from having exactly the request: it forces
    /// other targets, or it is a list of what the project supports that lacks some.
    pub fn conflicts_with(&self, request: &Request) -> bool {
        (self.overrides_user || self.upper_bound) && self.disagrees_with(request)
    }

    /// The capabilities the place builds SASS for.
    pub fn capabilities(&self) -> BTreeSet<Capability> {
        self.forced.sass()
    }

    pub(crate) fn new(kind: Kind, forced: Forced, slots: Vec<Slot>) -> Finding {
        Finding {
            line: 0,
            end_line: 0,
            kind,
            forced,
            overrides_user: true,
            upper_bound: false,
            reason: String::new(),
            slots,
            span: (0, 0),
            function: None,
        }
    }

    pub(crate) fn at(mut self, start: usize, end: usize) -> Finding {
        self.span = (start, end);
        self
    }

    pub(crate) fn reason(mut self, overrides_user: bool, reason: impl Into<String>) -> Finding {
        self.overrides_user = overrides_user;
        self.reason = reason.into();
        self
    }
}

/// A range of the file a rewrite replaces, and what with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub range: Range<usize>,
    pub fill: Fill,
}

/// How a replacement is made from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fill {
    /// Words of a command line: every `-gencode=` flag, space-separated.
    NvccFlags,
    /// A string holding one `-gencode` value, passed alone (`.append("…")`): the
    /// `position`-th value of the request (cycling). `same_block` says whether every
    /// such slot of the finding runs under the same condition.
    /// `with_flag`: the slot held a whole `-arch=` flag, so the value gets `-gencode=`.
    GencodeValue {
        position: usize,
        same_block: bool,
        with_flag: bool,
    },
    /// String elements of a list literal, from the first `-gencode` element to the last:
    /// all values, as `"-gencode", "arch=…"` pairs or `"-gencode=arch=…"` elements.
    GencodeElements { quote: char, pairs: bool },
    /// A quoted CMake argument holding one flag: every flag, unquoted, as several
    /// arguments. `separate`: the argument is followed directly by another (`"…"x`,
    /// which CMake reads as two), so the flags get a space after them; unquoted, they
    /// would run into it.
    CmakeArguments { separate: bool },
    /// Not rewritten: a person has to decide.
    Manual { reason: &'static str },
    /// Removed (a later argument of a command whose first one now holds every flag;
    /// a `list(APPEND …)` to a list that now holds every capability).
    Nothing,
    /// `CMAKE_CUDA_ARCHITECTURES` syntax: `75-real;86-real;86-virtual`, quoted when the
    /// slot is a whole CMake argument.
    CmakeArchitectures { quoted: bool },
    /// `TORCH_CUDA_ARCH_LIST` syntax: `7.5;8.6+PTX`.
    TorchArchList,
    /// TensorFlow syntax: `sm_75,compute_86`.
    TensorflowList,
    /// Meson's `nvcc_arch_flags` arguments: `'7.5', '8.6+PTX'`.
    MesonArguments { quote: char },
    /// A project's own list, in its own spelling: the capabilities only.
    CapabilityList {
        spelling: Spelling,
        quote: Option<char>,
        separator: String,
    },
}

/// How a project's list writes a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spelling {
    /// `90a`
    Digits,
    /// `9.0a`
    Dotted,
    /// `sm_90a`
    Sm,
}

impl Spelling {
    pub(crate) fn of(item: &str) -> Spelling {
        if item.starts_with("sm_") {
            Spelling::Sm
        } else if item.contains('.') {
            Spelling::Dotted
        } else {
            Spelling::Digits
        }
    }

    pub(crate) fn write(self, capability: Capability) -> String {
        match self {
            Spelling::Digits => capability.digits(),
            Spelling::Dotted => capability.to_string(),
            Spelling::Sm => capability.sm_name(),
        }
    }
}

/// Targets as the request has them, for people: `sm_90 compute_90`.
pub fn describe(targets: &BTreeSet<Target>) -> String {
    targets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
