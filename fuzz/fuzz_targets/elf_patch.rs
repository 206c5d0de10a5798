//! The runpath rewriter on arbitrary bytes: planning may refuse, but a plan it makes
//! must produce a file whose dynamic view reads back with the new runpath.
#![no_main]

use cudapkgs_elf::patch::{Changes, RunpathChange, apply_in_memory, plan};
use cudapkgs_elf::read_dynamic;
use libfuzzer_sys::fuzz_target;

const RUNPATH: &str = "$ORIGIN:/run/opengl-driver/lib:/a/longer/folder/to/force/a/new/region";

fuzz_target!(|data: &[u8]| {
    let changes = Changes {
        runpath: RunpathChange::Set(RUNPATH.into()),
        ..Changes::default()
    };
    let Ok(plan) = plan(data, &changes) else { return };
    if plan.new_len > 64 << 20 {
        return;
    }
    let patched = apply_in_memory(data, &plan);
    let info = read_dynamic(&patched).expect("a planned rewrite stays readable");
    assert_eq!(info.runpath.as_deref(), Some(RUNPATH));
});
