//! The parts of a 64-bit little-endian ELF file that runpath rewriting touches, with
//! their file offsets: program and section headers, the dynamic table, the dynamic
//! string table and what refers into it.

use std::mem::{offset_of, size_of};

use object::LittleEndian as LE;
use object::elf::{self, Dyn64, FileHeader64, ProgramHeader64, SectionHeader64};

use crate::error::Error;

// `object`'s constants, as the raw values this module reads and writes.
pub(crate) const PT_LOAD: u32 = elf::PT_LOAD.0;
pub(crate) const PT_DYNAMIC: u32 = elf::PT_DYNAMIC.0;
pub(crate) const PT_INTERP: u32 = elf::PT_INTERP.0;
pub(crate) const PT_PHDR: u32 = elf::PT_PHDR.0;
pub(crate) const PF_W: u32 = elf::PF_W.0;
pub(crate) const PF_R: u32 = elf::PF_R.0;
pub(crate) const SHT_NULL: u32 = elf::SHT_NULL.0;
pub(crate) const SHT_STRTAB: u32 = elf::SHT_STRTAB.0;
pub(crate) const SHT_DYNAMIC: u32 = elf::SHT_DYNAMIC.0;
pub(crate) const SHT_DYNSYM: u32 = elf::SHT_DYNSYM.0;
pub(crate) const SHT_NOBITS: u32 = elf::SHT_NOBITS.0;
pub(crate) const EM_AARCH64: u16 = elf::EM_AARCH64.0;

pub(crate) const DT_NULL: i64 = elf::DT_NULL.0;
pub(crate) const DT_NEEDED: i64 = elf::DT_NEEDED.0;
pub(crate) const DT_STRTAB: i64 = elf::DT_STRTAB.0;
pub(crate) const DT_STRSZ: i64 = elf::DT_STRSZ.0;
pub(crate) const DT_SONAME: i64 = elf::DT_SONAME.0;
pub(crate) const DT_RPATH: i64 = elf::DT_RPATH.0;
pub(crate) const DT_RUNPATH: i64 = elf::DT_RUNPATH.0;
pub(crate) const DT_VERNEED: i64 = elf::DT_VERNEED.0;
pub(crate) const DT_VERNEEDNUM: i64 = elf::DT_VERNEEDNUM.0;
pub(crate) const DT_VERDEF: i64 = elf::DT_VERDEF.0;
pub(crate) const DT_VERDEFNUM: i64 = elf::DT_VERDEFNUM.0;

/// Offsets of the ELF64 header's fields that a moved program header table changes, as
/// `object`'s raw header lays them out.
pub(crate) const E_PHOFF: u64 = offset_of!(FileHeader64<LE>, e_phoff) as u64;
pub(crate) const E_PHNUM: u64 = offset_of!(FileHeader64<LE>, e_phnum) as u64;
/// Offsets in an ELF64 section header of the fields that follow a moved table.
pub(crate) const SH_ADDR: u64 = offset_of!(SectionHeader64<LE>, sh_addr) as u64;
pub(crate) const SH_OFFSET: u64 = offset_of!(SectionHeader64<LE>, sh_offset) as u64;
pub(crate) const SH_SIZE: u64 = offset_of!(SectionHeader64<LE>, sh_size) as u64;

pub(crate) const PHDR_LEN: usize = size_of::<ProgramHeader64<LE>>();
pub(crate) const PHDR_SIZE: u64 = PHDR_LEN as u64;
pub(crate) const SHDR_SIZE: u64 = size_of::<SectionHeader64<LE>>() as u64;
pub(crate) const DYN_LEN: usize = size_of::<Dyn64<LE>>();
pub(crate) const DYN_SIZE: u64 = DYN_LEN as u64;

/// A program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::struct_field_names,
    reason = "the ELF specification's field names"
)]
pub(crate) struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_paddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

impl Phdr {
    pub(crate) fn encode(&self) -> [u8; PHDR_LEN] {
        let mut out = [0u8; PHDR_LEN];
        out[0..4].copy_from_slice(&self.p_type.to_le_bytes());
        out[4..8].copy_from_slice(&self.p_flags.to_le_bytes());
        out[8..16].copy_from_slice(&self.p_offset.to_le_bytes());
        out[16..24].copy_from_slice(&self.p_vaddr.to_le_bytes());
        out[24..32].copy_from_slice(&self.p_paddr.to_le_bytes());
        out[32..40].copy_from_slice(&self.p_filesz.to_le_bytes());
        out[40..48].copy_from_slice(&self.p_memsz.to_le_bytes());
        out[48..56].copy_from_slice(&self.p_align.to_le_bytes());
        out
    }
}

/// A section header and where it sits. A section with contents (not null, not
/// `SHT_NOBITS`) lies inside the file: checked when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shdr {
    /// File offset of this header.
    pub at: u64,
    pub sh_type: u32,
    pub sh_addr: u64,
    pub sh_offset: u64,
    pub sh_size: u64,
    pub sh_entsize: u64,
}

/// Everything the rewriter reads.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub file_len: u64,
    pub machine: u16,
    pub phoff: u64,
    pub phdrs: Vec<Phdr>,
    pub shoff: u64,
    pub shdrs: Vec<Shdr>,
    /// Index into `phdrs` of `PT_DYNAMIC`.
    pub dynamic_phdr: usize,
    /// Dynamic entries up to (not including) `DT_NULL`.
    pub dynamic: Vec<(i64, u64)>,
    /// How many entries fit in the dynamic segment, `DT_NULL` included.
    pub dynamic_capacity: usize,
    /// File offset and bytes of the dynamic string table.
    pub dynstr_offset: u64,
    pub dynstr: Vec<u8>,
    /// File offsets of `vn_file` fields, with the string offset they hold.
    pub verneed_files: Vec<(u64, u32)>,
    /// String offsets referenced from outside the dynamic table (symbol and version
    /// names); `None` when they cannot all be known (no section headers).
    pub other_references: Option<Vec<u32>>,
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn bytes(&self, at: u64, len: u64, what: &str) -> Result<&[u8], Error> {
        usize::try_from(at)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(start, len)| self.data.get(start..start.checked_add(len)?))
            .ok_or_else(|| Error::Malformed {
                offset: at,
                problem: format!("{what} ({len} bytes) runs past the end of the file"),
            })
    }

    fn u16(&self, at: u64, what: &str) -> Result<u16, Error> {
        let b = self.bytes(at, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&self, at: u64, what: &str) -> Result<u32, Error> {
        let b = self.bytes(at, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&self, at: u64, what: &str) -> Result<u64, Error> {
        let b = self.bytes(at, 8, what)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok(u64::from_le_bytes(raw))
    }
}

impl Layout {
    pub(crate) fn read(data: &[u8]) -> Result<Layout, Error> {
        if !data.starts_with(b"\x7fELF") {
            return Err(Error::NotElf);
        }
        let r = Reader { data };
        let ident = r.bytes(0, 16, "ELF identification")?;
        if ident[4] != 2 || ident[5] != 1 {
            return Err(Error::Unsupported(
                "only 64-bit little-endian ELF files (x86_64, aarch64) can be rewritten".into(),
            ));
        }
        let machine = r.u16(18, "ELF header")?;
        let phoff = r.u64(E_PHOFF, "ELF header")?;
        let shoff = r.u64(40, "ELF header")?;
        let phentsize = u64::from(r.u16(54, "ELF header")?);
        let phnum = u64::from(r.u16(E_PHNUM, "ELF header")?);
        let shentsize = u64::from(r.u16(58, "ELF header")?);
        let shnum = u64::from(r.u16(60, "ELF header")?);
        if phnum > 0 && phentsize != PHDR_SIZE {
            return Err(Error::malformed(
                54,
                format!("program header size {phentsize}, expected {PHDR_SIZE}"),
            ));
        }
        if shnum > 0 && shentsize != SHDR_SIZE {
            return Err(Error::malformed(
                58,
                format!("section header size {shentsize}, expected {SHDR_SIZE}"),
            ));
        }

        let phdrs = read_phdrs(&r, phoff, phnum)?;
        check_loads(&phdrs, phoff, data.len() as u64)?;
        let shdrs = read_shdrs(&r, shoff, shnum)?;

        let dynamic_phdr = phdrs
            .iter()
            .position(|p| p.p_type == PT_DYNAMIC)
            .ok_or(Error::NoDynamicSection)?;
        let dynamic_segment = phdrs[dynamic_phdr];
        let (dynamic, capacity) = read_dynamic_table(
            &r,
            &dynamic_segment,
            phoff + dynamic_phdr as u64 * PHDR_SIZE,
        )?;
        let value = |tag: i64| dynamic.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        let (strtab, strsz) = value(DT_STRTAB).zip(value(DT_STRSZ)).ok_or_else(|| {
            Error::malformed(
                dynamic_segment.p_offset,
                "the dynamic table has no DT_STRTAB/DT_STRSZ",
            )
        })?;
        let offset_of = |address: u64| {
            file_offset(&phdrs, address).ok_or_else(|| {
                Error::malformed(
                    dynamic_segment.p_offset,
                    format!("address {address:#x} is in no load segment"),
                )
            })
        };
        let dynstr_offset = offset_of(strtab)?;
        let dynstr = r
            .bytes(dynstr_offset, strsz, "dynamic string table")?
            .to_vec();

        let (verneed_files, version_names) = read_versions(&r, &value, &offset_of)?;
        // Symbol names are known only when the whole symbol table is in the file;
        // otherwise no string slot counts as free.
        let other_references = shdrs
            .iter()
            .find(|s| s.sh_type == SHT_DYNSYM)
            .and_then(|dynsym| {
                let table = r
                    .bytes(dynsym.sh_offset, dynsym.sh_size, "dynamic symbols")
                    .ok()?;
                let mut names = version_names.clone();
                names.extend(table.chunks_exact(24).map(|symbol| {
                    u32::from_le_bytes([symbol[0], symbol[1], symbol[2], symbol[3]])
                }));
                Some(names)
            });

        Ok(Layout {
            file_len: data.len() as u64,
            machine,
            phoff,
            phdrs,
            shoff,
            shdrs,
            dynamic_phdr,
            dynamic,
            dynamic_capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            dynstr_offset,
            dynstr,
            verneed_files,
            other_references,
        })
    }

    /// The string at `offset` of the dynamic string table.
    pub(crate) fn string(&self, offset: u64) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let rest = self.dynstr.get(start..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(&rest[..end])
    }
}

/// Load segments the loader would refuse are refused here too: a rewrite would keep
/// them broken, and the region placement relies on their sizes.
fn check_loads(phdrs: &[Phdr], phoff: u64, file_len: u64) -> Result<(), Error> {
    for (index, load) in phdrs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.p_type == PT_LOAD)
    {
        let at = phoff + index as u64 * PHDR_SIZE;
        if load.p_filesz > load.p_memsz {
            return Err(Error::malformed(
                at,
                "a load segment's file size exceeds its memory size",
            ));
        }
        if load
            .p_offset
            .checked_add(load.p_filesz)
            .is_none_or(|end| end > file_len)
        {
            return Err(Error::malformed(
                at,
                "a load segment runs past the end of the file",
            ));
        }
        if load.p_vaddr.checked_add(load.p_memsz).is_none() {
            return Err(Error::malformed(at, "a load segment's addresses overflow"));
        }
    }
    Ok(())
}

/// The dynamic entries before `DT_NULL`, and how many entries the segment holds.
fn read_dynamic_table(
    r: &Reader<'_>,
    segment: &Phdr,
    header_at: u64,
) -> Result<(Vec<(i64, u64)>, u64), Error> {
    if segment
        .p_offset
        .checked_add(segment.p_filesz)
        .is_none_or(|end| end > r.data.len() as u64)
    {
        return Err(Error::malformed(
            header_at,
            "the dynamic segment runs past the end of the file",
        ));
    }
    let capacity = segment.p_filesz / DYN_SIZE;
    let mut dynamic = Vec::new();
    for index in 0..capacity {
        let at = segment.p_offset + index * DYN_SIZE;
        let tag = i64::from_le_bytes(r.u64(at, "dynamic entry")?.to_le_bytes());
        if tag == DT_NULL {
            break;
        }
        dynamic.push((tag, r.u64(at + 8, "dynamic entry")?));
    }
    Ok((dynamic, capacity))
}

fn read_phdrs(r: &Reader<'_>, phoff: u64, phnum: u64) -> Result<Vec<Phdr>, Error> {
    let mut phdrs = Vec::new();
    for index in 0..phnum {
        let at = phoff + index * PHDR_SIZE;
        r.bytes(at, PHDR_SIZE, "program header")?;
        phdrs.push(Phdr {
            p_type: r.u32(at, "program header")?,
            p_flags: r.u32(at + 4, "program header")?,
            p_offset: r.u64(at + 8, "program header")?,
            p_vaddr: r.u64(at + 16, "program header")?,
            p_paddr: r.u64(at + 24, "program header")?,
            p_filesz: r.u64(at + 32, "program header")?,
            p_memsz: r.u64(at + 40, "program header")?,
            p_align: r.u64(at + 48, "program header")?,
        });
    }
    Ok(phdrs)
}

/// The section headers. A section with contents in the file must lie inside it: the
/// planner compares section ends with the places it writes to.
fn read_shdrs(r: &Reader<'_>, shoff: u64, shnum: u64) -> Result<Vec<Shdr>, Error> {
    let mut shdrs = Vec::new();
    for index in 0..shnum {
        let at = shoff + index * SHDR_SIZE;
        r.bytes(at, SHDR_SIZE, "section header")?;
        let shdr = Shdr {
            at,
            sh_type: r.u32(at + 4, "section header")?,
            sh_addr: r.u64(at + SH_ADDR, "section header")?,
            sh_offset: r.u64(at + SH_OFFSET, "section header")?,
            sh_size: r.u64(at + SH_SIZE, "section header")?,
            sh_entsize: r.u64(at + 56, "section header")?,
        };
        let file_len = r.data.len() as u64;
        let holds_bytes = !matches!(shdr.sh_type, SHT_NULL | SHT_NOBITS);
        if holds_bytes
            && shdr
                .sh_offset
                .checked_add(shdr.sh_size)
                .is_none_or(|end| end > file_len)
        {
            return Err(Error::malformed(
                at,
                format!(
                    "section {index} (at {:#x}, {} bytes) extends past the end of the file ({file_len} bytes)",
                    shdr.sh_offset, shdr.sh_size
                ),
            ));
        }
        shdrs.push(shdr);
    }
    Ok(shdrs)
}

/// The string references of the GNU version sections: `vn_file` fields (with where they
/// sit, since renaming a needed library renames them too) and every other name.
#[allow(clippy::type_complexity, reason = "two lists, named at the call")]
fn read_versions(
    r: &Reader<'_>,
    value: &dyn Fn(i64) -> Option<u64>,
    offset_of: &dyn Fn(u64) -> Result<u64, Error>,
) -> Result<(Vec<(u64, u32)>, Vec<u32>), Error> {
    let mut verneed_files = Vec::new();
    let mut version_names = Vec::new();
    if let (Some(address), Some(count)) = (value(DT_VERNEED), value(DT_VERNEEDNUM)) {
        let mut at = offset_of(address)?;
        for _ in 0..count.min(4096) {
            let file = r.u32(at + 4, "version dependency")?;
            verneed_files.push((at + 4, file));
            let aux_count = r.u16(at + 2, "version dependency")?;
            let mut aux = at + u64::from(r.u32(at + 8, "version dependency")?);
            for _ in 0..aux_count {
                version_names.push(r.u32(aux + 8, "version dependency")?);
                let next = r.u32(aux + 12, "version dependency")?;
                if next == 0 {
                    break;
                }
                aux += u64::from(next);
            }
            let next = r.u32(at + 12, "version dependency")?;
            if next == 0 {
                break;
            }
            at += u64::from(next);
        }
    }
    if let (Some(address), Some(count)) = (value(DT_VERDEF), value(DT_VERDEFNUM)) {
        let mut at = offset_of(address)?;
        for _ in 0..count.min(4096) {
            let aux_count = r.u16(at + 6, "version definition")?;
            let mut aux = at + u64::from(r.u32(at + 12, "version definition")?);
            for _ in 0..aux_count {
                version_names.push(r.u32(aux, "version definition")?);
                let next = r.u32(aux + 4, "version definition")?;
                if next == 0 {
                    break;
                }
                aux += u64::from(next);
            }
            let next = r.u32(at + 16, "version definition")?;
            if next == 0 {
                break;
            }
            at += u64::from(next);
        }
    }
    Ok((verneed_files, version_names))
}

/// The file offset an address is loaded from.
pub(crate) fn file_offset(phdrs: &[Phdr], address: u64) -> Option<u64> {
    phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .find(|p| address >= p.p_vaddr && address - p.p_vaddr < p.p_filesz)
        .map(|p| p.p_offset + (address - p.p_vaddr))
}
