//! The dynamic table with the asked changes made: search path, needed libraries, soname.

use super::{Changes, RunpathChange};
use crate::layout::{DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, DYN_LEN, Layout};

/// A dynamic entry whose string may still need a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Raw(u64),
    Text(Vec<u8>),
}

/// A dynamic table with its changes made.
pub(super) struct Edited {
    /// The new entries, strings still unplaced.
    pub(super) entries: Vec<(i64, Value)>,
    /// Each replaced string's slot `(offset in dynstr, length)`, for reuse in place.
    pub(super) freed: Vec<(u64, usize)>,
}

/// The dynamic table with `changes` made, strings still unplaced; `None` when the file
/// already is as asked.
pub(super) fn edited(layout: &Layout, changes: &Changes) -> Option<Edited> {
    let string = |value: u64| layout.string(value).map(<[u8]>::to_vec);

    let mut entries: Vec<(i64, Value)> = layout
        .dynamic
        .iter()
        .map(|&(tag, value)| (tag, Value::Raw(value)))
        .collect();
    // Each replaced string, with the slot it owned (for reuse in place).
    let mut freed: Vec<(u64, usize)> = Vec::new();
    change_runpath(layout, &mut entries, &mut freed, changes);
    let text_of = |tag: i64, value: &Value| text_of(layout, tag, value);

    for (old, new) in &changes.replace_needed {
        for (tag, value) in &mut entries {
            if *tag == DT_NEEDED
                && text_of(*tag, value).as_deref() == Some(old.as_bytes())
                && old != new
            {
                *value = Value::Text(new.as_bytes().to_vec());
            }
        }
    }

    if let Some(soname) = &changes.soname {
        match entries.iter_mut().find(|(t, _)| *t == DT_SONAME) {
            Some((_, value)) => {
                if text_of(DT_SONAME, value).as_deref() != Some(soname.as_bytes()) {
                    if let Value::Raw(offset) = value {
                        if let Some(old) = string(*offset) {
                            freed.push((*offset, old.len()));
                        }
                    }
                    *value = Value::Text(soname.as_bytes().to_vec());
                }
            }
            None => entries.push((DT_SONAME, Value::Text(soname.as_bytes().to_vec()))),
        }
    }

    let before: Vec<(i64, Value)> = layout
        .dynamic
        .iter()
        .map(|&(tag, value)| (tag, Value::Raw(value)))
        .collect();
    (entries != before).then_some(Edited { entries, freed })
}

/// The string an entry names, placed or not.
pub(super) fn text_of(layout: &Layout, tag: i64, value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Raw(raw) if matches!(tag, DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH) => {
            layout.string(*raw).map(<[u8]>::to_vec)
        }
        Value::Text(text) => Some(text.clone()),
        Value::Raw(_) => None,
    }
}

/// Whether a new search path for a file with `info` is written as `DT_RPATH`: when asked
/// (`force_rpath`), or when the file has `DT_RPATH` and no `DT_RUNPATH`. Turning one kind
/// into the other changes what the loader does with it (`DT_RPATH` precedes
/// `LD_LIBRARY_PATH` and serves the dependencies' own needs), so edits keep the kind.
pub fn written_as_rpath(info: &crate::DynamicInfo, force_rpath: bool) -> bool {
    keeps_rpath(info.rpath.is_some(), info.runpath.is_some(), force_rpath)
}

fn keeps_rpath(has_rpath: bool, has_runpath: bool, force_rpath: bool) -> bool {
    force_rpath || (has_rpath && !has_runpath)
}

/// Applies the search-path part of `changes` to the entries.
fn change_runpath(
    layout: &Layout,
    entries: &mut Vec<(i64, Value)>,
    freed: &mut Vec<(u64, usize)>,
    changes: &Changes,
) {
    let is_path = |tag: i64| tag == DT_RUNPATH || tag == DT_RPATH;
    match &changes.runpath {
        RunpathChange::Keep => {
            if changes.force_rpath {
                let path = entries
                    .iter()
                    .find(|(t, _)| *t == DT_RUNPATH)
                    .map(|(_, v)| v.clone());
                if let Some(path) = path {
                    entries.retain(|(t, _)| !is_path(*t));
                    entries.push((DT_RPATH, path));
                }
            }
        }
        RunpathChange::Remove => entries.retain(|(t, _)| !is_path(*t)),
        RunpathChange::Set(path) => {
            let has = |tag: i64| entries.iter().any(|(t, _)| *t == tag);
            let tag = if keeps_rpath(has(DT_RPATH), has(DT_RUNPATH), changes.force_rpath) {
                DT_RPATH
            } else {
                DT_RUNPATH
            };
            let current: Vec<(i64, Option<Vec<u8>>)> = entries
                .iter()
                .filter(|(t, _)| is_path(*t))
                .map(|(t, v)| (*t, text_of(layout, *t, v)))
                .collect();
            let unchanged = current.len() == 1
                && current[0].0 == tag
                && current[0].1.as_deref() == Some(path.as_bytes());
            if unchanged {
                return;
            }
            let position = entries.iter().position(|(t, _)| is_path(*t));
            for (t, v) in entries.iter() {
                if let (DT_RUNPATH | DT_RPATH, Value::Raw(offset)) = (*t, v) {
                    if let Some(old) = layout.string(*offset) {
                        freed.push((*offset, old.len()));
                    }
                }
            }
            entries.retain(|(t, _)| !is_path(*t));
            let entry = (tag, Value::Text(path.as_bytes().to_vec()));
            match position {
                Some(at) => entries.insert(at.min(entries.len()), entry),
                None => entries.push(entry),
            }
        }
    }
}

pub(super) fn encode_dynamic(entries: &[(i64, u64)], slots: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(slots * DYN_LEN);
    for &(tag, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.resize(slots.max(entries.len() + 1) * DYN_LEN, 0);
    out
}

pub(super) fn set_value(entries: &mut [(i64, u64)], tag: i64, value: u64) {
    if let Some(entry) = entries.iter_mut().find(|(t, _)| *t == tag) {
        entry.1 = value;
    }
}
