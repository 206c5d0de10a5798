//! The dynamic-linking view of arbitrary bytes: errors are fine, panics are not.
#![no_main]

use cudapkgs_elf::read_dynamic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_dynamic(data);
});
