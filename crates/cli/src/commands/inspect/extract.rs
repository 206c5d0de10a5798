//! `--extract DIR`: every entry written out decompressed, named like cuobjdump names
//! extracted files (`<stem>.<n>.<arch>.cubin`).

use std::borrow::Cow;
use std::path::Path;

use cudapkgs_fatbin::decompress::content;
use cudapkgs_fatbin::{EntryKind, all_entries};

/// Writes the entries of one file; returns how many were written. With several input
/// files, each file's entries are prefixed with its display path made file-safe.
pub(crate) fn write_entries(
    dir: &Path,
    display: &str,
    prefixed: bool,
    data: &[u8],
) -> Result<usize, String> {
    let stem = if prefixed {
        display.replace(['/', ':', '\\'], "_")
    } else {
        let name = super::file_name(display);
        name.split('.').next().unwrap_or(name).to_owned()
    };
    let entries = all_entries(data).map_err(|error| error.to_string())?;
    for (index, (_, entry)) in entries.iter().enumerate() {
        let extension = match entry.kind {
            EntryKind::Sass => "cubin",
            EntryKind::Ptx | EntryKind::RelocatablePtx => "ptx",
            EntryKind::LtoIr => "ltoir",
            _ => "bin",
        };
        let path = dir.join(format!(
            "{stem}.{}.{}.{extension}",
            index + 1,
            entry.arch_name()
        ));
        // Entries this reader cannot decode (LTO-IR's opaque form) are written as stored.
        let bytes = content(entry, data)
            .or_else(|_| entry.stored(data).map(Cow::Borrowed))
            .map_err(|error| error.to_string())?;
        std::fs::write(&path, &bytes)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    Ok(entries.len())
}
