//! The pruning planner on arbitrary bytes: it may refuse, but a plan it makes must give
//! a file that still scans and whose kernels keep an image for the requested GPU.
#![no_main]

use cudapkgs_caps::Capability;
use cudapkgs_fatbin::{Gpu, KeepPtx, PruneRequest, ScanOptions, file_verdicts, plan_prune, scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let capability = Capability::baseline(9, 0);
    let request = PruneRequest {
        capabilities: vec![capability],
        keep_ptx: KeepPtx::Auto,
        driver_cuda: None,
    };
    let Ok(plan) = plan_prune(data, &request) else { return };
    let mut pruned = data.to_vec();
    for (offset, bytes) in &plan.writes {
        let start = usize::try_from(*offset).expect("within the file");
        pruned[start..start + bytes.len()].copy_from_slice(bytes);
    }
    let gpu = Gpu { capability, driver_cuda: None };
    let before = scan(data, ScanOptions { kernels: true }).expect("planned from a scan");
    let after = scan(&pruned, ScanOptions { kernels: true }).expect("a pruned file still scans");
    let usable = |scan| -> Vec<String> {
        let mut kernels: Vec<String> = file_verdicts(scan, gpu).into_iter().filter(|v| v.image.is_some()).map(|v| v.kernel).collect();
        kernels.sort();
        kernels
    };
    assert_eq!(usable(&before), usable(&after));
});
