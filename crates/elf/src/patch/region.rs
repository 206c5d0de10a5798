//! Laying the writes out: over the old bytes when everything fits, else in one region
//! at the end of the file mapped by a new `PT_LOAD`, with the ELF and section headers
//! following what moved.

use cudapkgs_tree::Rewrite;

use super::Plan;
use super::entries::{encode_dynamic, set_value};
use super::strings::Placement;
use crate::error::Error;
use crate::layout::{
    DT_STRSZ, DT_STRTAB, DYN_LEN, DYN_SIZE, E_PHNUM, E_PHOFF, EM_AARCH64, Layout, PF_R, PF_W,
    PHDR_SIZE, PT_DYNAMIC, PT_INTERP, PT_LOAD, PT_PHDR, Phdr, SH_ADDR, SH_OFFSET, SH_SIZE,
    SHDR_SIZE, SHT_DYNAMIC, SHT_NOBITS, SHT_STRTAB,
};

/// Spare `DT_NULL` slots given to a moved dynamic table, for later additions.
const SPARE_DYNAMIC_SLOTS: usize = 4;

/// The largest gap between the end of a file and a new region (a large `.bss` needs
/// one; 4 GiB is far beyond any real library).
const MAX_GAP: u64 = 1 << 32;

/// Highest address a user-space segment of a 64-bit process may reach (x86-64 and
/// aarch64 with 48-bit addresses).
const MAX_ADDRESS: u64 = 1 << 47;

fn align_up(value: u64, align: u64) -> u64 {
    if align <= 1 {
        value
    } else {
        value.div_ceil(align) * align
    }
}

fn page_size(machine: u16) -> u64 {
    // aarch64 kernels may run with 64 KiB pages.
    if machine == EM_AARCH64 {
        0x1_0000
    } else {
        0x1000
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

/// The plan that writes `entries` (every string placed) and the strings of `placement`.
pub(super) fn plan(
    layout: &Layout,
    mut entries: Vec<(i64, u64)>,
    mut placement: Placement,
) -> Result<Plan, Error> {
    let mut writes = std::mem::take(&mut placement.verneed_writes);
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
