//! One package from archive (or folder) to outputs: unpack, fix up, split.

use std::path::Path;

use crate::error::Error;
use crate::split::{FixupOptions, Output, OutputLocations, fix_up, split};
use crate::unpack::{Limits, unpack};

/// What `split_package` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub fixups: Vec<String>,
    pub outputs: Vec<Output>,
}

/// Unpacks `source` (an archive, or a folder that is copied) and splits it into
/// `out_dir/<output>/`, which appears whole or not at all. pkg-config files name the
/// outputs under `out_dir`.
pub fn split_package(
    source: &Path,
    out_dir: &Path,
    allow_usr: bool,
    limits: Limits,
) -> Result<Split, Error> {
    let parent = out_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let out_dir = std::path::absolute(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let work = tempfile::Builder::new()
        .prefix(".cudapkgs-package-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let tree = work.path().join("tree");
    if source.is_dir() {
        cudapkgs_tree::copy_tree(source, &tree).map_err(|e| Error::io(source, e))?;
    } else {
        unpack(source, &tree, limits)?;
    }
    let options = FixupOptions {
        locations: OutputLocations {
            dev: out_dir.join("dev"),
            include: out_dir.join("include"),
            lib: out_dir.join("lib"),
        },
        allow_usr,
    };
    let fixups = fix_up(&tree, &options)?;
    let outputs = split(&tree, &out_dir, true, true)?;
    Ok(Split { fixups, outputs })
}
