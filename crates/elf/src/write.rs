//! Applying a plan to a file atomically (through `cudapkgs-tree`'s rewrite: a copy
//! beside the original, flushed, renamed over it).

use std::io;
use std::path::Path;

use cudapkgs_tree::rewrite_file;

use crate::patch::Plan;

/// Rewrites `path` (a symbolic link's target) according to `plan`. Does nothing when
/// the plan changes nothing.
pub fn rewrite(path: &Path, plan: &Plan) -> io::Result<()> {
    if !plan.changed {
        return Ok(());
    }
    rewrite_file(path, &plan.rewrite)
}
