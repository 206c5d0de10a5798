//! Changing a file without ever leaving it half-written: a copy beside it gets the
//! changes, is flushed to disk with the original's permissions, and replaces the
//! original by rename. A failure at any step leaves the original untouched.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Positional changes to a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// Cut the copy to this length before writing.
    pub truncate: Option<u64>,
    /// `(offset, bytes)` to write, in order.
    pub writes: Vec<(u64, Vec<u8>)>,
    /// Length of the result.
    pub new_len: u64,
    /// Ranges of zeros to give back to the file system where it can make holes.
    pub holes: Vec<(u64, u64)>,
}

/// Applies `rewrite` to the file at `path` (a symbolic link's target). Holes are
/// punched only where the file system supports it; elsewhere the zeros stay written.
pub fn rewrite_file(path: &Path, rewrite: &Rewrite) -> io::Result<()> {
    let path = std::fs::canonicalize(path)?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let permissions = std::fs::metadata(&path)?.permissions();
    let mut temp = tempfile::Builder::new()
        .prefix(".cudapkgs-")
        .tempfile_in(dir)?;
    {
        let mut original = File::open(&path)?;
        // Copies in the kernel (copy_file_range) where the file system allows.
        io::copy(&mut original, temp.as_file_mut())?;
    }
    let file = temp.as_file();
    if let Some(len) = rewrite.truncate {
        file.set_len(len)?;
    }
    for (offset, bytes) in &rewrite.writes {
        file.write_all_at(bytes, *offset)?;
    }
    file.set_len(rewrite.new_len)?;
    for &(offset, len) in &rewrite.holes {
        punch_hole(file, offset, len);
    }
    file.set_permissions(permissions)?;
    file.sync_all()?;
    temp.persist(&path).map_err(|error| error.error)?;
    // Make the rename itself durable.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Frees the whole pages inside `[offset, offset + len)`; the range reads as zeros
/// either way. Best effort: file systems without hole support keep the written zeros.
fn punch_hole(file: &File, offset: u64, len: u64) {
    const PAGE: u64 = 4096;
    let start = offset.div_ceil(PAGE) * PAGE;
    let end = (offset + len) / PAGE * PAGE;
    if end > start {
        let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
        let _ = rustix::fs::fallocate(file, flags, start, end - start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_keep_mode_and_punch_holes() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("data.bin");
        std::fs::write(&path, vec![7u8; 1 << 20]).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o751)).expect("chmod");
        let rewrite = Rewrite {
            truncate: None,
            writes: vec![(0, b"head".to_vec()), (4096, vec![0u8; 512 * 1024])],
            new_len: 1 << 20,
            holes: vec![(4096, 512 * 1024)],
        };
        rewrite_file(&path, &rewrite).expect("rewrite");
        let data = std::fs::read(&path).expect("read");
        assert_eq!(&data[..4], b"head");
        assert!(data[4096..4096 + 512 * 1024].iter().all(|&b| b == 0));
        assert_eq!(data[4096 + 512 * 1024], 7);
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o751);
        assert_eq!(meta.len(), 1 << 20);
        // Where holes are supported, the file now takes less room than its length.
        assert!(meta.blocks() * 512 <= meta.len());
        assert!(
            std::fs::read_dir(dir.path()).expect("dir").count() == 1,
            "no temporary left behind"
        );
    }
}
