//! The runpath rewriter on arbitrary bytes: planning may refuse, but a plan it makes
//! must produce a file whose dynamic view reads back with the new search path, of the
//! kind the file had (`DT_RPATH` stays `DT_RPATH`).
#![no_main]

use cudapkgs_elf::patch::{Changes, RunpathChange, plan, written_as_rpath};
use cudapkgs_elf::read_dynamic;
use libfuzzer_sys::fuzz_target;

const RUNPATH: &str = "$ORIGIN:/run/opengl-driver/lib:/a/longer/folder/to/force/a/new/region";

fuzz_target!(|data: &[u8]| {
    let changes = Changes {
        runpath: RunpathChange::Set(RUNPATH.into()),
        ..Changes::default()
    };
    let Ok(plan) = plan(data, &changes) else { return };
    if plan.rewrite.new_len > 64 << 20 {
        return;
    }
    let before = read_dynamic(data).expect("a planned file is readable");
    let patched = plan.rewrite.apply_in_memory(data);
    let info = read_dynamic(&patched).expect("a planned rewrite stays readable");
    let (written, other) = if written_as_rpath(&before, false) {
        (info.rpath, info.runpath)
    } else {
        (info.runpath, info.rpath)
    };
    assert_eq!((written.as_deref(), other), (Some(RUNPATH), None));
});
