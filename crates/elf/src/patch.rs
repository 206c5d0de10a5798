//! Rewriting runpaths, needed libraries and sonames as a plan of positional writes.
//!
//! When new strings fit (an identical string already exists, or a runpath or soname
//! being replaced owns a slot large enough) and the dynamic table has room, the plan
//! changes bytes in place. Otherwise it adds one region at the end of the file, mapped
//! by one new `PT_LOAD`: a copy of the program header table (which must grow by that
//! entry), the dynamic table if it must grow, and the dynamic string table with the new
//! strings. The region's virtual address is its file offset plus the first segment's
//! address-minus-offset, so that kernels computing `AT_PHDR` from `e_phoff` find the
//! moved table; it lies above every segment and keeps every alignment. A file that
//! already ends in such a region gets it rebuilt in place, so repeated rewrites neither
//! add segments nor grow the file beyond the strings they add.

use cudapkgs_tree::Rewrite;

use crate::error::Error;
use crate::layout::{
    DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_STRSZ, DT_STRTAB, DYN_LEN, DYN_SIZE, E_PHNUM,
    E_PHOFF, Layout, PF_R, PF_W, PHDR_SIZE, PT_DYNAMIC, PT_INTERP, PT_LOAD, PT_PHDR, Phdr, SH_ADDR,
    SH_OFFSET, SH_SIZE, SHDR_SIZE, SHT_DYNAMIC, SHT_NOBITS, SHT_STRTAB,
};

/// What to do with the search path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RunpathChange {
    #[default]
    Keep,
    Set(String),
    Remove,
}

/// The changes to make to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub runpath: RunpathChange,
    /// Store the search path as `DT_RPATH` (searched before `LD_LIBRARY_PATH`, and for the
    /// libraries' own dependencies too). Without it a new search path keeps the kind the
    /// file has (`written_as_rpath`), `DT_RUNPATH` for a file with neither.
    pub force_rpath: bool,
    /// `DT_NEEDED` entries to rename: `(old, new)`.
    pub replace_needed: Vec<(String, String)>,
    pub soname: Option<String>,
}

/// A rewrite of the file, and what kind of change it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The positional writes against a copy of the original file.
    pub rewrite: Rewrite,
    /// False when the file already is as asked: nothing to write.
    pub changed: bool,
    /// True when a region was added or rebuilt at the end of the file.
    pub grew: bool,
}

/// Spare `DT_NULL` slots given to a moved dynamic table, for later additions.
const SPARE_DYNAMIC_SLOTS: usize = 4;

/// A dynamic entry whose string may still need a place.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Raw(u64),
    Text(Vec<u8>),
}

fn align_up(value: u64, align: u64) -> u64 {
    if align <= 1 {
        value
    } else {
        value.div_ceil(align) * align
    }
}

fn page_size(machine: u16) -> u64 {
    // aarch64 kernels may run with 64 KiB pages.
    if machine == 183 { 0x1_0000 } else { 0x1000 }
}

/// Plans the rewrite of the ELF file `data`.
pub fn plan(data: &[u8], changes: &Changes) -> Result<Plan, Error> {
    // Only files the loader's view accepts are rewritten: whatever it refuses (a
    // truncated interpreter, say) would stay broken after the rewrite.
    if data.starts_with(b"\x7fELF") && data.get(4..6) != Some(&[2, 1]) {
        return Err(Error::Unsupported(
            "only 64-bit little-endian ELF files (x86_64, aarch64) can be rewritten".into(),
        ));
    }
    let view = crate::read_dynamic(data)?;
    let layout = Layout::read(data)?;
    if !agrees(&layout, &view) {
        return Err(Error::malformed(
            layout.phoff,
            "the program headers describe the dynamic table in two ways; refusing to guess",
        ));
    }
    let string = |value: u64| layout.string(value).map(<[u8]>::to_vec);

    // The new dynamic table, strings still unplaced.
    let mut entries: Vec<(i64, Value)> = layout
        .dynamic
        .iter()
        .map(|&(tag, value)| (tag, Value::Raw(value)))
        .collect();
    // Each replaced string, with the slot it owned (for reuse in place).
    let mut freed: Vec<(u64, usize)> = Vec::new();
    change_runpath(&layout, &mut entries, &mut freed, changes);
    let text_of = |tag: i64, value: &Value| text_of(&layout, tag, value);

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
    if entries == before {
        return Ok(Plan {
            rewrite: Rewrite::in_place(layout.file_len),
            changed: false,
            grew: false,
        });
    }

    place(&layout, entries, &freed, changes)
}

/// Whether the rewriter's reading of the dynamic table says what the loader's view says:
/// files where the two differ (overlapping headers, several dynamic segments) are
/// ambiguous.
fn agrees(layout: &Layout, view: &crate::DynamicInfo) -> bool {
    let strings = |tag: i64| -> Vec<Option<String>> {
        layout
            .dynamic
            .iter()
            .filter(|(t, _)| *t == tag)
            .map(|(_, value)| {
                layout
                    .string(*value)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
            })
            .collect()
    };
    let first = |tag: i64| strings(tag).into_iter().next().flatten();
    let needed: Vec<Option<String>> = view.needed.iter().cloned().map(Some).collect();
    strings(DT_NEEDED) == needed
        && first(DT_RUNPATH) == view.runpath
        && first(DT_RPATH) == view.rpath
        && first(DT_SONAME) == view.soname
}

/// The string an entry names, placed or not.
fn text_of(layout: &Layout, tag: i64, value: &Value) -> Option<Vec<u8>> {
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

/// Strings placed: in the table as it is, in a freed slot, or appended.
struct Placement {
    dynstr: Vec<u8>,
    /// In-place string writes: (offset in dynstr, bytes).
    in_place: Vec<(u64, Vec<u8>)>,
    appended: bool,
}

fn find_string(table: &[u8], text: &[u8]) -> Option<u64> {
    let mut needle = text.to_vec();
    needle.push(0);
    table
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .map(|p| p as u64)
}

fn place(
    layout: &Layout,
    entries: Vec<(i64, Value)>,
    freed: &[(u64, usize)],
    changes: &Changes,
) -> Result<Plan, Error> {
    let mut placement = Placement {
        dynstr: layout.dynstr.clone(),
        in_place: Vec::new(),
        appended: false,
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
        .iter()
        .copied()
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
    let mut verneed_writes = Vec::new();
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
                verneed_writes.push((at, value.to_le_bytes().to_vec()));
            }
        }
    }

    layout_plan(layout, resolved, placement, verneed_writes)
}

fn encode_dynamic(entries: &[(i64, u64)], slots: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(slots * DYN_LEN);
    for &(tag, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.resize(slots.max(entries.len() + 1) * DYN_LEN, 0);
    out
}

fn set_value(entries: &mut [(i64, u64)], tag: i64, value: u64) {
    if let Some(entry) = entries.iter_mut().find(|(t, _)| *t == tag) {
        entry.1 = value;
    }
}

/// Everything fits where it is: the changed strings and the dynamic table are written
/// over their old bytes.
fn in_place_plan(
    layout: &Layout,
    entries: &[(i64, u64)],
    placement: Placement,
    mut writes: Vec<(u64, Vec<u8>)>,
) -> Plan {
    for (offset, bytes) in placement.in_place {
        writes.push((layout.dynstr_offset + offset, bytes));
    }
    let dynamic_segment = layout.phdrs[layout.dynamic_phdr];
    writes.push((
        dynamic_segment.p_offset,
        encode_dynamic(entries, layout.dynamic_capacity),
    ));
    Plan {
        rewrite: Rewrite {
            writes,
            ..Rewrite::in_place(layout.file_len)
        },
        changed: true,
        grew: false,
    }
}

fn layout_plan(
    layout: &Layout,
    mut entries: Vec<(i64, u64)>,
    placement: Placement,
    mut writes: Vec<(u64, Vec<u8>)>,
) -> Result<Plan, Error> {
    let dynamic_segment = layout.phdrs[layout.dynamic_phdr];
    let loads: Vec<&Phdr> = layout
        .phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    let reusable = reusable_region(layout, &loads);
    let in_region = |offset: u64| reusable.is_some_and(|tail| offset >= tail.p_offset);
    let dynamic_in_region = in_region(dynamic_segment.p_offset);
    let dynstr_in_region = in_region(layout.dynstr_offset);

    let dynamic_full = entries.len() + 1 > layout.dynamic_capacity;
    if !dynamic_full && !placement.appended {
        return Ok(in_place_plan(layout, &entries, placement, writes));
    }

    // Rebuilding a region re-emits whatever lived in it.
    let needs_dynamic_move = dynamic_full || dynamic_in_region;
    let needs_dynstr_move = placement.appended || dynstr_in_region;

    // The region: program headers, then the dynamic table, then the string table.
    let page = page_size(layout.machine).max(loads.iter().map(|p| p.p_align).max().unwrap_or(1));
    let mut phdrs: Vec<Phdr> = layout.phdrs.clone();
    if let Some(tail) = reusable {
        phdrs.retain(|p| *p != tail);
    }
    let (region_offset, region_address) = region_place(&loads, reusable, layout, page)?;

    let phnum = phdrs.len() + 1;
    let pht_len = phnum as u64 * PHDR_SIZE;
    let dynamic_at = align_up(pht_len, 16);
    let dynamic_slots = if needs_dynamic_move {
        entries.len() + 1 + SPARE_DYNAMIC_SLOTS
    } else {
        0
    };
    let dynstr_at = dynamic_at + dynamic_slots as u64 * DYN_SIZE;
    let dynstr_len = if needs_dynstr_move {
        placement.dynstr.len() as u64
    } else {
        0
    };
    let region_len = dynstr_at + dynstr_len;
    if region_address
        .checked_add(region_len)
        .is_none_or(|end| end > MAX_ADDRESS)
    {
        return Err(Error::Unsupported(
            "no address is left above the segments for a new one".into(),
        ));
    }

    if needs_dynstr_move {
        set_value(&mut entries, DT_STRTAB, region_address + dynstr_at);
        set_value(&mut entries, DT_STRSZ, dynstr_len);
    } else {
        for (offset, bytes) in &placement.in_place {
            writes.push((layout.dynstr_offset + offset, bytes.clone()));
        }
    }

    let segment = Phdr {
        p_type: PT_LOAD,
        p_flags: PF_R | PF_W,
        p_offset: region_offset,
        p_vaddr: region_address,
        p_paddr: region_address,
        p_filesz: region_len,
        p_memsz: region_len,
        p_align: page,
    };
    let moved_dynamic = needs_dynamic_move.then_some((dynamic_at, dynamic_slots as u64 * DYN_SIZE));
    add_region_segment(&mut phdrs, segment, pht_len, moved_dynamic);

    let mut region = Vec::with_capacity(usize::try_from(region_len).unwrap_or(0));
    for phdr in &phdrs {
        region.extend_from_slice(&phdr.encode());
    }
    region.resize(usize::try_from(dynamic_at).expect("small"), 0);
    let dynamic_bytes = encode_dynamic(&entries, dynamic_slots.max(layout.dynamic_capacity));
    if needs_dynamic_move {
        region.extend_from_slice(&dynamic_bytes[..dynamic_slots * DYN_LEN]);
    } else {
        writes.push((dynamic_segment.p_offset, dynamic_bytes));
    }
    if needs_dynstr_move {
        region.extend_from_slice(&placement.dynstr);
    }

    writes.extend(program_table_writes(region_offset, phnum)?);

    // Section headers follow what moved, so that readelf and debuggers agree.
    let moved_dynstr = needs_dynstr_move.then_some((dynstr_at, dynstr_len));
    writes.extend(section_header_writes(
        layout,
        (region_offset, region_address),
        moved_dynamic,
        moved_dynstr,
    ));
    writes.push((region_offset, region));

    Ok(Plan {
        rewrite: Rewrite {
            truncate: reusable.map(|_| region_offset),
            writes,
            new_len: region_offset + region_len,
            holes: Vec::new(),
        },
        changed: true,
        grew: true,
    })
}

/// The ELF header's writes for a program header table of `count` entries at `offset`.
fn program_table_writes(offset: u64, count: usize) -> Result<[(u64, Vec<u8>); 2], Error> {
    let count =
        u16::try_from(count).map_err(|_| Error::Unsupported("too many program headers".into()))?;
    Ok([
        (E_PHOFF, offset.to_le_bytes().to_vec()),
        (E_PHNUM, count.to_le_bytes().to_vec()),
    ])
}

/// Section header updates for tables that moved into the region (`(offset in
/// region, size)` each).
fn section_header_writes(
    layout: &Layout,
    (region_offset, region_address): (u64, u64),
    moved_dynamic: Option<(u64, u64)>,
    moved_dynstr: Option<(u64, u64)>,
) -> Vec<(u64, Vec<u8>)> {
    let mut writes = Vec::new();
    for shdr in &layout.shdrs {
        let moved = match shdr.sh_type {
            SHT_DYNAMIC => moved_dynamic,
            SHT_STRTAB if shdr.sh_offset == layout.dynstr_offset && shdr.sh_addr != 0 => {
                moved_dynstr
            }
            _ => None,
        };
        if let Some((at, size)) = moved {
            let field = |offset: u64, value: u64| (shdr.at + offset, value.to_le_bytes().to_vec());
            writes.push(field(SH_ADDR, region_address + at));
            writes.push(field(SH_OFFSET, region_offset + at));
            writes.push(field(SH_SIZE, size));
        }
    }
    writes
}

/// Inserts the region's load segment after the last load segment (keeping them sorted
/// by address) and points `PT_PHDR` (and `PT_DYNAMIC`, when the table moved to
/// `(offset in region, size)`) into the region.
fn add_region_segment(
    phdrs: &mut Vec<Phdr>,
    segment: Phdr,
    pht_len: u64,
    moved_dynamic: Option<(u64, u64)>,
) {
    let last_load = phdrs
        .iter()
        .rposition(|p| p.p_type == PT_LOAD)
        .map_or(phdrs.len(), |i| i + 1);
    phdrs.insert(last_load, segment);
    let point = |phdr: &mut Phdr, at: u64, size: u64| {
        phdr.p_offset = segment.p_offset + at;
        phdr.p_vaddr = segment.p_vaddr + at;
        phdr.p_paddr = segment.p_vaddr + at;
        phdr.p_filesz = size;
        phdr.p_memsz = size;
    };
    for phdr in phdrs.iter_mut() {
        match (phdr.p_type, moved_dynamic) {
            (PT_PHDR, _) => point(phdr, 0, pht_len),
            (PT_DYNAMIC, Some((at, size))) => point(phdr, at, size),
            _ => {}
        }
    }
}

/// A region this rewriter added before: the highest segment, at the very end of the
/// file, holding the program header table, with nothing else of the file in it but the
/// dynamic and string tables that moved there.
fn reusable_region(layout: &Layout, loads: &[&Phdr]) -> Option<Phdr> {
    let tail = **loads.iter().max_by_key(|p| p.p_vaddr)?;
    let start = tail.p_offset;
    let sections_clear = layout
        .shdrs
        .iter()
        .filter(|s| s.sh_type != SHT_NOBITS)
        .all(|s| {
            // Checked: a null section's fields are not validated when read.
            s.sh_offset
                .checked_add(s.sh_size)
                .is_some_and(|end| end <= start)
                || (s.sh_offset >= start && matches!(s.sh_type, SHT_DYNAMIC | SHT_STRTAB))
        });
    let reusable = start + tail.p_filesz == layout.file_len
        && layout.phoff >= start
        && layout.phoff < start + tail.p_filesz
        && layout.shoff + layout.shdrs.len() as u64 * SHDR_SIZE <= start
        && sections_clear;
    reusable.then_some(tail)
}

/// Where a new region goes: the reused one's place, else past the end of the file and
/// above every segment's memory, with offset and address congruent modulo `align`.
///
/// A program (a file with an interpreter) keeps "address = offset + the first load
/// segment's address minus offset": kernels older than Linux 5.18 compute `AT_PHDR` that
/// way, and the moved program header table must be found. A library is mapped by the
/// dynamic loader, which reads `PT_PHDR`'s address; its region starts at the first page
/// past the end of the file (placing the offset on the segments' 2 MiB alignment, as the
/// program rule needs for NVIDIA's libraries, would pad each by up to 2 MiB).
fn region_place(
    loads: &[&Phdr],
    reusable: Option<Phdr>,
    layout: &Layout,
    align: u64,
) -> Result<(u64, u64), Error> {
    let file_len = layout.file_len;
    let program = layout.phdrs.iter().any(|p| p.p_type == PT_INTERP);
    if let Some(tail) = reusable {
        return Ok((tail.p_offset, tail.p_vaddr));
    }
    let first = loads
        .iter()
        .min_by_key(|p| p.p_vaddr)
        .ok_or_else(|| Error::Unsupported("no load segment".into()))?;
    let delta = first.p_vaddr.checked_sub(first.p_offset).ok_or_else(|| {
        Error::Unsupported("the first load segment's address is below its file offset".into())
    })?;
    let memory_end = loads
        .iter()
        .map(|p| p.p_vaddr.saturating_add(p.p_memsz))
        .max()
        .unwrap_or(0);
    let no_room =
        || Error::Unsupported("no address is left above the segments for a new one".into());
    // Segments at the top of the address space leave no room above them (and rounding
    // up past it must not wrap around to the bottom).
    if memory_end > MAX_ADDRESS {
        return Err(no_room());
    }
    let (offset, address) = if program {
        let offset =
            align_up(file_len, align).max(align_up(memory_end.saturating_sub(delta), align));
        (offset, offset.checked_add(delta).ok_or_else(no_room)?)
    } else {
        let offset = align_up(file_len, page_size(layout.machine));
        let address = align_up(memory_end, align)
            .checked_add(offset % align.max(1))
            .ok_or_else(no_room)?;
        (offset, address)
    };
    // Gaps past the end of the file are holes, but one this large means segments
    // placed where no new one can follow them.
    if offset.saturating_sub(file_len) > MAX_GAP {
        return Err(Error::Unsupported(format!(
            "a new segment would start {} bytes past the end of the file, above the segments' memory",
            offset - file_len
        )));
    }
    Ok((offset, address))
}

/// The largest gap between the end of a file and a new region (a large `.bss` needs
/// one; 4 GiB is far beyond any real library).
const MAX_GAP: u64 = 1 << 32;

/// Highest address a user-space segment of a 64-bit process may reach (x86-64 and
/// aarch64 with 48-bit addresses).
const MAX_ADDRESS: u64 = 1 << 47;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_dynamic;

    fn library() -> Vec<u8> {
        let candidates = [
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/usr/lib/x86_64-linux-gnu/libm.so.6",
        ];
        let path = candidates
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("libm");
        std::fs::read(path).expect("read")
    }

    fn set(path: &str) -> Changes {
        Changes {
            runpath: RunpathChange::Set(path.into()),
            ..Changes::default()
        }
    }

    #[test]
    fn set_read_back_and_idempotent() {
        let original = library();
        let plan1 = plan(&original, &set("$ORIGIN/../lib:/opt/cuda/lib64")).expect("plan");
        assert!(plan1.changed && plan1.grew);
        let once = plan1.rewrite.apply_in_memory(&original);
        let info = read_dynamic(&once).expect("readable");
        assert_eq!(
            info.runpath.as_deref(),
            Some("$ORIGIN/../lib:/opt/cuda/lib64")
        );
        assert_eq!(info.needed, read_dynamic(&original).expect("orig").needed);
        // Same change again: nothing to do.
        assert!(
            !plan(&once, &set("$ORIGIN/../lib:/opt/cuda/lib64"))
                .expect("plan")
                .changed
        );
        // Another long value: the region is rebuilt, not stacked.
        let twice = plan(&once, &set("/a/much/longer/runpath/than/before/by/far"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&once);
        let thrice = plan(
            &twice,
            &set("/another/long/runpath/value/for/the/third/time"),
        )
        .expect("plan")
        .rewrite
        .apply_in_memory(&twice);
        let segments = |data: &[u8]| u16::from_le_bytes([data[56], data[57]]);
        assert_eq!(segments(&once), segments(&thrice));
        assert!(
            thrice.len() < once.len() + 256,
            "{} vs {}",
            thrice.len(),
            once.len()
        );
        assert_eq!(
            read_dynamic(&thrice).expect("readable").runpath.as_deref(),
            Some("/another/long/runpath/value/for/the/third/time")
        );
    }

    #[test]
    fn remove_and_shorter_values_stay_in_place() {
        let original = library();
        let with = plan(&original, &set("/long/path/one:/long/path/two"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&original);
        let shorter = plan(&with, &set("/short")).expect("plan");
        assert!(!shorter.grew && shorter.rewrite.truncate.is_none());
        let shortened = shorter.rewrite.apply_in_memory(&with);
        assert_eq!(shortened.len(), with.len());
        assert_eq!(
            read_dynamic(&shortened)
                .expect("readable")
                .runpath
                .as_deref(),
            Some("/short")
        );
        let removed = plan(
            &shortened,
            &Changes {
                runpath: RunpathChange::Remove,
                ..Changes::default()
            },
        )
        .expect("plan")
        .rewrite
        .apply_in_memory(&shortened);
        let info = read_dynamic(&removed).expect("readable");
        assert_eq!((info.runpath, info.rpath), (None, None));
    }

    #[test]
    fn rpath_soname_and_needed() {
        let original = library();
        let changes = Changes {
            runpath: RunpathChange::Set("$ORIGIN".into()),
            force_rpath: true,
            replace_needed: vec![("libc.so.6".into(), "libc-renamed.so.6".into())],
            soname: Some("libm-custom.so.6".into()),
        };
        let out = plan(&original, &changes)
            .expect("plan")
            .rewrite
            .apply_in_memory(&original);
        let info = read_dynamic(&out).expect("readable");
        assert_eq!(
            (info.rpath.as_deref(), info.runpath.as_deref()),
            (Some("$ORIGIN"), None)
        );
        assert_eq!(info.soname.as_deref(), Some("libm-custom.so.6"));
        assert!(
            info.needed.contains(&"libc-renamed.so.6".to_owned())
                && !info.needed.contains(&"libc.so.6".to_owned())
        );
    }

    #[test]
    fn edits_keep_rpath_as_rpath() {
        let force = |path: &str| Changes {
            force_rpath: true,
            ..set(path)
        };
        let original = library();
        let with_rpath = plan(&original, &force("/a"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&original);
        let search_paths = |data: &[u8]| {
            let info = read_dynamic(data).expect("readable");
            (info.rpath, info.runpath)
        };
        assert_eq!(search_paths(&with_rpath), (Some("/a".into()), None));
        // Shorter (in place), then longer (a new region): DT_RPATH both times.
        let shorter = plan(&with_rpath, &set("/"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&with_rpath);
        assert_eq!(search_paths(&shorter), (Some("/".into()), None));
        let longer = "/a/longer/search/path/than/any/string/of/the/file";
        let longer_plan = plan(&shorter, &set(longer)).expect("plan");
        assert!(longer_plan.grew);
        let grown = longer_plan.rewrite.apply_in_memory(&shorter);
        assert_eq!(search_paths(&grown), (Some(longer.into()), None));
        // The same value again changes nothing (it used to become DT_RUNPATH).
        assert!(!plan(&grown, &set(longer)).expect("plan").changed);
        // A file with neither gets DT_RUNPATH, as one with DT_RUNPATH keeps it.
        let fresh = plan(&original, &set("/b"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&original);
        assert_eq!(search_paths(&fresh), (None, Some("/b".into())));
        let again = plan(&fresh, &set("/c"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&fresh);
        assert_eq!(search_paths(&again), (None, Some("/c".into())));
    }

    /// Found by review: a section whose size reaches past the end of the address space
    /// overflowed the planner's arithmetic (a panic, or a wrapped end in a release
    /// build). The input is the `elf_patch` fuzz target's regression file.
    #[test]
    fn sections_past_the_end_of_the_file_are_refused() {
        let input = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/elf-patch-section-size-overflows");
        let data = std::fs::read(input).expect("the regression file");
        let long = "$ORIGIN:/run/opengl-driver/lib:/a/longer/folder/to/force/a/new/region";
        let error = plan(&data, &set(long)).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "malformed ELF file at offset 0x3128: section 1 (at 0x238, 18446744073709551615 \
             bytes) extends past the end of the file (13928 bytes)"
        );
        // One byte past the end is refused too; a section ending at the end is not.
        let mut data = data;
        let size_at = 0x3128 + 32;
        let past = (data.len() - 0x238 + 1) as u64;
        data[size_at..size_at + 8].copy_from_slice(&past.to_le_bytes());
        assert!(matches!(
            plan(&data, &set(long)),
            Err(Error::Malformed { .. })
        ));
        data[size_at..size_at + 8].copy_from_slice(&(past - 1).to_le_bytes());
        assert!(plan(&data, &set(long)).is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_rewrite() {
        assert_eq!(plan(b"text", &set("/x")), Err(Error::NotElf));
        let mut elf32 = library();
        elf32[4] = 1;
        assert!(matches!(
            plan(&elf32, &set("/x")),
            Err(Error::Unsupported(_))
        ));
        let original = library();
        for cut in [16, 64, 300, original.len() / 2] {
            assert!(plan(&original[..cut], &set("/x")).is_err(), "{cut}");
        }
    }
}
