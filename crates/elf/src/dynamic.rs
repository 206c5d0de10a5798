//! The dynamic-linking view of an ELF file: what it is, what it needs, where it looks.

use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, FileKind, elf};
use serde::Serialize;

use crate::error::Error;

/// 32 or 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub enum Class {
    #[serde(rename = "ELF32")]
    Elf32,
    #[serde(rename = "ELF64")]
    Elf64,
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Class::Elf32 => "ELF32",
            Class::Elf64 => "ELF64",
        })
    }
}

/// What kind of ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ElfKind {
    Executable,
    /// `ET_DYN` with `DF_1_PIE` (or an interpreter): a position-independent executable.
    PieExecutable,
    SharedObject,
    Relocatable,
    Core,
    Other(u16),
}

impl ElfKind {
    pub fn describe(self) -> String {
        match self {
            ElfKind::Executable => "executable".into(),
            ElfKind::PieExecutable => "PIE executable".into(),
            ElfKind::SharedObject => "shared object".into(),
            ElfKind::Relocatable => "relocatable object".into(),
            ElfKind::Core => "core file".into(),
            ElfKind::Other(raw) => format!("ELF type {raw:#x}"),
        }
    }
}

/// Everything the dynamic loader reads from a file to link it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DynamicInfo {
    pub class: Class,
    pub little_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `x86_64`, `aarch64`, …
    pub machine_name: &'static str,
    pub kind: ElfKind,
    /// `PT_INTERP`.
    pub interpreter: Option<String>,
    pub has_dynamic: bool,
    pub soname: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH` (searched before `LD_LIBRARY_PATH`, and only without `DT_RUNPATH`).
    pub rpath: Option<String>,
    /// `DT_RUNPATH` (searched after `LD_LIBRARY_PATH`).
    pub runpath: Option<String>,
}

/// The name people use for a machine number.
pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        3 => "i386",
        8 => "mips",
        20 => "ppc",
        21 => "ppc64",
        40 => "arm",
        62 => "x86_64",
        183 => "aarch64",
        190 => "cuda",
        243 => "riscv",
        _ => "unknown",
    }
}

/// Reads the dynamic-linking view of an ELF file.
pub fn read_dynamic(data: &[u8]) -> Result<DynamicInfo, Error> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => read_with::<elf::FileHeader64<Endianness>>(data, Class::Elf64),
        Ok(FileKind::Elf32) => read_with::<elf::FileHeader32<Endianness>>(data, Class::Elf32),
        _ if data.starts_with(b"\x7fELF") => Err(Error::Malformed {
            offset: 0,
            problem: "ELF header with an unknown class or encoding".into(),
        }),
        _ => Err(Error::NotElf),
    }
}

fn object_error(error: object::Error) -> Error {
    Error::Malformed {
        offset: 0,
        problem: error.to_string(),
    }
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn read_with<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    class: Class,
) -> Result<DynamicInfo, Error> {
    let header = Elf::parse(data).map_err(object_error)?;
    let endian = header.endian().map_err(object_error)?;
    let machine = header.e_machine(endian).0;
    let segments = header.program_headers(endian, data).map_err(object_error)?;

    let mut interpreter = None;
    for segment in segments {
        if segment.p_type(endian) == elf::PT_INTERP {
            let bytes = segment.data(endian, data).map_err(|()| Error::Malformed {
                offset: segment.p_offset(endian).into(),
                problem: "PT_INTERP runs past the end of the file".into(),
            })?;
            interpreter = Some(text(bytes));
        }
    }

    let entries = dynamic_entries::<Elf>(header, endian, data, segments)?;
    let mut info = DynamicInfo {
        class,
        little_endian: endian == Endianness::Little,
        machine,
        machine_name: machine_name(machine),
        kind: ElfKind::Other(header.e_type(endian).0),
        interpreter,
        has_dynamic: entries.is_some(),
        soname: None,
        needed: Vec::new(),
        rpath: None,
        runpath: None,
    };
    let mut pie_flag = false;
    if let Some(entries) = entries {
        for (tag, value) in entries.values {
            let string = || entries.strings.get(value).map(text);
            match tag {
                elf::DT_NEEDED => info.needed.push(string()?),
                elf::DT_SONAME => info.soname = Some(string()?),
                elf::DT_RPATH => info.rpath = Some(string()?),
                elf::DT_RUNPATH => info.runpath = Some(string()?),
                elf::DT_FLAGS_1 => pie_flag = value & elf::DF_1_PIE.0 != 0,
                _ => {}
            }
        }
    }
    info.kind = match header.e_type(endian) {
        elf::ET_EXEC => ElfKind::Executable,
        elf::ET_DYN if pie_flag || info.interpreter.is_some() => ElfKind::PieExecutable,
        elf::ET_DYN => ElfKind::SharedObject,
        elf::ET_REL => ElfKind::Relocatable,
        elf::ET_CORE => ElfKind::Core,
        other => ElfKind::Other(other.0),
    };
    Ok(info)
}

/// The dynamic entries up to `DT_NULL`, and the string table their strings live in.
struct Entries<'data> {
    values: Vec<(elf::DynamicTag, u64)>,
    strings: Strings<'data>,
}

/// A string table, read with bounds checks.
struct Strings<'data> {
    bytes: &'data [u8],
    offset: u64,
}

impl Strings<'_> {
    fn get(&self, at: u64) -> Result<&[u8], Error> {
        let start = usize::try_from(at)
            .ok()
            .filter(|s| *s < self.bytes.len())
            .ok_or(Error::Malformed {
                offset: self.offset,
                problem: format!(
                    "string offset {at:#x} is outside the dynamic string table ({} bytes)",
                    self.bytes.len()
                ),
            })?;
        Ok(&self.bytes[start..])
    }
}

/// Finds the dynamic table as the loader does (`PT_DYNAMIC`, strings at `DT_STRTAB`
/// through the load segments), falling back to section headers for files without
/// program headers.
fn dynamic_entries<'data, Elf: FileHeader<Endian = Endianness>>(
    header: &Elf,
    endian: Endianness,
    data: &'data [u8],
    segments: &'data [Elf::ProgramHeader],
) -> Result<Option<Entries<'data>>, Error> {
    let loader_view = segments
        .iter()
        .find(|s| s.p_type(endian) == elf::PT_DYNAMIC);
    let table: Option<&'data [Elf::Dyn]> = if let Some(segment) = loader_view {
        Some(
            segment
                .dynamic(endian, data)
                .map_err(object_error)?
                .unwrap_or(&[]),
        )
    } else {
        let sections = header.sections(endian, data).map_err(object_error)?;
        sections
            .dynamic(endian, data)
            .map_err(object_error)?
            .map(|(table, _)| table)
    };
    let Some(table) = table else { return Ok(None) };
    let values: Vec<(elf::DynamicTag, u64)> = table
        .iter()
        .map(|entry| (entry.tag(endian), entry.val(endian)))
        .take_while(|(tag, _)| *tag != elf::DT_NULL)
        .collect();
    let address = values
        .iter()
        .find(|(tag, _)| *tag == elf::DT_STRTAB)
        .map(|(_, v)| *v);
    let size = values
        .iter()
        .find(|(tag, _)| *tag == elf::DT_STRSZ)
        .map(|(_, v)| *v);
    let strings = match (address, size) {
        (Some(address), Some(size)) => {
            let offset = file_offset::<Elf>(segments, endian, address).ok_or(Error::Malformed {
                offset: 0,
                problem: format!("DT_STRTAB address {address:#x} is in no load segment"),
            })?;
            let bytes = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(start, len)| data.get(start..start.checked_add(len)?))
                .ok_or(Error::Malformed {
                    offset,
                    problem: format!(
                        "dynamic string table of {size} bytes runs past the end of the file"
                    ),
                })?;
            Strings { bytes, offset }
        }
        _ => Strings {
            bytes: &[],
            offset: 0,
        },
    };
    Ok(Some(Entries { values, strings }))
}

/// The file offset that a virtual address is loaded from.
pub(crate) fn file_offset<Elf: FileHeader<Endian = Endianness>>(
    segments: &[Elf::ProgramHeader],
    endian: Endianness,
    address: u64,
) -> Option<u64> {
    segments
        .iter()
        .filter(|s| s.p_type(endian) == elf::PT_LOAD)
        .find_map(|segment| {
            let vaddr: u64 = segment.p_vaddr(endian).into();
            let filesz: u64 = segment.p_filesz(endian).into();
            (address >= vaddr && address - vaddr < filesz).then(|| {
                let offset: u64 = segment.p_offset(endian).into();
                offset + (address - vaddr)
            })
        })
}

/// The first bytes of an ELF file name its class and machine, which the loader checks
/// before accepting a library.
pub fn class_and_machine(header: &[u8]) -> Option<(Class, u16)> {
    if !header.starts_with(b"\x7fELF") || header.len() < 20 {
        return None;
    }
    let class = match header[4] {
        1 => Class::Elf32,
        2 => Class::Elf64,
        _ => return None,
    };
    let machine = match header[5] {
        1 => u16::from_le_bytes([header[18], header[19]]),
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => return None,
    };
    Some((class, machine))
}
