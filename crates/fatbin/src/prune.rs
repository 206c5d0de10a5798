//! Dropping the device code no requested GPU can use, container by container, in place.
//!
//! For every kernel and every requested capability, the entry the driver would choose is
//! kept; PTX is kept where it is that choice (`auto`) or always (`all`). Relocatable SASS
//! (which libraries may link at run time) is kept for the requested architectures;
//! LTO-IR and other kinds are left alone. Kept entries move to the start of their
//! container, the container's size shrinks, and the freed tail is zeroed: every
//! container stays at its address, so the pointers to it stay valid. Before anything is
//! planned, the result is checked: every kernel that has an image for a requested
//! capability today keeps one, and every requested capability keeps an image of some
//! kernel. Kernels built only for other GPUs (libraries carry many, dispatched on their
//! own architecture only) lose their entries and are counted.

use std::collections::BTreeMap;
use std::fmt;

use cudapkgs_caps::{Capability, CudaVersion};
use cudapkgs_tree::Rewrite;
use serde::Serialize;

use crate::container::{CONTAINER_SIZE_AT, EntryKind};
use crate::discover::SectionKind;
use crate::error::Error;
use crate::read::Bytes;
use crate::scan::{ContainerScan, ScanOptions, scan};
use crate::verdict::{Gpu, best_image, holders, holds, loadable, sass_runs_on};

/// What to do with PTX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeepPtx {
    /// Only where a kernel needs it for a requested capability.
    #[default]
    Auto,
    /// Every PTX entry (forward compatibility with GPUs not listed).
    All,
    /// None; refused if a kernel would lose its only image for a requested capability.
    None,
}

/// What to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRequest {
    pub capabilities: Vec<Capability>,
    pub keep_ptx: KeepPtx,
    /// For PTX ISA checks; `None` assumes a driver new enough.
    pub driver_cuda: Option<CudaVersion>,
}

/// Bytes removed for one architecture and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Removed {
    pub arch: String,
    pub kind: EntryKind,
    pub entries: u64,
    pub bytes: u64,
}

/// A pruning: the rewrite of the file, and what it removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunePlan {
    /// In place: the file keeps its length, and the freed tails of containers are holes.
    pub rewrite: Rewrite,
    pub removed: Vec<Removed>,
    pub removed_bytes: u64,
    pub containers_changed: usize,
    /// Kernels that have no image for some requested capability, before as after: code
    /// built only for other GPUs.
    pub kernels_without_image: u64,
}

impl PrunePlan {
    /// Removes nothing from a file of `len` bytes.
    fn keeping_everything(len: usize) -> Self {
        PrunePlan {
            rewrite: Rewrite::in_place(len as u64),
            removed: Vec::new(),
            removed_bytes: 0,
            containers_changed: 0,
            kernels_without_image: 0,
        }
    }

    pub fn changed(&self) -> bool {
        !self.rewrite.is_empty()
    }
}

/// Why a pruning was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Read(#[from] Error),
    /// The kernel has an image for the capability today that the pruning would remove.
    #[error(
        "refusing to prune: kernel {kernel} (container {container:#x}) would lose its only image for {capability}"
    )]
    WouldBreak {
        kernel: String,
        container: u64,
        capability: Capability,
    },
    /// No kernel of the file has an image for the capability: pruning for it would remove
    /// all the file's device code.
    #[error(
        "refusing to prune: nothing in the file runs on {capability} (its kernels have images for {}); ask only for capabilities the file serves",
        images.join(", ")
    )]
    Unserved {
        capability: Capability,
        /// The architectures of the entries that hold kernels the driver can load.
        images: Vec<String>,
    },
}

impl fmt::Display for KeepPtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeepPtx::Auto => "auto",
            KeepPtx::All => "all",
            KeepPtx::None => "none",
        })
    }
}

/// Plans the pruning of a file's bytes.
pub fn plan_prune(data: &[u8], request: &PruneRequest) -> Result<PrunePlan, PruneError> {
    let scanned = scan(data, ScanOptions { kernels: true })?;
    if let Some(problem) = scanned.entries().find_map(|entry| entry.problem.clone()) {
        return Err(PruneError::Read(Error::Object {
            what: "fatbin entry",
            problem,
        }));
    }
    let gpus: Vec<Gpu> = request
        .capabilities
        .iter()
        .map(|capability| Gpu {
            capability: capability.without_variant(),
            driver_cuda: request.driver_cuda,
        })
        .collect();
    let mut plan = PrunePlan::keeping_everything(data.len());
    let mut served = Served::new(gpus.len());
    let mut removed: BTreeMap<(EntryKind, String), Removed> = BTreeMap::new();
    for container in scanned.containers() {
        if container.section == SectionKind::RelFatbin {
            continue;
        }
        let Some(header_size) = container.header_size else {
            // A bare cubin is a single image: it stays whole, and its kernels are
            // checked like any others.
            let keep = vec![true; container.entries.len()];
            check_kernels(container, &gpus, &keep, &mut served)?;
            continue;
        };
        let keep = keep_set(container, &gpus, request.keep_ptx);
        check_kernels(container, &gpus, &keep, &mut served)?;
        if keep.iter().all(|&kept| kept) {
            continue;
        }
        rewrite_container(data, container, header_size, &keep, &mut plan)?;
        for (entry, _) in container
            .entries
            .iter()
            .zip(&keep)
            .filter(|(_, kept)| !**kept)
        {
            let total = removed
                .entry((entry.kind, entry.arch.clone()))
                .or_insert_with(|| Removed {
                    arch: entry.arch.clone(),
                    kind: entry.kind,
                    entries: 0,
                    bytes: 0,
                });
            total.entries += 1;
            total.bytes += entry.stored_size;
            plan.removed_bytes += entry.stored_size;
        }
    }
    if !served.images.is_empty() {
        if let Some(gpu) = gpus.iter().zip(&served.by_gpu).find(|(_, ok)| !**ok) {
            return Err(PruneError::Unserved {
                capability: gpu.0.capability,
                images: served.images,
            });
        }
    }
    plan.kernels_without_image = served.kernels_without_image;
    plan.removed = removed.into_values().collect();
    plan.removed
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.arch.cmp(&b.arch)));
    Ok(plan)
}

/// Which entries of a container stay.
fn keep_set(container: &ContainerScan, gpus: &[Gpu], keep_ptx: KeepPtx) -> Vec<bool> {
    let entries = &container.entries;
    let mut keep: Vec<bool> = entries
        .iter()
        .map(|entry| match entry.kind {
            EntryKind::Sass if entry.is_relocatable() => entry
                .capability
                .is_none_or(|image| gpus.iter().any(|gpu| sass_runs_on(image, gpu.capability))),
            EntryKind::Sass => false,
            EntryKind::Ptx => keep_ptx == KeepPtx::All,
            _ => true,
        })
        .collect();

    let kernels = container.kernels();
    if kernels.is_empty() {
        // No kernels (CUDA 13's device-link container): keep the SASS some requested GPU
        // can use; when none can, leave the container as it is.
        let mut any = false;
        for (index, entry) in entries.iter().enumerate() {
            if entry.kind == EntryKind::Sass && !entry.is_relocatable() {
                let usable = entry.capability.is_some_and(|image| {
                    gpus.iter().any(|gpu| sass_runs_on(image, gpu.capability))
                });
                keep[index] |= usable;
                any |= usable;
            }
        }
        return if any { keep } else { vec![true; entries.len()] };
    }

    for kernel in &kernels {
        for gpu in gpus {
            // Without PTX, the best SASS must do; `check_kernels` refuses when none can.
            let candidates = holders(container, kernel)
                .filter(|entry| keep_ptx != KeepPtx::None || entry.kind != EntryKind::Ptx);
            if let Ok((chosen, _)) = best_image(candidates, *gpu) {
                let index = entries
                    .iter()
                    .position(|entry| entry.offset == chosen.offset)
                    .expect("an entry of this container");
                keep[index] = true;
            }
        }
    }
    keep
}

/// What the check has seen so far, across the file's containers.
#[derive(Debug)]
struct Served {
    /// Per requested capability: whether some kernel keeps an image for it.
    by_gpu: Vec<bool>,
    kernels_without_image: u64,
    /// Architectures of the entries that hold kernels the driver can load, in file order.
    images: Vec<String>,
}

impl Served {
    fn new(gpus: usize) -> Self {
        Served {
            by_gpu: vec![false; gpus],
            kernels_without_image: 0,
            images: Vec::new(),
        }
    }
}

/// The check before anything is planned: a kernel the driver can load that has an image
/// for a requested capability keeps one. Kernels held only by relocatable code are
/// device-linked elsewhere and judged there.
fn check_kernels(
    container: &ContainerScan,
    gpus: &[Gpu],
    keep: &[bool],
    served: &mut Served,
) -> Result<(), PruneError> {
    for kernel in container.kernels() {
        let images: Vec<&str> = holders(container, kernel)
            .filter(|entry| loadable(entry))
            .map(|entry| entry.arch.as_str())
            .collect();
        if images.is_empty() {
            continue;
        }
        for arch in images {
            if !served.images.iter().any(|seen| seen == arch) {
                served.images.push(arch.to_owned());
            }
        }
        let mut without_image = false;
        for (gpu, gpu_served) in gpus.iter().zip(&mut served.by_gpu) {
            let kept = container
                .entries
                .iter()
                .zip(keep)
                .filter(|(entry, kept)| **kept && holds(entry, kernel))
                .map(|(entry, _)| entry);
            if best_image(kept, *gpu).is_ok() {
                *gpu_served = true;
            } else if best_image(holders(container, kernel), *gpu).is_ok() {
                return Err(PruneError::WouldBreak {
                    kernel: kernel.to_owned(),
                    container: container.offset,
                    capability: gpu.capability,
                });
            } else {
                without_image = true;
            }
        }
        served.kernels_without_image += u64::from(without_image);
    }
    Ok(())
}

/// Moves the kept entries to the container's start, shrinks its size, zeroes the rest.
fn rewrite_container(
    data: &[u8],
    container: &ContainerScan,
    header_size: u64,
    keep: &[bool],
    plan: &mut PrunePlan,
) -> Result<(), Error> {
    let bytes = Bytes::new(data, "fatbin container");
    let body_start = container.offset + header_size;
    let end = container.offset + container.size;
    let mut body = Vec::new();
    for (entry, _) in container
        .entries
        .iter()
        .zip(keep)
        .filter(|(_, kept)| **kept)
    {
        body.extend_from_slice(bytes.slice(entry.offset, entry.stored_size)?);
    }
    let new_end = body_start + body.len() as u64;
    let Some(freed) = end.checked_sub(new_end) else {
        return Err(Error::malformed(
            "fatbin container",
            container.offset,
            format!(
                "its kept entries ({} bytes) do not fit in its {} bytes",
                body.len(),
                container.size.saturating_sub(header_size)
            ),
        ));
    };
    let rewrite = &mut plan.rewrite;
    rewrite.writes.push((
        container.offset + CONTAINER_SIZE_AT,
        (body.len() as u64).to_le_bytes().to_vec(),
    ));
    rewrite.writes.push((body_start, body));
    // Bounded by the file's length, which is in memory already.
    rewrite.writes.push((
        new_end,
        vec![0u8; usize::try_from(freed).expect("within the file")],
    ));
    rewrite.holes.push((new_end, freed));
    plan.containers_changed += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::tests::{container_bytes, entry_bytes};

    /// An nvcc-built sm_90 cubin (new ABI) with one kernel, `vec_axpy`.
    const CUBIN: &[u8] = include_bytes!("../../../fixtures/cuda/out/standalone.cubin");

    fn request(capabilities: &str, keep_ptx: KeepPtx) -> PruneRequest {
        PruneRequest {
            capabilities: cudapkgs_caps::parse_capability_list(capabilities).expect("valid"),
            keep_ptx,
            driver_cuda: None,
        }
    }

    /// Like the cubins of libcudadevrt.a: larger than the size a container header at
    /// offset 6 would claim (the ELF identification's bytes 6 and 7, 0x4101).
    fn large_cubin(elf_type: u16) -> Vec<u8> {
        let mut data = CUBIN.to_vec();
        data[0x10..0x12].copy_from_slice(&elf_type.to_le_bytes());
        data.resize(0x10000, 0);
        data
    }

    fn ptx(arch: u32, kernel: &str) -> Vec<u8> {
        let text = format!(".version 8.0\n.target sm_{arch}\n.visible .entry {kernel}(\n)\n");
        entry_bytes(1, arch, 0x11, text.as_bytes(), None)
    }

    #[test]
    fn bare_cubins_stay_whole() {
        for data in [CUBIN.to_vec(), large_cubin(2)] {
            let plan = plan_prune(&data, &request("9.0", KeepPtx::Auto)).expect("serves 9.0");
            assert_eq!(plan, PrunePlan::keeping_everything(data.len()));
            let refused = plan_prune(&data, &request("10.0", KeepPtx::Auto));
            assert_eq!(
                refused,
                Err(PruneError::Unserved {
                    capability: Capability::baseline(10, 0),
                    images: vec!["sm_90".into()],
                })
            );
        }
        // Relocatable code is kept for device links elsewhere: the file stays as it is.
        let relocatable = large_cubin(1);
        let plan = plan_prune(&relocatable, &request("10.0", KeepPtx::Auto)).expect("planned");
        assert_eq!(plan, PrunePlan::keeping_everything(relocatable.len()));
    }

    #[test]
    fn a_capability_nothing_in_the_file_serves_is_refused() {
        let data = container_bytes(&[ptx(80, "k"), ptx(90, "k")]);
        for (capabilities, missing) in [("7.5", "7.5"), ("9.0,7.0", "7.0")] {
            let error = plan_prune(&data, &request(capabilities, KeepPtx::Auto))
                .expect_err(capabilities)
                .to_string();
            assert!(
                error.contains(&format!(
                    "nothing in the file runs on {missing} (its kernels have images for compute_80, compute_90)"
                )),
                "{error}"
            );
        }
        // compute_90 serves 9.0 and 10.0, compute_80 serves 8.6: one goes.
        let plan = plan_prune(&data, &request("8.6", KeepPtx::Auto)).expect("served");
        assert_eq!(plan.removed_bytes, ptx(90, "k").len() as u64);
        let plan = plan_prune(&data, &request("9.0,10.0", KeepPtx::Auto)).expect("served");
        assert_eq!(plan.removed_bytes, ptx(80, "k").len() as u64);
        // Without PTX nothing serves: the kernel would lose the image it has.
        let error = plan_prune(&data, &request("9.0", KeepPtx::None)).expect_err("no SASS");
        assert!(matches!(error, PruneError::WouldBreak { .. }), "{error}");
    }

    #[test]
    fn kernels_built_only_for_other_gpus_lose_their_entries_and_are_counted() {
        // As in cuBLAS: one container serves 9.0, another holds the cubin's two kernels
        // built for 7.5 only, which a library launches on 7.5 devices only.
        let served = container_bytes(&[ptx(80, "k")]);
        let other = container_bytes(&[entry_bytes(2, 75, 0x11, CUBIN, None)]);
        let data = [served.clone(), other.clone()].concat();
        let plan = plan_prune(&data, &request("9.0", KeepPtx::Auto)).expect("served");
        assert_eq!(plan.kernels_without_image, 2);
        assert_eq!(plan.removed_bytes, other.len() as u64 - 0x10);
        assert_eq!(
            plan.rewrite.holes,
            [(served.len() as u64 + 0x10, other.len() as u64 - 0x10)]
        );
        // For 7.5 the other way round: compute_80 cannot serve 7.5, sm_75 can.
        let plan = plan_prune(&data, &request("7.5", KeepPtx::Auto)).expect("served");
        assert_eq!(plan.kernels_without_image, 1);
        assert_eq!(plan.removed_bytes, served.len() as u64 - 0x10);
    }

    #[test]
    fn pruned_containers_keep_their_place_and_size() {
        let sass = entry_bytes(2, 90, 0x11, CUBIN, None);
        let data = container_bytes(&[ptx(80, "vec_axpy"), sass.clone()]);
        let plan = plan_prune(&data, &request("9.0", KeepPtx::Auto)).expect("served");
        let pruned = plan.rewrite.apply_in_memory(&data);
        assert_eq!(pruned.len(), data.len());
        assert_eq!(&pruned[8..16], &(sass.len() as u64).to_le_bytes());
        assert_eq!(&pruned[0x10..0x10 + sass.len()], &sass[..]);
        assert!(pruned[0x10 + sass.len()..].iter().all(|&b| b == 0));
        assert_eq!(
            plan.rewrite.holes,
            [((0x10 + sass.len()) as u64, ptx(80, "vec_axpy").len() as u64)]
        );
    }
}

/// Bytes of the zstd stream (level 3) of `data`: what a file costs in a compressed
/// archive or cache, before and after pruning.
pub fn compressed_size(data: &[u8]) -> std::io::Result<u64> {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    zstd::stream::copy_encode(data, &mut counter, 3)?;
    Ok(counter.0)
}

#[cfg(test)]
mod compressed_size_tests {
    use super::compressed_size;

    #[test]
    fn repetitive_bytes_shrink_and_noise_does_not() {
        let repetitive = vec![7u8; 1 << 20];
        let size = compressed_size(&repetitive).expect("compress");
        assert!(size > 0 && size < 1024, "{size}");
        let noise: Vec<u8> = cudapkgs_testkit::Noise::new().take(1 << 16).collect();
        assert!(compressed_size(&noise).expect("compress") >= noise.len() as u64 * 9 / 10);
    }
}
