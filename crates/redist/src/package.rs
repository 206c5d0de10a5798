//! One package from archive (or folder) to outputs: unpack, fix up, split.

use std::path::Path;

use cudapkgs_tree::dir::Dir;
use cudapkgs_tree::scratch::{MadeFolders, Scratch};

use crate::error::Error;
use crate::split::{FixupOptions, Output, OutputLocations, fix_up, split};
use crate::unpack::{Limits, unpack};

/// What `split_package` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub fixups: Vec<String>,
    pub outputs: Vec<Output>,
}

/// The prefix of the work folders a split of a package leaves beside `out_dir` while it
/// runs (removed by the next split there if its process was killed).
const WORK_PREFIX: &str = ".cudapkgs-package-";

/// Unpacks `source` (an archive, or a folder that is copied: it is read, never changed,
/// and no link in it is followed) and splits it into `out_dir/<output>/`, which appears
/// whole or not at all. pkg-config files name the outputs under `out_dir`.
pub fn split_package(
    source: &Path,
    out_dir: &Path,
    allow_usr: bool,
    limits: Limits,
) -> Result<Split, Error> {
    let parent = cudapkgs_tree::folder_of(out_dir);
    let made = MadeFolders::create_all(parent).map_err(|e| Error::io(parent, e))?;
    let out_dir = std::path::absolute(out_dir).map_err(|e| Error::io(out_dir, e))?;
    cudapkgs_tree::scratch::remove_abandoned(parent, WORK_PREFIX)
        .map_err(|e| Error::io(parent, e))?;
    let work = Scratch::create(parent, WORK_PREFIX).map_err(|e| Error::io(parent, e))?;
    let tree = work.path().join("tree");
    if std::fs::metadata(source).is_ok_and(|m| m.is_dir()) {
        cudapkgs_tree::copy_tree(source, &tree).map_err(|e| Error::io(source, e))?;
        let copied = Dir::open(&tree).map_err(|e| Error::io(source, e))?;
        if let Some(escape) = copied.escaping_link().map_err(|e| Error::io(source, e))? {
            return Err(Error::BadPackage {
                path: source.to_owned(),
                problem: crate::unpack::escaping(&escape),
            });
        }
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
    // Errors name the archive: the work folder they would name is gone.
    let named = |e: Error| e.naming_archive(&tree, source);
    let fixups = fix_up(&tree, &options).map_err(named)?;
    let outputs = split(&tree, &out_dir, true).map_err(named)?;
    made.keep();
    Ok(Split { fixups, outputs })
}
