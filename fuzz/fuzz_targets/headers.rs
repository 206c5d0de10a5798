//! Cubin (device ELF) and PTX header parsers on arbitrary bytes.
#![no_main]

use cudapkgs_fatbin::{parse_cubin, parse_ptx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_cubin(data);
    let _ = parse_ptx(data);
});
