//! The pruning planner on arbitrary bytes, for several requests. A refusal must be true
//! (nothing in the file runs on the capability it names, or the kernel it names would
//! lose the PTX image the request drops) and, being an error rather than a plan, writes
//! nothing. A plan may only rewrite `.nv_fatbin` and `.fatbin` containers (never a bare
//! cubin), keeping whole entries byte for byte and in order; the file must still scan,
//! every kernel keeps the images it had for the requested capabilities, every requested
//! capability still runs something, the kernels built only for other GPUs are counted
//! exactly, and pruning again changes nothing.
#![no_main]

use cudapkgs_caps::parse_capability_list;
use cudapkgs_fatbin::{
    ContainerScan, EntryInfo, EntryKind, FileScan, Gpu, ImageMatch, KeepPtx, PruneError, PrunePlan,
    PruneRequest, ScanOptions, SectionKind, container_verdict, plan_prune, scan,
};
use libfuzzer_sys::fuzz_target;

/// Requests that reach every rule: SASS of one major (9.0), a capability the nvcc-built
/// seeds mostly lack (10.0: bare sm_90 cubins have no image for it), two majors with no
/// PTX, and PTX kept whole.
const REQUESTS: &[(&str, KeepPtx)] = &[
    ("9.0", KeepPtx::Auto),
    ("10.0", KeepPtx::Auto),
    ("7.5,8.6", KeepPtx::None),
    ("8.0", KeepPtx::All),
];

fuzz_target!(|data: &[u8]| {
    for (capabilities, keep_ptx) in REQUESTS {
        let request = PruneRequest {
            capabilities: parse_capability_list(capabilities).expect("valid"),
            keep_ptx: *keep_ptx,
            driver_cuda: None,
        };
        match plan_prune(data, &request) {
            Ok(plan) => check_plan(data, &request, &plan),
            Err(PruneError::Read(_)) => {}
            Err(refusal) => check_refusal(data, &request, &refusal),
        }
    }
});

fn kernels_scan(data: &[u8]) -> FileScan {
    scan(data, ScanOptions { kernels: true }).expect("the planner scanned it")
}

fn gpu(request: &PruneRequest, capability: cudapkgs_caps::Capability) -> Gpu {
    Gpu {
        capability: capability.without_variant(),
        driver_cuda: request.driver_cuda,
    }
}

/// SASS that is not relocatable, or PTX: what the driver could load on some GPU.
fn loadable(entry: &EntryInfo) -> bool {
    match entry.kind {
        EntryKind::Sass => !entry.is_relocatable(),
        EntryKind::Ptx => true,
        _ => false,
    }
}

fn holds(entry: &EntryInfo, kernel: &str) -> bool {
    entry
        .kernels
        .as_ref()
        .is_some_and(|names| names.iter().any(|name| name == kernel))
}

/// A container the driver loads from, the kernels a loadable entry of it holds, and
/// whether each has an image on each requested GPU.
struct Loadable<'s> {
    container: &'s ContainerScan,
    /// Per kernel, per GPU of the request.
    kernels: Vec<(&'s str, Vec<Option<ImageMatch>>)>,
}

/// The image each kernel would have if the driver chose among the entries holding it:
/// pruning keeps, per kernel, what serves it (the verdict's one image per container
/// is a narrower question), so its accounting is checked against this.
fn image_among_holders(container: &ContainerScan, kernel: &str, gpu: Gpu) -> Option<ImageMatch> {
    let holders = ContainerScan {
        entries: container
            .entries
            .iter()
            .filter(|e| holds(e, kernel))
            .cloned()
            .collect(),
        ..container.clone()
    };
    container_verdict(&holders, gpu)
        .1
        .into_iter()
        .find(|v| v.kernel == kernel)
        .and_then(|v| v.image)
}

fn kernels_the_driver_loads<'s>(scan: &'s FileScan, gpus: &[Gpu]) -> Vec<Loadable<'s>> {
    scan.containers()
        .filter(|c| c.section != SectionKind::RelFatbin)
        .map(|container| {
            let kernels = container
                .kernels()
                .into_iter()
                .filter(|k| container.entries.iter().any(|e| loadable(e) && holds(e, k)))
                .map(|kernel| {
                    let images = gpus
                        .iter()
                        .map(|gpu| image_among_holders(container, kernel, *gpu))
                        .collect();
                    (kernel, images)
                })
                .collect();
            Loadable { container, kernels }
        })
        .collect()
}

fn gpus(request: &PruneRequest) -> Vec<Gpu> {
    request
        .capabilities
        .iter()
        .map(|c| gpu(request, *c))
        .collect()
}

fn check_refusal(data: &[u8], request: &PruneRequest, refusal: &PruneError) {
    let before = kernels_scan(data);
    let gpus = gpus(request);
    let loadable_kernels = kernels_the_driver_loads(&before, &gpus);
    match refusal {
        PruneError::WouldBreak {
            kernel,
            container,
            capability,
        } => {
            // It has an image today, and only PTX, which the request drops, provides it.
            assert_eq!(request.keep_ptx, KeepPtx::None);
            let at = gpus
                .iter()
                .position(|g| g.capability == *capability)
                .expect("requested");
            let (_, images) = loadable_kernels
                .iter()
                .filter(|l| l.container.offset == *container)
                .flat_map(|l| l.kernels.iter())
                .find(|(name, _)| name == kernel)
                .expect("the refusal names a kernel the driver can load");
            assert_eq!(images[at], Some(ImageMatch::PtxJit));
        }
        PruneError::Unserved { capability, images } => {
            let at = gpus
                .iter()
                .position(|g| g.capability == *capability)
                .expect("requested");
            let mut archs: Vec<&str> = Vec::new();
            for loadable_kernel in &loadable_kernels {
                for (kernel, images) in &loadable_kernel.kernels {
                    assert_eq!(images[at], None, "{kernel} runs on {capability}");
                    for entry in loadable_kernel
                        .container
                        .entries
                        .iter()
                        .filter(|e| loadable(e) && holds(e, kernel))
                    {
                        if !archs.contains(&entry.arch.as_str()) {
                            archs.push(&entry.arch);
                        }
                    }
                }
            }
            assert!(!archs.is_empty(), "refused a file without kernels");
            assert_eq!(archs, *images);
        }
        PruneError::Read(_) => unreachable!("handled by the caller"),
    }
}

fn check_plan(data: &[u8], request: &PruneRequest, plan: &PrunePlan) {
    let before = kernels_scan(data);
    let gpus = gpus(request);
    let loadable_kernels = kernels_the_driver_loads(&before, &gpus);
    let without_image = loadable_kernels
        .iter()
        .flat_map(|l| l.kernels.iter())
        .filter(|(_, images)| images.iter().any(Option::is_none))
        .count();
    assert_eq!(plan.kernels_without_image, without_image as u64);

    let rewritable: Vec<&ContainerScan> = before
        .containers()
        .filter(|c| c.section != SectionKind::RelFatbin && c.header_size.is_some())
        .collect();
    assert_eq!(
        plan.rewrite.new_len,
        data.len() as u64,
        "pruning changed the length"
    );
    for (offset, bytes) in &plan.rewrite.writes {
        let start = usize::try_from(*offset).expect("an offset in the file");
        let end = start.checked_add(bytes.len()).expect("no overflow");
        assert!(end <= data.len(), "a write past the end of the file");
        assert!(
            rewritable
                .iter()
                .any(|c| *offset >= c.offset && (end as u64) <= c.offset + c.size),
            "a write at {offset:#x} outside every rewritable container"
        );
    }
    let pruned = plan.rewrite.apply_in_memory(data);
    if !plan.changed() {
        assert_eq!(pruned, data);
        return;
    }

    let after = scan(&pruned, ScanOptions { kernels: true }).expect("a pruned file still scans");
    let old: Vec<&ContainerScan> = before.containers().collect();
    let new: Vec<&ContainerScan> = after.containers().collect();
    assert_eq!(old.len(), new.len(), "containers appeared or vanished");
    let mut removed = 0;
    for (old, new) in old.iter().zip(&new) {
        assert_eq!(old.offset, new.offset, "a container moved");
        assert!(
            new.entries.iter().all(|e| e.problem.is_none()),
            "pruning made an entry unreadable"
        );
        // The kept entries are the old ones, byte for byte and in order.
        let mut remaining = old.entries.iter();
        for entry in &new.entries {
            let bytes = stored(&pruned, entry);
            let found = remaining
                .by_ref()
                .find(|o| stored(data, o) == bytes)
                .expect("a kept entry is an old one, in order");
            assert_eq!(found.kind, entry.kind);
        }
        let kept: u64 = new.entries.iter().map(|e| e.stored_size).sum();
        removed += old.entries.iter().map(|e| e.stored_size).sum::<u64>() - kept;
    }
    assert_eq!(removed, plan.removed_bytes);

    // Every image a kernel had for a requested capability is still there, so every
    // capability still runs something.
    let after_kernels = kernels_the_driver_loads(&after, &gpus);
    for loadable_kernel in &loadable_kernels {
        let now = after_kernels
            .iter()
            .find(|l| l.container.offset == loadable_kernel.container.offset)
            .expect("containers stay");
        for (kernel, images) in &loadable_kernel.kernels {
            let kept = now.kernels.iter().find(|(name, _)| name == kernel);
            for (at, image) in images.iter().enumerate() {
                assert!(
                    image.is_none() || kept.is_some_and(|(_, now)| now[at].is_some()),
                    "kernel {kernel} lost its image for {}",
                    gpus[at].capability
                );
            }
        }
    }
    if loadable_kernels.iter().any(|l| !l.kernels.is_empty()) {
        for (at, gpu) in gpus.iter().enumerate() {
            assert!(
                loadable_kernels
                    .iter()
                    .flat_map(|l| l.kernels.iter())
                    .any(|(_, images)| images[at].is_some()),
                "nothing runs on {}",
                gpu.capability
            );
        }
    }
    let again = plan_prune(&pruned, request).expect("a pruned file prunes again");
    assert!(!again.changed(), "pruning twice changed the file again");
}

fn stored<'d>(file: &'d [u8], entry: &EntryInfo) -> &'d [u8] {
    let start = usize::try_from(entry.offset).expect("in the file");
    let len = usize::try_from(entry.stored_size).expect("in the file");
    &file[start..start + len]
}
