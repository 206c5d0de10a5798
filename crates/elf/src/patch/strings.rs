//! Where each new string goes: an identical string of the table, a slot a replaced
//! value freed, or the end of a copy of the table.

use super::Changes;
use super::entries::{Edited, Value};
use crate::error::Error;
use crate::layout::{DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, Layout};

/// Strings placed: in the table as it is, in a freed slot, or appended.
pub(super) struct Placement {
    /// The string table with every string in it.
    pub(super) dynstr: Vec<u8>,
    /// In-place string writes: (offset in dynstr, bytes).
    pub(super) in_place: Vec<(u64, Vec<u8>)>,
    /// Whether strings went past the table's end, which the table must move for.
    pub(super) appended: bool,
    /// Version dependencies renamed with their `DT_NEEDED` entries: (file offset, bytes).
    pub(super) verneed_writes: Vec<(u64, Vec<u8>)>,
}

fn find_string(table: &[u8], text: &[u8]) -> Option<u64> {
    let mut needle = text.to_vec();
    needle.push(0);
    table
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .map(|p| p as u64)
}

/// Gives every new string of `edited` an offset in the string table: the entries, each
/// string now an offset, and how the table changes.
pub(super) fn place(
    layout: &Layout,
    edited: Edited,
    changes: &Changes,
) -> Result<(Vec<(i64, u64)>, Placement), Error> {
    let Edited { entries, freed } = edited;
    let mut placement = Placement {
        dynstr: layout.dynstr.clone(),
        in_place: Vec::new(),
        appended: false,
        verneed_writes: Vec::new(),
    };
    // Offsets still referenced by entries we keep as they are.
    let kept: Vec<u64> = entries
        .iter()
        .filter_map(|(tag, value)| match value {
            Value::Raw(raw) if matches!(*tag, DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH) => {
                Some(*raw)
            }
            _ => None,
        })
        .collect();
    let mut slots: Vec<(u64, usize)> = freed
        .into_iter()
        .filter(|&(offset, len)| {
            let inside = |reference: u64| reference >= offset && reference <= offset + len as u64;
            let others_known = layout
                .other_references
                .as_ref()
                .is_some_and(|refs| !refs.iter().any(|&r| inside(u64::from(r))));
            let verneed_clear = !layout
                .verneed_files
                .iter()
                .any(|&(_, r)| inside(u64::from(r)));
            others_known && verneed_clear && !kept.iter().any(|&r| inside(r))
        })
        .collect();

    let mut resolved: Vec<(i64, u64)> = Vec::with_capacity(entries.len());
    let mut needed_renames: Vec<(Vec<u8>, u64)> = Vec::new();
    for (tag, value) in entries {
        let offset = match value {
            Value::Raw(raw) => raw,
            Value::Text(text) => {
                let offset = if let Some(found) = find_string(&placement.dynstr, &text) {
                    found
                } else if let Some(index) = slots.iter().position(|&(_, len)| len >= text.len()) {
                    let (offset, len) = slots.remove(index);
                    let mut bytes = text.clone();
                    bytes.resize(len + 1, 0);
                    let start = usize::try_from(offset).expect("within the table");
                    placement.dynstr[start..start + bytes.len()].copy_from_slice(&bytes);
                    placement.in_place.push((offset, bytes));
                    offset
                } else {
                    let offset = placement.dynstr.len() as u64;
                    placement.dynstr.extend_from_slice(&text);
                    placement.dynstr.push(0);
                    placement.appended = true;
                    offset
                };
                if tag == DT_NEEDED {
                    needed_renames.push((text, offset));
                }
                offset
            }
        };
        resolved.push((tag, offset));
    }

    // Version dependencies name the library file: renamed with its DT_NEEDED entry.
    for (old, new) in &changes.replace_needed {
        let Some(&(_, new_offset)) = needed_renames
            .iter()
            .find(|(text, _)| text == new.as_bytes())
        else {
            continue;
        };
        for &(at, file) in &layout.verneed_files {
            if layout.string(u64::from(file)) == Some(old.as_bytes()) {
                let value = u32::try_from(new_offset)
                    .map_err(|_| Error::Unsupported("dynamic string table beyond 4 GiB".into()))?;
                placement
                    .verneed_writes
                    .push((at, value.to_le_bytes().to_vec()));
            }
        }
    }

    Ok((resolved, placement))
}
