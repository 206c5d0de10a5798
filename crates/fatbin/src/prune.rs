//! Dropping the device code no requested GPU can use, container by container, in place.
//!
//! For every kernel and every requested capability, the entry the driver would choose is
//! kept; PTX is kept where it is that choice (`auto`) or always (`all`). Relocatable SASS
//! (which libraries may link at run time) is kept for the requested architectures;
//! LTO-IR and other kinds are left alone. Kept entries move to the start of their
//! container, the container's size shrinks, and the freed tail is zeroed: every
//! container stays at its address, so the pointers to it stay valid. Before anything is
//! planned, the result is checked: every kernel that has an image for a requested
//! capability today keeps one.

use std::collections::BTreeMap;
use std::fmt;

use cudapkgs_caps::{Capability, CudaVersion};
use serde::Serialize;

use crate::container::EntryKind;
use crate::discover::SectionKind;
use crate::error::{Bytes, Error};
use crate::scan::{ContainerScan, EntryInfo, ScanOptions, scan};
use crate::verdict::{Gpu, best_image, holders, sass_runs_on};

/// What to do with PTX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub arch: String,
    pub kind: EntryKind,
    pub entries: u64,
    pub bytes: u64,
}

/// A pruning, as writes against the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    pub writes: Vec<(u64, Vec<u8>)>,
    /// Zeroed ranges, for hole punching.
    pub zeroed: Vec<(u64, u64)>,
    pub removed: Vec<Removed>,
    pub removed_bytes: u64,
    pub containers_changed: usize,
}

impl PrunePlan {
    pub fn changed(&self) -> bool {
        !self.writes.is_empty()
    }
}

/// Why a pruning was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Read(#[from] Error),
    #[error(
        "refusing to prune: kernel {kernel} (container {container:#x}) would lose its only image for {capability}; keep PTX (--keep-ptx auto) or add the capability"
    )]
    WouldBreak {
        kernel: String,
        container: u64,
        capability: Capability,
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
    let mut plan = PrunePlan::default();
    let mut removed: BTreeMap<(EntryKind, String), Removed> = BTreeMap::new();
    for container in scanned.containers() {
        if container.section == SectionKind::RelFatbin {
            continue;
        }
        let keep = keep_set(container, &gpus, request.keep_ptx)?;
        if keep.iter().all(|&kept| kept) {
            continue;
        }
        rewrite_container(data, container, &keep, &mut plan)?;
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
    plan.removed = removed.into_values().collect();
    plan.removed
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.arch.cmp(&b.arch)));
    Ok(plan)
}

/// Which entries of a container stay.
fn keep_set(
    container: &ContainerScan,
    gpus: &[Gpu],
    keep_ptx: KeepPtx,
) -> Result<Vec<bool>, PruneError> {
    let entries = &container.entries;
    let index_of = |chosen: &EntryInfo| {
        entries
            .iter()
            .position(|entry| entry.offset == chosen.offset)
    };
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
        if !any {
            return Ok(vec![true; entries.len()]);
        }
        return Ok(keep);
    }

    for kernel in &kernels {
        for gpu in gpus {
            let Ok((chosen, _)) = best_image(holders(container, kernel), *gpu) else {
                continue;
            };
            if keep_ptx == KeepPtx::None && chosen.kind == EntryKind::Ptx {
                // Without PTX, the next best SASS must do.
                let without_ptx =
                    holders(container, kernel).filter(|entry| entry.kind != EntryKind::Ptx);
                match best_image(without_ptx, *gpu) {
                    Ok((fallback, _)) => {
                        keep[index_of(fallback).expect("an entry of this container")] = true;
                    }
                    Err(_) => {
                        return Err(PruneError::WouldBreak {
                            kernel: (*kernel).to_owned(),
                            container: container.offset,
                            capability: gpu.capability,
                        });
                    }
                }
            } else {
                keep[index_of(chosen).expect("an entry of this container")] = true;
            }
        }
    }

    // The check: every kernel that has an image for a requested capability keeps one.
    for kernel in &kernels {
        for gpu in gpus {
            let before = best_image(holders(container, kernel), *gpu).is_ok();
            let kept = holders(container, kernel)
                .filter(|entry| keep[index_of(entry).expect("own entry")]);
            if before && best_image(kept, *gpu).is_err() {
                return Err(PruneError::WouldBreak {
                    kernel: (*kernel).to_owned(),
                    container: container.offset,
                    capability: gpu.capability,
                });
            }
        }
    }
    Ok(keep)
}

/// Moves the kept entries to the container's start, shrinks its size, zeroes the rest.
fn rewrite_container(
    data: &[u8],
    container: &ContainerScan,
    keep: &[bool],
    plan: &mut PrunePlan,
) -> Result<(), Error> {
    let bytes = Bytes::new(data, "fatbin container");
    let header_size = u64::from(bytes.u16(container.offset + 6)?);
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
    plan.writes.push((
        container.offset + 8,
        (body.len() as u64).to_le_bytes().to_vec(),
    ));
    plan.writes.push((body_start, body));
    let freed = end - new_end;
    plan.writes
        .push((new_end, vec![0u8; usize::try_from(freed).unwrap_or(0)]));
    plan.zeroed.push((new_end, freed));
    plan.containers_changed += 1;
    Ok(())
}
