//! The container and entry walker, discovery in ELF files and archives, and the
//! decompressors, on arbitrary bytes: errors are fine, panics and hangs are not.
#![no_main]

use cudapkgs_fatbin::decompress::{content, content_prefix};
use cudapkgs_fatbin::{ScanOptions, all_entries, containers, scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As a bare sequence of containers.
    for container in containers(data, 0, data.len() as u64).take(64) {
        let Ok(container) = container else { break };
        for entry in container.entries(data).take(256) {
            let Ok(entry) = entry else { break };
            let _ = entry.identifier();
            let _ = entry.options();
            let _ = entry.group_members().count();
            let _ = content_prefix(&entry, data, 64);
            let _ = content(&entry, data);
        }
    }
    // As a whole file of any supported format, with kernels.
    let _ = scan(data, ScanOptions { kernels: true });
    let _ = all_entries(data);
});
