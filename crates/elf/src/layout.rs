//! The parts of a 64-bit little-endian ELF file that runpath rewriting touches, with
//! their file offsets: program and section headers, the dynamic table, the dynamic
//! string table and what refers into it.

use std::mem::{offset_of, size_of};

use object::LittleEndian as LE;
use object::elf::{
    self, Dyn64, FileHeader64, ProgramHeader64, SectionHeader64, Verdaux, Verdef, Vernaux, Verneed,
};
use object::{Pod, U32, U64};

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

/// The offset of a field in `object`'s raw 64-bit little-endian record:
/// `field!(FileHeader64, e_phoff)`.
macro_rules! field {
    ($record:ident, $name:ident) => {
        offset_of!($record<LE>, $name) as u64
    };
}

/// Offsets of the ELF64 header's fields that a moved program header table changes.
pub(crate) const E_PHOFF: u64 = field!(FileHeader64, e_phoff);
pub(crate) const E_PHNUM: u64 = field!(FileHeader64, e_phnum);
/// Offsets in an ELF64 section header of the fields that follow a moved table.
pub(crate) const SH_ADDR: u64 = field!(SectionHeader64, sh_addr);
pub(crate) const SH_OFFSET: u64 = field!(SectionHeader64, sh_offset);
pub(crate) const SH_SIZE: u64 = field!(SectionHeader64, sh_size);

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
    fn from_raw(raw: &ProgramHeader64<LE>) -> Self {
        Phdr {
            p_type: raw.p_type.get(LE).0,
            p_flags: raw.p_flags.get(LE).0,
            p_offset: raw.p_offset.get(LE),
            p_vaddr: raw.p_vaddr.get(LE),
            p_paddr: raw.p_paddr.get(LE),
            p_filesz: raw.p_filesz.get(LE),
            p_memsz: raw.p_memsz.get(LE),
            p_align: raw.p_align.get(LE),
        }
    }

    pub(crate) fn encode(&self) -> [u8; PHDR_LEN] {
        let raw = ProgramHeader64::<LE> {
            p_type: U32::new(LE, elf::ProgramType(self.p_type)),
            p_flags: U32::new(LE, elf::ProgramFlags(self.p_flags)),
            p_offset: U64::new(LE, self.p_offset),
            p_vaddr: U64::new(LE, self.p_vaddr),
            p_paddr: U64::new(LE, self.p_paddr),
            p_filesz: U64::new(LE, self.p_filesz),
            p_memsz: U64::new(LE, self.p_memsz),
            p_align: U64::new(LE, self.p_align),
        };
        let mut out = [0u8; PHDR_LEN];
        out.copy_from_slice(object::bytes_of(&raw));
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

    /// `object`'s raw record at `at` (its fields are byte arrays: any offset will do).
    fn record<T: Pod>(&self, at: u64, what: &str) -> Result<&T, Error> {
        let bytes = self.bytes(at, size_of::<T>() as u64, what)?;
        object::from_bytes(bytes)
            .map(|(record, _)| record)
            .map_err(|()| Error::malformed(at, format!("{what} cannot be read")))
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
        let header: &FileHeader64<LE> = r.record(0, "ELF header")?;
        let machine = header.e_machine.get(LE).0;
        let phoff = header.e_phoff.get(LE);
        let shoff = header.e_shoff.get(LE);
        let phentsize = u64::from(header.e_phentsize.get(LE));
        let phnum = u64::from(header.e_phnum.get(LE));
        let shentsize = u64::from(header.e_shentsize.get(LE));
        let shnum = u64::from(header.e_shnum.get(LE));
        if phnum > 0 && phentsize != PHDR_SIZE {
            return Err(Error::malformed(
                field!(FileHeader64, e_phentsize),
                format!("program header size {phentsize}, expected {PHDR_SIZE}"),
            ));
        }
        if shnum > 0 && shentsize != SHDR_SIZE {
            return Err(Error::malformed(
                field!(FileHeader64, e_shentsize),
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
        let entry: &Dyn64<LE> = r.record(at, "dynamic entry")?;
        let tag = entry.d_tag.get(LE).0;
        if tag == DT_NULL {
            break;
        }
        dynamic.push((tag, entry.d_val.get(LE)));
    }
    Ok((dynamic, capacity))
}

fn read_phdrs(r: &Reader<'_>, phoff: u64, phnum: u64) -> Result<Vec<Phdr>, Error> {
    let mut phdrs = Vec::new();
    for index in 0..phnum {
        let at = phoff + index * PHDR_SIZE;
        phdrs.push(Phdr::from_raw(r.record(at, "program header")?));
    }
    Ok(phdrs)
}

/// The section headers. A section with contents in the file must lie inside it: the
/// planner compares section ends with the places it writes to.
fn read_shdrs(r: &Reader<'_>, shoff: u64, shnum: u64) -> Result<Vec<Shdr>, Error> {
    let mut shdrs = Vec::new();
    for index in 0..shnum {
        let at = shoff + index * SHDR_SIZE;
        let raw: &SectionHeader64<LE> = r.record(at, "section header")?;
        let shdr = Shdr {
            at,
            sh_type: raw.sh_type.get(LE).0,
            sh_addr: raw.sh_addr.get(LE),
            sh_offset: raw.sh_offset.get(LE),
            sh_size: raw.sh_size.get(LE),
            sh_entsize: raw.sh_entsize.get(LE),
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
            let need: &Verneed<LE> = r.record(at, "version dependency")?;
            verneed_files.push((at + field!(Verneed, vn_file), need.vn_file.get(LE)));
            let mut aux = at + u64::from(need.vn_aux.get(LE));
            for _ in 0..need.vn_cnt.get(LE) {
                let entry: &Vernaux<LE> = r.record(aux, "version dependency")?;
                version_names.push(entry.vna_name.get(LE));
                let next = entry.vna_next.get(LE);
                if next == 0 {
                    break;
                }
                aux += u64::from(next);
            }
            let next = need.vn_next.get(LE);
            if next == 0 {
                break;
            }
            at += u64::from(next);
        }
    }
    if let (Some(address), Some(count)) = (value(DT_VERDEF), value(DT_VERDEFNUM)) {
        let mut at = offset_of(address)?;
        for _ in 0..count.min(4096) {
            let definition: &Verdef<LE> = r.record(at, "version definition")?;
            let mut aux = at + u64::from(definition.vd_aux.get(LE));
            for _ in 0..definition.vd_cnt.get(LE) {
                let entry: &Verdaux<LE> = r.record(aux, "version definition")?;
                version_names.push(entry.vda_name.get(LE));
                let next = entry.vda_next.get(LE);
                if next == 0 {
                    break;
                }
                aux += u64::from(next);
            }
            let next = definition.vd_next.get(LE);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_sizes_are_those_of_the_elf64_specification() {
        assert_eq!(
            (E_PHOFF, E_PHNUM, SH_ADDR, SH_OFFSET, SH_SIZE),
            (32, 56, 16, 24, 32)
        );
        assert_eq!((PHDR_LEN, SHDR_SIZE, DYN_LEN), (56, 64, 16));
        assert_eq!(field!(Verneed, vn_file), 4);
    }

    #[test]
    fn program_headers_read_back_as_encoded() {
        let phdr = Phdr {
            p_type: PT_LOAD,
            p_flags: PF_R | PF_W,
            p_offset: 0x1000,
            p_vaddr: 0x20_1000,
            p_paddr: 0x20_1000,
            p_filesz: 0x234,
            p_memsz: 0x567,
            p_align: 0x20_0000,
        };
        let bytes = phdr.encode();
        assert_eq!(&bytes[..4], &PT_LOAD.to_le_bytes());
        assert_eq!(&bytes[48..], &0x20_0000u64.to_le_bytes());
        let read = Reader { data: &bytes };
        assert_eq!(
            Phdr::from_raw(read.record(0, "program header").expect("read")),
            phdr
        );
    }
}
