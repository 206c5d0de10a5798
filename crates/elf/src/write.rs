//! Applying a plan to a file atomically: a copy beside the original gets the writes,
//! is flushed to disk with the original's permissions, and replaces the original by
//! rename. A failure at any step leaves the original untouched.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::patch::Plan;

/// Where a rewrite lands: the file itself, or the target of a symbolic link.
pub fn target(path: &Path) -> io::Result<PathBuf> {
    std::fs::canonicalize(path)
}

/// Rewrites `path` according to `plan`. Does nothing when the plan changes nothing.
pub fn rewrite(path: &Path, plan: &Plan) -> io::Result<()> {
    if !plan.changed {
        return Ok(());
    }
    let path = target(path)?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let permissions = std::fs::metadata(&path)?.permissions();
    let mut temp = tempfile::Builder::new()
        .prefix(".cudapkgs-patch-")
        .tempfile_in(dir)?;
    {
        let mut original = File::open(&path)?;
        // Copies in the kernel (copy_file_range) where the file system allows.
        io::copy(&mut original, temp.as_file_mut())?;
    }
    let file = temp.as_file();
    if let Some(len) = plan.truncate {
        file.set_len(len)?;
    }
    for (offset, bytes) in &plan.writes {
        file.write_all_at(bytes, *offset)?;
    }
    file.set_len(plan.new_len)?;
    file.set_permissions(permissions)?;
    file.sync_all()?;
    temp.persist(&path).map_err(|error| error.error)?;
    // Make the rename itself durable.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
