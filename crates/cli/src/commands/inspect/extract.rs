//! `--out DIR`: every entry written out decompressed, named like cuobjdump names
//! extracted files (`<stem>.<n>.<arch>.cubin`).

use std::borrow::Cow;
use std::io::Write as _;
use std::path::Path;

use cudapkgs_fatbin::decompress::content;
use cudapkgs_fatbin::{EntryKind, all_entries};
use cudapkgs_tree::dir::Dir;

/// Longest stem kept, in bytes: with the suffix, names stay under the 255 bytes a file
/// system allows.
const MAX_STEM: usize = 200;

/// Writes the entries of one file into `dir`; returns how many were written. With
/// several input files, each file's entries are prefixed with its whole display path
/// made file-safe.
pub(crate) fn write_entries(
    dir: &Dir,
    display: &str,
    prefixed: bool,
    data: &[u8],
) -> Result<usize, String> {
    let stem = stem(display, prefixed);
    let entries = all_entries(data).map_err(|error| error.to_string())?;
    for (index, (_, entry)) in entries.iter().enumerate() {
        let extension = match entry.kind {
            EntryKind::Sass => "cubin",
            EntryKind::Ptx | EntryKind::RelocatablePtx => "ptx",
            EntryKind::LtoIr => "ltoir",
            _ => "bin",
        };
        let name = format!("{stem}.{}.{}.{extension}", index + 1, entry.arch_name());
        // Entries this reader cannot decode (LTO-IR's opaque form) are written as stored.
        let bytes = content(entry, data)
            .or_else(|_| entry.stored(data).map(Cow::Borrowed))
            .map_err(|error| error.to_string())?;
        write_new(dir, Path::new(&name), &bytes).map_err(|error| {
            format!("cannot write {}: {error}", dir.path().join(&name).display())
        })?;
    }
    Ok(entries.len())
}

/// Replaces the file `name` directly in `dir`: an old file of that name is removed (a
/// link there is removed, never written through) and a new one created.
fn write_new(dir: &Dir, name: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match dir.remove_file(name) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    dir.create_file(name, 0o644)?.write_all(bytes)
}

/// A file name made of the display path's plain components only (no `.`, `..`, empty
/// ones or separators, which could lead out of the folder): all of them joined by `_`,
/// or the last one without its extensions.
fn stem(display: &str, whole: bool) -> String {
    let parts: Vec<String> = display
        .split(['/', ':'])
        .filter(|part| !matches!(*part, "" | "." | ".."))
        .map(|part| {
            part.chars()
                .map(|c| if c.is_control() || c == '\\' { '_' } else { c })
                .collect()
        })
        .collect();
    let mut stem = if whole {
        parts.join("_")
    } else {
        parts.last().map_or_else(String::new, |last| {
            let base = last.split('.').next().unwrap_or_default();
            if base.is_empty() { last } else { base }.to_owned()
        })
    };
    if stem.is_empty() {
        stem.push_str("entries");
    }
    if stem.len() > MAX_STEM {
        let mut end = MAX_STEM;
        while !stem.is_char_boundary(end) {
            end -= 1;
        }
        stem.truncate(end);
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_hold_no_way_out_of_the_folder() {
        for (display, whole, expected) in [
            ("lib/libk.so", false, "libk"),
            ("/abs/w.whl:pkg/..", false, "pkg"),
            ("../../w.whl:..", false, "w"),
            ("w.whl:../../..", true, "w.whl"),
            ("/abs/w.whl:pkg/../x.so", true, "abs_w.whl_pkg_x.so"),
            ("..", false, "entries"),
            (".hidden", false, ".hidden"),
            ("a\\b\n.so", false, "a_b_"),
        ] {
            let stem = stem(display, whole);
            assert_eq!(stem, expected, "{display}");
            assert!(!stem.contains('/'), "{stem}");
        }
        assert_eq!(stem(&"é".repeat(150), false).len(), MAX_STEM);
    }
}
