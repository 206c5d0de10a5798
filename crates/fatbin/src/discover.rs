//! Where device code sits inside a file: fatbin sections of ELF files, each member of
//! an `ar` archive, a bare `.fatbin` file, or a bare cubin.

use object::read::archive::ArchiveFile;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Endianness, FileKind};
use serde::Serialize;

use crate::container::CONTAINER_MAGIC;
use crate::cubin::EM_CUDA;
use crate::error::Error;

/// The two sections that hold containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub enum SectionKind {
    /// `.nv_fatbin`: whole-program or device-linked code, what the driver loads.
    #[serde(rename = ".nv_fatbin")]
    NvFatbin,
    /// `__nv_relfatbin`: relocatable (`-rdc`) code kept for device linking.
    #[serde(rename = "__nv_relfatbin")]
    RelFatbin,
    /// A whole `.fatbin` file.
    #[serde(rename = "file")]
    File,
}

impl SectionKind {
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::NvFatbin => ".nv_fatbin",
            SectionKind::RelFatbin => "__nv_relfatbin",
            SectionKind::File => "file",
        }
    }
}

/// Where one section that holds fatbin containers lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatbinSection {
    pub kind: SectionKind,
    /// Offset of the section within the file (archive members included).
    pub file_offset: u64,
    pub size: u64,
}

/// One ELF file, archive member or bare container file, with its device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The archive member's name, for archives.
    pub member: Option<String>,
    /// In cuobjdump's order: `.nv_fatbin` sections first, then `__nv_relfatbin`, each
    /// in file order.
    pub sections: Vec<FatbinSection>,
    /// A bare cubin file: its length.
    pub cubin: Option<u64>,
}

/// What kind of file the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Elf,
    Archive,
    Fatbin,
    Cubin,
    Zip,
}

/// Recognises the file formats that can hold device code.
pub fn sniff(data: &[u8]) -> Option<Format> {
    if data.starts_with(b"\x7fELF") {
        let machine = data
            .get(0x12..0x14)
            .map(|b| u16::from_le_bytes([b[0], b[1]]));
        return Some(if machine == Some(EM_CUDA) {
            Format::Cubin
        } else {
            Format::Elf
        });
    }
    if data.starts_with(b"!<arch>\n") || data.starts_with(b"!<thin>\n") {
        return Some(Format::Archive);
    }
    if data.starts_with(&CONTAINER_MAGIC.to_le_bytes()) {
        return Some(Format::Fatbin);
    }
    if data.starts_with(b"PK\x03\x04") {
        return Some(Format::Zip);
    }
    None
}

/// Whether a file starting with `magic` is of a format whose device code [`units`] finds
/// (an ELF file, an `ar` archive, a `.fatbin` or a cubin; a zip file's members are files
/// of their own).
pub fn holds_device_code(magic: &[u8]) -> bool {
    matches!(
        sniff(magic),
        Some(Format::Elf | Format::Archive | Format::Fatbin | Format::Cubin)
    )
}

/// Finds the device code in a file's bytes (not zip files: see `tree`). Only the
/// headers of ELF files and archives are read.
pub fn units(data: &[u8]) -> Result<Vec<Unit>, Error> {
    match sniff(data) {
        Some(Format::Elf) => Ok(vec![Unit {
            member: None,
            sections: elf_sections(data, 0)?,
            cubin: None,
        }]),
        Some(Format::Archive) => archive_units(data),
        Some(Format::Fatbin) => Ok(vec![Unit {
            member: None,
            sections: vec![FatbinSection {
                kind: SectionKind::File,
                file_offset: 0,
                size: data.len() as u64,
            }],
            cubin: None,
        }]),
        Some(Format::Cubin) => Ok(vec![Unit {
            member: None,
            sections: Vec::new(),
            cubin: Some(data.len() as u64),
        }]),
        Some(Format::Zip) => Err(Error::NotRecognized("a zip file: open it as a tree".into())),
        None => Err(Error::NotRecognized(
            "not an ELF file, ar archive, fatbin, cubin or wheel".into(),
        )),
    }
}

fn archive_units(data: &[u8]) -> Result<Vec<Unit>, Error> {
    let archive = ArchiveFile::parse(data).map_err(|e| Error::Object {
        what: "ar archive",
        problem: e.to_string(),
    })?;
    let mut units = Vec::new();
    for member in archive.members() {
        let member = member.map_err(|e| Error::Object {
            what: "ar archive member",
            problem: e.to_string(),
        })?;
        let name = String::from_utf8_lossy(member.name()).into_owned();
        let (offset, size) = member.file_range();
        let bytes = member.data(data).map_err(|e| Error::Object {
            what: "ar archive member",
            problem: format!("{name}: {e}"),
        })?;
        if sniff(bytes) != Some(Format::Elf) {
            continue;
        }
        debug_assert_eq!(bytes.len() as u64, size);
        let sections = elf_sections(bytes, offset).map_err(|e| Error::Object {
            what: "ar archive member",
            problem: format!("{name}: {e}"),
        })?;
        units.push(Unit {
            member: Some(name),
            sections,
            cubin: None,
        });
    }
    Ok(units)
}

/// The fatbin sections of an ELF file, in file order. `base` is the ELF's offset
/// within the file it came from.
pub fn elf_sections(data: &[u8], base: u64) -> Result<Vec<FatbinSection>, Error> {
    if FileKind::parse(data).ok() != Some(FileKind::Elf64) {
        // 32-bit host code carries no CUDA device code cudapkgs can use.
        return Ok(Vec::new());
    }
    let object_error = |e: object::Error| Error::Object {
        what: "ELF file",
        problem: e.to_string(),
    };
    let elf = ElfFile64::<Endianness>::parse(data).map_err(object_error)?;
    let endian = elf.endian();
    let header = elf.elf_header();
    let section_table = header.sections(endian, data).map_err(object_error)?;
    let mut found = Vec::new();
    for section in section_table.iter() {
        let name = section_table
            .section_name(endian, section)
            .map_err(object_error)?;
        let kind = match name {
            b".nv_fatbin" => SectionKind::NvFatbin,
            b"__nv_relfatbin" => SectionKind::RelFatbin,
            _ => continue,
        };
        if section.sh_type(endian) == object::elf::SHT_NOBITS {
            continue;
        }
        let Some((offset, size)) = section.file_range(endian) else {
            continue;
        };
        if offset
            .checked_add(size)
            .is_none_or(|end| end > data.len() as u64)
        {
            return Err(Error::malformed(
                "ELF section header",
                base + offset,
                format!(
                    "{} runs past the end of the file",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        found.push(FatbinSection {
            kind,
            file_offset: base + offset,
            size,
        });
    }
    found.sort_by_key(|section| (section.kind == SectionKind::RelFatbin, section.file_offset));
    Ok(found)
}
