//! Which image the driver would load from each container on a given GPU, or why none
//! fits, and so which kernels the loaded module holds.
//!
//! Rules (see the fatbin reference): SASS runs within its major version on equal or
//! higher minors (`a`: that exact capability; `f`: its family); PTX is JIT-compiled on
//! any equal or higher capability (`a`: exact; `f`: family) if the driver knows its ISA
//! version; compatible SASS wins over PTX; LTO-IR and relocatable cubins are never
//! loaded. Containers without kernels (CUDA 13's device-link container) do not count.
//!
//! The driver loads one image per container (module), so a kernel present only in
//! another architecture's image is absent there. NVIDIA's libraries and PyTorch ship
//! whole containers, and kernels within containers, for one architecture each and
//! launch them only there; so a file fails on a GPU only when none of its containers
//! loads there (what a library pruned to other GPUs does), and kernels of other
//! architectures in a file that does serve the GPU are counted, not failed.

use std::fmt;

use cudapkgs_caps::{Capability, CudaVersion, Variant};
use serde::Serialize;

use crate::container::EntryKind;
use crate::discover::SectionKind;
use crate::scan::{ContainerScan, EntryInfo, FileScan};

/// The GPU a verdict is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpu {
    /// The device's capability (its `a`/`f` variant is ignored: devices have none).
    pub capability: Capability,
    /// The CUDA version the driver supports; `None` assumes a driver new enough for
    /// every PTX ISA.
    pub driver_cuda: Option<CudaVersion>,
}

/// How a kernel would run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImageMatch {
    /// SASS built for exactly this capability.
    ExactSass,
    /// SASS for a lower minor of the same major (or the family).
    CompatibleSass,
    /// PTX the driver compiles at load time.
    PtxJit,
}

impl fmt::Display for ImageMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageMatch::ExactSass => "exact SASS",
            ImageMatch::CompatibleSass => "compatible SASS",
            ImageMatch::PtxJit => "PTX JIT",
        })
    }
}

/// The verdict for one kernel of one container.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct KernelVerdict {
    /// Mangled name.
    pub kernel: String,
    /// File offset of the container.
    pub container: u64,
    /// The image the driver would use, or `None`.
    pub image: Option<ImageMatch>,
    /// The chosen entry's architecture (`sm_90`, `compute_80`).
    pub arch: Option<String>,
    /// File offset of the chosen entry.
    pub entry: Option<u64>,
    /// Why the kernel has no image: each entry rejected, or where it is instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<String>,
    pub outcome: KernelOutcome,
}

/// The first CUDA release that understands each PTX ISA version.
/// A PTX ISA version and the CUDA release that introduced it.
type IsaRelease = ((u16, u16), (u8, u8));

const PTX_ISA_RELEASES: &[IsaRelease] = &[
    ((6, 0), (9, 0)),
    ((6, 1), (9, 1)),
    ((6, 2), (9, 2)),
    ((6, 3), (10, 0)),
    ((6, 4), (10, 1)),
    ((6, 5), (10, 2)),
    ((7, 0), (11, 0)),
    ((7, 1), (11, 1)),
    ((7, 2), (11, 2)),
    ((7, 3), (11, 3)),
    ((7, 4), (11, 4)),
    ((7, 5), (11, 5)),
    ((7, 6), (11, 6)),
    ((7, 7), (11, 7)),
    ((7, 8), (11, 8)),
    ((8, 0), (12, 0)),
    ((8, 1), (12, 1)),
    ((8, 2), (12, 2)),
    ((8, 3), (12, 3)),
    ((8, 4), (12, 4)),
    ((8, 5), (12, 5)),
    ((8, 6), (12, 7)),
    ((8, 7), (12, 8)),
    ((8, 8), (12, 9)),
    ((9, 0), (13, 0)),
];

/// The CUDA release that introduced a PTX ISA version. From ISA 9.0 on, ISA 9.N
/// ships with CUDA 13.N.
pub fn cuda_for_ptx_isa(isa: (u16, u16)) -> Option<CudaVersion> {
    if let Some((_, (major, minor))) = PTX_ISA_RELEASES.iter().find(|(known, _)| *known == isa) {
        return Some(CudaVersion::new(*major, *minor));
    }
    (isa.0 == 9).then(|| CudaVersion::new(13, u8::try_from(isa.1).unwrap_or(u8::MAX)))
}

/// Whether SASS for `image` runs on `device`.
pub fn sass_runs_on(image: Capability, device: Capability) -> bool {
    let same_major = image.major() == device.major();
    match image.variant() {
        Variant::ArchSpecific => same_major && image.minor() == device.minor(),
        Variant::Baseline | Variant::FamilySpecific => {
            same_major && device.minor() >= image.minor()
        }
    }
}

/// Whether PTX for `image` can be JIT-compiled for `device` (ISA aside).
pub fn ptx_runs_on(image: Capability, device: Capability) -> bool {
    match image.variant() {
        Variant::ArchSpecific => image.without_variant() == device.without_variant(),
        Variant::FamilySpecific => {
            image.major() == device.major() && device.minor() >= image.minor()
        }
        Variant::Baseline => (device.major(), device.minor()) >= (image.major(), image.minor()),
    }
}

/// Why an entry cannot serve this GPU, or `Ok` with how it would.
fn judge(entry: &EntryInfo, gpu: Gpu) -> Result<ImageMatch, String> {
    let device = gpu.capability.without_variant();
    let Some(image) = entry.capability else {
        return Err(format!("{}: unknown architecture", entry.arch));
    };
    match entry.kind {
        EntryKind::Sass => {
            if entry.is_relocatable() {
                return Err(format!("{}: relocatable cubin, not loadable", entry.arch));
            }
            if !sass_runs_on(image, device) {
                return Err(format!("{}: SASS does not run on {device}", entry.arch));
            }
            Ok(
                if image.major() == device.major() && image.minor() == device.minor() {
                    ImageMatch::ExactSass
                } else {
                    ImageMatch::CompatibleSass
                },
            )
        }
        EntryKind::Ptx => {
            if !ptx_runs_on(image, device) {
                return Err(format!("{}: PTX needs {} or compatible", entry.arch, image));
            }
            if let (Some(driver), Some(isa)) = (gpu.driver_cuda, entry.ptx_isa()) {
                match cuda_for_ptx_isa(isa) {
                    Some(needed) if needed <= driver => {}
                    Some(needed) => {
                        return Err(format!(
                            "{}: PTX ISA {}.{} needs a CUDA {needed} driver, this one supports {driver}",
                            entry.arch, isa.0, isa.1
                        ));
                    }
                    None => {
                        return Err(format!(
                            "{}: PTX ISA {}.{} is unknown",
                            entry.arch, isa.0, isa.1
                        ));
                    }
                }
            }
            Ok(ImageMatch::PtxJit)
        }
        EntryKind::LtoIr => Err(format!("{}: LTO-IR is never loaded", entry.arch)),
        EntryKind::RelocatablePtx => Err(format!(
            "{}: relocatable PTX needs a device link",
            entry.arch
        )),
        other => Err(format!("{}: {other} entries are not loaded", entry.arch)),
    }
}

/// Preference among usable entries: exact SASS, then the highest compatible SASS,
/// then the highest PTX.
fn rank(entry: &EntryInfo, image: ImageMatch) -> (u8, Option<Capability>) {
    let class = match image {
        ImageMatch::ExactSass => 3,
        ImageMatch::CompatibleSass => 2,
        ImageMatch::PtxJit => 1,
    };
    (class, entry.capability)
}

/// The entry the driver would pick for a GPU among `candidates`, with how it would
/// run, or the reason each candidate was rejected.
pub(crate) fn best_image<'a>(
    candidates: impl Iterator<Item = &'a EntryInfo>,
    gpu: Gpu,
) -> Result<(&'a EntryInfo, ImageMatch), Vec<String>> {
    let mut best: Option<(&EntryInfo, ImageMatch)> = None;
    let mut rejected = Vec::new();
    for entry in candidates {
        match judge(entry, gpu) {
            Ok(image) => {
                if best.is_none_or(|(current, current_image)| {
                    rank(entry, image) > rank(current, current_image)
                }) {
                    best = Some((entry, image));
                }
            }
            Err(reason) => rejected.push(reason),
        }
    }
    best.ok_or(rejected)
}

/// The entries of a container that hold a kernel.
pub(crate) fn holders<'a>(
    container: &'a ContainerScan,
    kernel: &'a str,
) -> impl Iterator<Item = &'a EntryInfo> {
    container
        .entries
        .iter()
        .filter(move |entry| holds(entry, kernel))
}

/// Whether an entry's kernel list names `kernel`.
pub(crate) fn holds(entry: &EntryInfo, kernel: &str) -> bool {
    entry
        .kernels
        .as_ref()
        .is_some_and(|names| names.iter().any(|name| name == kernel))
}

/// What the driver does with one container on a GPU: it loads one image (the best
/// entry for the device) or none, and the module then holds exactly that image's
/// kernels.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ContainerVerdict {
    /// File offset of the container.
    pub container: u64,
    /// How the chosen image runs, or `None` when no entry fits.
    pub image: Option<ImageMatch>,
    /// The chosen entry's architecture.
    pub arch: Option<String>,
    /// File offset of the chosen entry.
    pub entry: Option<u64>,
    /// Why each entry was rejected, when none fits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<String>,
    /// The architectures of the container's loadable entries.
    pub architectures: Vec<String>,
}

/// What becomes of a kernel on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KernelOutcome {
    /// In the image its container loads.
    Runs,
    /// Built for other architectures only, in a file that does serve this GPU: its
    /// container loads another image or none, and the library launches it only where
    /// it was built for (NVIDIA's libraries and PyTorch dispatch by architecture).
    OtherArchitecture,
    /// In a file none of whose containers loads on this GPU: the library fails there.
    NoImage,
}

/// A file's verdict: its containers, its kernels, and whether it fails.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct FileVerdict {
    pub containers: Vec<ContainerVerdict>,
    pub kernels: Vec<KernelVerdict>,
}

impl FileVerdict {
    /// The file has kernels the driver could load and none of its containers loads on
    /// this GPU.
    pub fn fails(&self) -> bool {
        !self.kernels.is_empty() && self.containers.iter().all(|c| c.image.is_none())
    }
}

/// Whether the driver could load an entry on some GPU.
pub(crate) fn loadable(entry: &EntryInfo) -> bool {
    match entry.kind {
        EntryKind::Sass => !entry.is_relocatable(),
        EntryKind::Ptx => true,
        _ => false,
    }
}

/// The image the driver would load from a container, with its kernels' verdicts.
/// `outcome` of kernels without an image is settled per file by [`file_verdict`].
pub fn container_verdict(
    container: &ContainerScan,
    gpu: Gpu,
) -> (ContainerVerdict, Vec<KernelVerdict>) {
    let architectures = container
        .entries
        .iter()
        .filter(|entry| loadable(entry))
        .map(|entry| entry.arch.clone())
        .collect();
    let chosen = best_image(container.entries.iter(), gpu);
    let verdict = match &chosen {
        Ok((entry, image)) => ContainerVerdict {
            container: container.offset,
            image: Some(*image),
            arch: Some(entry.arch.clone()),
            entry: Some(entry.offset),
            rejected: Vec::new(),
            architectures,
        },
        Err(rejected) => ContainerVerdict {
            container: container.offset,
            image: None,
            arch: None,
            entry: None,
            rejected: rejected.clone(),
            architectures,
        },
    };
    let kernels = container
        .kernels()
        .into_iter()
        .map(|kernel| {
            // An entry whose kernels could not be listed is taken to hold them all.
            let loaded = chosen
                .as_ref()
                .ok()
                .filter(|(entry, _)| entry.kernels.is_none() || holds(entry, kernel));
            match loaded {
                Some((entry, image)) => KernelVerdict {
                    kernel: kernel.to_owned(),
                    container: container.offset,
                    image: Some(*image),
                    arch: Some(entry.arch.clone()),
                    entry: Some(entry.offset),
                    rejected: Vec::new(),
                    outcome: KernelOutcome::Runs,
                },
                None => KernelVerdict {
                    kernel: kernel.to_owned(),
                    container: container.offset,
                    image: None,
                    arch: None,
                    entry: None,
                    rejected: match &chosen {
                        Ok((entry, _)) => holders(container, kernel)
                            .map(|holder| {
                                format!(
                                    "{}: only there; the driver loads {}",
                                    holder.arch, entry.arch
                                )
                            })
                            .collect(),
                        Err(rejected) => rejected.clone(),
                    },
                    outcome: KernelOutcome::NoImage,
                },
            }
        })
        .collect();
    (verdict, kernels)
}

/// The verdict for everything the driver would load from a file: containers in
/// `.nv_fatbin` (and bare `.fatbin`/cubin files) that hold kernels. Relocatable
/// `__nv_relfatbin` code is judged after device linking, in the binary that links it.
pub fn file_verdict(scan: &FileScan, gpu: Gpu) -> FileVerdict {
    let mut verdict = FileVerdict::default();
    for container in scan.containers() {
        if container.section == SectionKind::RelFatbin {
            continue;
        }
        let (judged, kernels) = container_verdict(container, gpu);
        if kernels.is_empty() {
            continue;
        }
        verdict.containers.push(judged);
        verdict.kernels.extend(kernels);
    }
    if !verdict.fails() {
        for kernel in &mut verdict.kernels {
            if kernel.image.is_none() {
                kernel.outcome = KernelOutcome::OtherArchitecture;
            }
        }
    }
    verdict
}

/// The kernels' verdicts of [`file_verdict`].
pub fn file_verdicts(scan: &FileScan, gpu: Gpu) -> Vec<KernelVerdict> {
    file_verdict(scan, gpu).kernels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Compression;
    use crate::scan::UnitScan;

    fn entry(offset: u64, kind: EntryKind, arch: &str, kernels: &[&str]) -> EntryInfo {
        let digits = arch.trim_start_matches(|c: char| !c.is_ascii_digit());
        let (major, minor) = digits.split_at(digits.len() - 1);
        EntryInfo {
            section: SectionKind::NvFatbin,
            offset,
            kind,
            arch: arch.to_owned(),
            capability: Some(cap(&format!("{major}.{minor}"))),
            version: "8.0".to_owned(),
            compression: Compression::None,
            stored_size: 64,
            compressed_size: None,
            uncompressed_size: 64,
            identifier: None,
            options: None,
            host: "linux",
            debug: false,
            relocatable: false,
            cubin_type: None,
            elf_abi: None,
            kernels: Some(kernels.iter().map(|&k| k.to_owned()).collect()),
            members: Vec::new(),
            problem: None,
        }
    }

    fn file(containers: Vec<Vec<EntryInfo>>) -> FileScan {
        FileScan {
            format: crate::Format::Elf,
            units: vec![UnitScan {
                section_bytes: 0,
                containers: containers
                    .into_iter()
                    .enumerate()
                    .map(|(index, entries)| ContainerScan {
                        section: SectionKind::NvFatbin,
                        offset: 1000 * index as u64,
                        size: 0,
                        header_size: Some(16),
                        entries,
                    })
                    .collect(),
                member: None,
            }],
        }
    }

    fn gpu(text: &str) -> Gpu {
        Gpu {
            capability: cap(text),
            driver_cuda: None,
        }
    }

    fn outcome(verdict: &FileVerdict, kernel: &str) -> (KernelOutcome, Option<ImageMatch>) {
        let found = verdict
            .kernels
            .iter()
            .find(|v| v.kernel == kernel)
            .expect(kernel);
        (found.outcome, found.image)
    }

    #[test]
    fn the_driver_loads_one_image_per_container_and_only_its_kernels() {
        // SASS for 9.0 wins over PTX for 8.0, so `b`, in the PTX only, is not loaded.
        let scan = file(vec![vec![
            entry(16, EntryKind::Sass, "sm_90", &["a"]),
            entry(100, EntryKind::Ptx, "compute_80", &["a", "b"]),
        ]]);
        let verdict = file_verdict(&scan, gpu("9.0"));
        assert!(!verdict.fails());
        assert_eq!(verdict.containers[0].arch.as_deref(), Some("sm_90"));
        assert_eq!(
            outcome(&verdict, "a"),
            (KernelOutcome::Runs, Some(ImageMatch::ExactSass))
        );
        assert_eq!(
            outcome(&verdict, "b"),
            (KernelOutcome::OtherArchitecture, None)
        );
        // On 8.6 the PTX is the only image, and it holds both.
        let verdict = file_verdict(&scan, gpu("8.6"));
        assert_eq!(
            outcome(&verdict, "b"),
            (KernelOutcome::Runs, Some(ImageMatch::PtxJit))
        );
    }

    #[test]
    fn a_file_fails_only_when_none_of_its_containers_loads() {
        let arch_specific = vec![
            vec![entry(16, EntryKind::Sass, "sm_75", &["only75"])],
            vec![entry(16, EntryKind::Sass, "sm_90", &["general"])],
        ];
        let verdict = file_verdict(&file(arch_specific.clone()), gpu("9.0"));
        assert!(!verdict.fails());
        assert_eq!(
            outcome(&verdict, "only75"),
            (KernelOutcome::OtherArchitecture, None)
        );
        // Pruned to 7.5 without PTX: nothing loads on 9.0.
        let verdict = file_verdict(&file(vec![arch_specific[0].clone()]), gpu("9.0"));
        assert!(verdict.fails());
        assert_eq!(outcome(&verdict, "only75"), (KernelOutcome::NoImage, None));
        assert_eq!(
            verdict.kernels[0].rejected,
            ["sm_75: SASS does not run on 9.0"]
        );
        // A file with no kernels at all does not fail.
        assert!(!file_verdict(&file(Vec::new()), gpu("9.0")).fails());
    }

    fn cap(text: &str) -> Capability {
        text.parse().expect(text)
    }

    #[test]
    fn sass_compatibility_rules() {
        assert!(sass_runs_on(cap("8.0"), cap("8.6")));
        assert!(!sass_runs_on(cap("8.6"), cap("8.0")));
        assert!(!sass_runs_on(cap("8.0"), cap("9.0")));
        assert!(sass_runs_on(cap("9.0a"), cap("9.0")));
        assert!(!sass_runs_on(cap("10.0a"), cap("10.3")));
        assert!(sass_runs_on(cap("10.0f"), cap("10.3")));
        assert!(!sass_runs_on(cap("10.3f"), cap("10.0")));
        assert!(sass_runs_on(cap("12.0f"), cap("12.1")));
        assert!(!sass_runs_on(cap("10.0f"), cap("12.0")));
    }

    #[test]
    fn ptx_compatibility_rules() {
        assert!(ptx_runs_on(cap("7.5"), cap("9.0")));
        assert!(ptx_runs_on(cap("9.0"), cap("9.0")));
        assert!(!ptx_runs_on(cap("10.0"), cap("9.0")));
        assert!(ptx_runs_on(cap("9.0a"), cap("9.0")));
        assert!(!ptx_runs_on(cap("9.0a"), cap("10.0")));
        assert!(ptx_runs_on(cap("10.0f"), cap("10.3")));
        assert!(!ptx_runs_on(cap("10.0f"), cap("12.0")));
    }

    #[test]
    fn ptx_isa_releases() {
        assert_eq!(cuda_for_ptx_isa((8, 7)), Some(CudaVersion::new(12, 8)));
        assert_eq!(cuda_for_ptx_isa((8, 8)), Some(CudaVersion::new(12, 9)));
        assert_eq!(cuda_for_ptx_isa((9, 0)), Some(CudaVersion::new(13, 0)));
        assert_eq!(cuda_for_ptx_isa((9, 5)), Some(CudaVersion::new(13, 5)));
        assert_eq!(cuda_for_ptx_isa((5, 0)), None);
    }
}
