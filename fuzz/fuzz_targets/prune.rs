//! The pruning planner on arbitrary bytes, for several requests. A refusal must be true
//! (the kernel it names has no image for the capability it names, or only PTX that the
//! request drops), and, being an error rather than a plan, writes nothing. A plan may
//! only rewrite `.nv_fatbin` and `.fatbin` containers (never a bare cubin), keeping whole
//! entries byte for byte; the file must still scan, every kernel the driver can load
//! must keep an image for every requested capability, and pruning again changes nothing.
#![no_main]

use cudapkgs_caps::parse_capability_list;
use cudapkgs_fatbin::{
    ContainerScan, EntryInfo, EntryKind, FileScan, Gpu, KeepPtx, PruneError, PrunePlan,
    PruneRequest, ScanOptions, SectionKind, container_verdicts, plan_prune, scan,
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

fn gpus(request: &PruneRequest) -> impl Iterator<Item = Gpu> + '_ {
    request.capabilities.iter().map(|capability| Gpu {
        capability: capability.without_variant(),
        driver_cuda: request.driver_cuda,
    })
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

fn check_refusal(data: &[u8], request: &PruneRequest, refusal: &PruneError) {
    let (kernel, offset, capability, dropped_ptx) = match refusal {
        PruneError::WouldBreak {
            kernel,
            container,
            capability,
        } => (kernel, *container, *capability, true),
        PruneError::NoImage {
            kernel,
            container,
            capability,
            ..
        } => (kernel, *container, *capability, false),
        PruneError::Read(_) => unreachable!("handled by the caller"),
    };
    assert!(
        request
            .capabilities
            .iter()
            .any(|c| c.without_variant() == capability)
    );
    let before = kernels_scan(data);
    let container = before
        .containers()
        .find(|c| c.offset == offset && c.section != SectionKind::RelFatbin)
        .expect("the refusal names a container of the file");
    assert!(
        container
            .entries
            .iter()
            .any(|e| loadable(e) && holds(e, kernel)),
        "refused for a kernel no loadable entry holds"
    );
    let gpu = Gpu {
        capability,
        driver_cuda: request.driver_cuda,
    };
    let verdict = container_verdicts(container, gpu)
        .into_iter()
        .find(|v| &v.kernel == kernel)
        .expect("the refusal names a kernel of the container");
    if dropped_ptx {
        // It has an image today, and only PTX, which the request drops, provides it.
        assert_eq!(request.keep_ptx, KeepPtx::None);
        assert_eq!(verdict.image, Some(cudapkgs_fatbin::ImageMatch::PtxJit));
    } else {
        assert_eq!(verdict.image, None, "refused a kernel that has an image");
    }
}

fn check_plan(data: &[u8], request: &PruneRequest, plan: &PrunePlan) {
    let before = kernels_scan(data);
    let rewritable: Vec<&ContainerScan> = before
        .containers()
        .filter(|c| c.section != SectionKind::RelFatbin && c.header_size.is_some())
        .collect();
    let mut pruned = data.to_vec();
    for (offset, bytes) in &plan.writes {
        let start = usize::try_from(*offset).expect("an offset in the file");
        let end = start.checked_add(bytes.len()).expect("no overflow");
        assert!(end <= data.len(), "a write past the end of the file");
        assert!(
            rewritable
                .iter()
                .any(|c| *offset >= c.offset && (end as u64) <= c.offset + c.size),
            "a write at {offset:#x} outside every rewritable container"
        );
        pruned[start..end].copy_from_slice(bytes);
    }
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

        // `__nv_relfatbin` code is judged after device linking, not here.
        if old.section == SectionKind::RelFatbin {
            continue;
        }
        for kernel in old.kernels() {
            if !old.entries.iter().any(|e| loadable(e) && holds(e, kernel)) {
                continue;
            }
            for gpu in gpus(request) {
                let verdict = container_verdicts(new, gpu)
                    .into_iter()
                    .find(|v| v.kernel == kernel);
                assert!(
                    verdict.is_some_and(|v| v.image.is_some()),
                    "kernel {kernel} lost its image for {}",
                    gpu.capability
                );
            }
        }
    }
    assert_eq!(removed, plan.removed_bytes);
    let again = plan_prune(&pruned, request).expect("a pruned file prunes again");
    assert!(!again.changed(), "pruning twice changed the file again");
}

fn stored<'d>(file: &'d [u8], entry: &EntryInfo) -> &'d [u8] {
    let start = usize::try_from(entry.offset).expect("in the file");
    let len = usize::try_from(entry.stored_size).expect("in the file");
    &file[start..start + len]
}
