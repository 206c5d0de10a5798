//! Writing new contents of files below a folder: each through a temporary file beside
//! it, flushed, with the original's permission bits, renamed over it. Paths are walked
//! through folder handles, so no link is followed out of the folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use cudapkgs_tree::dir::{Dir, Kind};

use crate::Error;

/// Replaces the file `relative` below `root` with `contents`, atomically.
pub fn replace_file(root: &Dir, relative: &Path, contents: &[u8]) -> Result<(), Error> {
    let shown = root.path().join(relative);
    let io = |source| Error::Io {
        path: shown.clone(),
        source,
    };
    let status = root
        .status(relative)
        .map_err(io)?
        .ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
    if status.kind != Kind::File {
        return Err(Error::NotRegular {
            path: shown.clone(),
            kind: status.kind.described(),
        });
    }
    let name = relative.file_name().unwrap_or_default().to_string_lossy();
    let temporary = relative.with_file_name(format!(".{name}.cudapkgs-{}", std::process::id()));
    let written = (|| {
        let mut file = root.create_file(&temporary, status.mode)?;
        file.write_all(contents)?;
        file.sync_all()?;
        root.rename(&temporary, root, relative)
    })();
    if let Err(error) = written {
        let _ = root.remove_file(&temporary);
        return Err(io(error));
    }
    // Make the rename durable: flush the folder that holds the file.
    if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(folder) = root.open_dir(parent) {
            let _ = std::fs::File::open(folder.path()).and_then(|f| f.sync_all());
        }
    } else {
        let _ = std::fs::File::open(root.path()).and_then(|f| f.sync_all());
    }
    Ok(())
}

/// A folder the user named, opened for writing below it.
pub fn open_root(path: &Path) -> Result<Dir, Error> {
    Dir::open(path).map_err(|source| Error::Io {
        path: PathBuf::from(path),
        source,
    })
}
