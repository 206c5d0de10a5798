//! Placing trees in the store: read-only once valid, and removable even when read-only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::Error;

/// Applies `mode_of` to every file and folder under `root` (links have no mode of their own).
fn set_modes(root: &Path, mode_of: &dyn Fn(u32, bool) -> u32) -> Result<(), Error> {
    let metadata = root.symlink_metadata().map_err(|e| Error::io(root, e))?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    let is_dir = metadata.is_dir();
    let mode = mode_of(metadata.permissions().mode(), is_dir);
    // A folder is opened up before its children are visited and closed after.
    if is_dir {
        std::fs::set_permissions(root, PermissionsExt::from_mode(0o755))
            .map_err(|e| Error::io(root, e))?;
        for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
            let entry = entry.map_err(|e| Error::io(root, e))?;
            set_modes(&entry.path(), mode_of)?;
        }
    }
    std::fs::set_permissions(root, PermissionsExt::from_mode(mode)).map_err(|e| Error::io(root, e))
}

/// Makes a tree read-only as Nix leaves store paths: 0555 for folders and executables,
/// 0444 for other files.
pub(crate) fn make_read_only(root: &Path) -> Result<(), Error> {
    set_modes(root, &|mode, is_dir| {
        if is_dir || mode & 0o100 != 0 {
            0o555
        } else {
            0o444
        }
    })
}

/// Removes a tree, read-only folders included.
pub(crate) fn remove_tree(root: &Path) -> Result<(), Error> {
    match root.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(root, e)),
        Ok(metadata) if !metadata.is_dir() => {
            return std::fs::remove_file(root).map_err(|e| Error::io(root, e));
        }
        Ok(_) => {}
    }
    set_modes(root, &|mode, _| mode | 0o700)?;
    std::fs::remove_dir_all(root).map_err(|e| Error::io(root, e))
}
