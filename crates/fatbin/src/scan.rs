//! A whole file's device code as owned records: every container and entry with the
//! fields people and tools ask about, and (on request) each entry's kernels.

use std::collections::BTreeMap;

use cudapkgs_caps::Capability;
use serde::Serialize;

use crate::container::{Compression, Entry, EntryKind, containers};
use crate::cubin::{CubinType, parse_cubin};
use crate::decompress::content;
use crate::discover::{Format, SectionKind, Unit, sniff, units};
use crate::error::Error;
use crate::ptx::parse_ptx;
use crate::read::ReadAt;

/// How much to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanOptions {
    /// Decompress every entry and list its kernels (needed for GPU verdicts).
    pub kernels: bool,
}

/// The device code of one file.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FileScan {
    pub format: Format,
    pub units: Vec<UnitScan>,
}

impl FileScan {
    pub fn containers(&self) -> impl Iterator<Item = &ContainerScan> {
        self.units.iter().flat_map(|unit| unit.containers.iter())
    }

    pub fn entries(&self) -> impl Iterator<Item = &EntryInfo> {
        self.containers()
            .flat_map(|container| container.entries.iter())
    }

    /// Bytes of device code: every container with its header and entries, not the
    /// padding between containers nor the freed tails a prune leaves in a section.
    pub fn device_code_bytes(&self) -> u64 {
        self.units
            .iter()
            .flat_map(|unit| &unit.containers)
            .map(|container| container.size)
            .sum()
    }

    pub fn has_device_code(&self) -> bool {
        self.entries().next().is_some()
    }

    /// Drops the per-entry kernel lists once they have served.
    pub fn forget_kernels(&mut self) {
        for unit in &mut self.units {
            for container in &mut unit.containers {
                for entry in &mut container.entries {
                    entry.kernels = None;
                }
            }
        }
    }
}

/// One ELF file or archive member.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UnitScan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    pub section_bytes: u64,
    pub containers: Vec<ContainerScan>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ContainerScan {
    pub section: SectionKind,
    /// File offset of the container header.
    pub offset: u64,
    /// Header plus entries.
    pub size: u64,
    /// The fatbin container header's size; `None` for a bare cubin, which is one image
    /// with no container around it and cannot be rewritten entry by entry.
    #[serde(skip)]
    pub header_size: Option<u64>,
    pub entries: Vec<EntryInfo>,
}

impl ContainerScan {
    /// Kernel names (mangled) found in any entry, in first-seen order.
    pub fn kernels(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for entry in &self.entries {
            for name in entry.kernels.iter().flatten() {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// One entry, as `cudapkgs inspect` reports it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EntryInfo {
    pub section: SectionKind,
    /// File offset of the entry header.
    pub offset: u64,
    pub kind: EntryKind,
    /// `sm_90a`, `sm_100f`, `compute_90`.
    pub arch: String,
    pub capability: Option<Capability>,
    /// Cubin ABI version (`1.8`) or PTX ISA version (`9.0`).
    pub version: String,
    pub compression: Compression,
    /// Bytes the entry takes in the file: header plus payload.
    pub stored_size: u64,
    /// Exact compressed size when compressed.
    pub compressed_size: Option<u64>,
    /// Size of the content once decompressed.
    pub uncompressed_size: u64,
    pub identifier: Option<String>,
    /// ptxas options (PTX) or NVVM options (LTO-IR).
    pub options: Option<String>,
    pub host: &'static str,
    pub debug: bool,
    /// Relocatable code by its place: an entry of `__nv_relfatbin`, or relocatable PTX.
    pub relocatable: bool,
    /// For SASS whose content was read (with kernels): `executable` or `relocatable`
    /// (`ET_REL` cubins, which the driver cannot load, occur in `.nv_fatbin` too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cubin_type: Option<CubinType>,
    /// For SASS: the cubin's ELF ABI (`EI_OSABI`, `EI_ABIVERSION`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elf_abi: Option<(u8, u8)>,
    /// Kernel names (mangled), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernels: Option<Vec<String>>,
    /// Members of a concatenated group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<GroupMemberInfo>,
    /// A problem reading this entry's content (the listing stays valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl EntryInfo {
    /// The PTX ISA version of a PTX entry.
    pub fn ptx_isa(&self) -> Option<(u16, u16)> {
        matches!(self.kind, EntryKind::Ptx | EntryKind::RelocatablePtx)
            .then(|| parse_pair(&self.version))
            .flatten()
    }
}

fn parse_pair(text: &str) -> Option<(u16, u16)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Bytes of one architecture and kind across entries.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ArchTotal {
    pub arch: String,
    pub kind: EntryKind,
    pub entries: u64,
    /// Bytes in the files (compressed where compressed).
    pub stored_bytes: u64,
    /// Bytes once decompressed.
    pub content_bytes: u64,
}

/// Entries summed per kind and architecture, as they are added.
#[derive(Debug, Clone, Default)]
pub struct ArchTotals(BTreeMap<(EntryKind, String), ArchTotal>);

impl ArchTotals {
    pub fn add(&mut self, entry: &EntryInfo) {
        let total = self
            .0
            .entry((entry.kind, entry.arch.clone()))
            .or_insert_with(|| ArchTotal {
                arch: entry.arch.clone(),
                kind: entry.kind,
                entries: 0,
                stored_bytes: 0,
                content_bytes: 0,
            });
        total.entries += 1;
        total.stored_bytes += entry.stored_size;
        total.content_bytes += entry.uncompressed_size;
    }

    /// Adds a total of other entries (a file's, to sum a folder's).
    pub fn merge(&mut self, other: &ArchTotal) {
        let total = self
            .0
            .entry((other.kind, other.arch.clone()))
            .or_insert_with(|| ArchTotal {
                entries: 0,
                stored_bytes: 0,
                content_bytes: 0,
                ..other.clone()
            });
        total.entries += other.entries;
        total.stored_bytes += other.stored_bytes;
        total.content_bytes += other.content_bytes;
    }

    /// The totals, most stored bytes first, then by architecture and kind.
    pub fn biggest_first(self) -> Vec<ArchTotal> {
        let mut totals: Vec<ArchTotal> = self.0.into_values().collect();
        // Stable over the map's (kind, architecture) order.
        totals.sort_by(|a, b| {
            b.stored_bytes
                .cmp(&a.stored_bytes)
                .then(a.arch.cmp(&b.arch))
        });
        totals
    }
}

impl<'a> FromIterator<&'a EntryInfo> for ArchTotals {
    fn from_iter<I: IntoIterator<Item = &'a EntryInfo>>(entries: I) -> Self {
        let mut totals = ArchTotals::default();
        for entry in entries {
            totals.add(entry);
        }
        totals
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GroupMemberInfo {
    pub kind: EntryKind,
    pub arch: u32,
    pub size: u64,
}

/// Scans a file's bytes (an ELF file, an ar archive, a `.fatbin` or a cubin).
pub fn scan(data: &[u8], options: ScanOptions) -> Result<FileScan, Error> {
    scan_with(data, data, options)
}

/// Scans a file whose bytes are `data` (mapped), reading the fatbin headers through
/// `reader` (the open file). Walking thousands of entries then reads a few hundred
/// bytes each instead of faulting in the pages around every header; contents, when
/// asked for, come from `data`.
pub fn scan_with<R: ReadAt + ?Sized>(
    data: &[u8],
    reader: &R,
    options: ScanOptions,
) -> Result<FileScan, Error> {
    let format = sniff(data).ok_or_else(|| {
        Error::NotRecognized("not an ELF file, ar archive, fatbin, cubin or wheel".into())
    })?;
    let units = units(data)?
        .iter()
        .map(|unit| scan_unit(unit, data, reader, options))
        .collect::<Result<_, _>>()?;
    Ok(FileScan { format, units })
}

/// Every entry of a file in file order, with the section it sits in; for work on
/// contents such as extraction.
pub fn all_entries(data: &[u8]) -> Result<Vec<(SectionKind, Entry)>, Error> {
    let mut found = Vec::new();
    for unit in units(data)? {
        for section in &unit.sections {
            for container in containers(data, section.file_offset, section.size) {
                for entry in container?.entries(data) {
                    found.push((section.kind, entry?));
                }
            }
        }
    }
    Ok(found)
}

fn scan_unit<R: ReadAt + ?Sized>(
    unit: &Unit,
    data: &[u8],
    reader: &R,
    options: ScanOptions,
) -> Result<UnitScan, Error> {
    let mut found = Vec::new();
    let mut section_bytes = 0;
    for section in &unit.sections {
        section_bytes += section.size;
        for container in containers(reader, section.file_offset, section.size) {
            let container = container?;
            let entries = container
                .entries(reader)
                .map(|entry| entry.map(|entry| entry_info(&entry, section.kind, data, options)))
                .collect::<Result<_, _>>()?;
            found.push(ContainerScan {
                section: section.kind,
                offset: container.offset,
                size: container.total_size,
                header_size: Some(container.header_size),
                entries,
            });
        }
    }
    if let Some(len) = unit.cubin {
        section_bytes += len;
        found.push(bare_cubin(data, options));
    }
    Ok(UnitScan {
        member: unit.member.clone(),
        section_bytes,
        containers: found,
    })
}

fn text(bytes: Option<&[u8]>) -> Option<String> {
    bytes.map(|b| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    })
}

fn entry_info(entry: &Entry, section: SectionKind, data: &[u8], options: ScanOptions) -> EntryInfo {
    let mut info = EntryInfo {
        section,
        offset: entry.offset,
        kind: entry.kind,
        arch: entry.arch_name(),
        capability: entry.capability(),
        version: format!("{}.{}", entry.version_major, entry.version_minor),
        compression: entry.compression(),
        stored_size: u64::from(entry.header_size) + entry.payload_size,
        compressed_size: (entry.compressed_size != 0).then_some(u64::from(entry.compressed_size)),
        uncompressed_size: entry.content_size(),
        identifier: text(entry.identifier()),
        options: text(entry.options()),
        host: entry.flags.host(),
        debug: entry.is_debug(),
        relocatable: section == SectionKind::RelFatbin || entry.kind == EntryKind::RelocatablePtx,
        cubin_type: None,
        elf_abi: None,
        kernels: None,
        members: entry
            .group_members()
            .map(|member| GroupMemberInfo {
                kind: member.kind,
                arch: member.arch,
                size: member.size,
            })
            .collect(),
        problem: None,
    };
    if options.kernels {
        if let Err(error) = read_kernels(entry, data, &mut info) {
            info.problem = Some(error.to_string());
        }
    }
    info
}

fn read_kernels(entry: &Entry, data: &[u8], info: &mut EntryInfo) -> Result<(), Error> {
    match entry.kind {
        EntryKind::Sass => {
            let bytes = content(entry, data)?;
            let cubin = parse_cubin(&bytes).map_err(|e| e.at_base(entry.payload_offset()))?;
            info.elf_abi = Some((cubin.os_abi, cubin.abi_version));
            info.cubin_type = Some(cubin.elf_type);
            info.kernels = Some(cubin.kernels);
        }
        EntryKind::Ptx | EntryKind::RelocatablePtx => {
            let bytes = content(entry, data)?;
            info.kernels = Some(parse_ptx(&bytes).entries);
        }
        _ => {}
    }
    Ok(())
}

impl EntryInfo {
    /// Code the driver cannot load as it is.
    pub fn is_relocatable(&self) -> bool {
        self.relocatable || self.cubin_type == Some(CubinType::Relocatable)
    }
}

fn bare_cubin(data: &[u8], options: ScanOptions) -> ContainerScan {
    let parsed = parse_cubin(data);
    let e_flags = parsed.as_ref().map(|c| c.e_flags).unwrap_or_default();
    // Old ABI keeps the SM in the low byte, the new ABI in bits 8..15.
    let arch = match parsed.as_ref().map(|c| c.os_abi) {
        Ok(0x41) => (e_flags >> 8) & 0xff,
        _ => e_flags & 0xff,
    };
    let entry = EntryInfo {
        section: SectionKind::File,
        offset: 0,
        kind: EntryKind::Sass,
        arch: format!("sm_{arch}"),
        capability: u8::try_from(arch / 10)
            .ok()
            .filter(|major| *major > 0)
            .map(|major| Capability::baseline(major, u8::try_from(arch % 10).unwrap_or(0))),
        version: String::new(),
        compression: Compression::None,
        stored_size: data.len() as u64,
        compressed_size: None,
        uncompressed_size: data.len() as u64,
        identifier: None,
        options: None,
        host: "unknown",
        debug: false,
        relocatable: false,
        cubin_type: parsed.as_ref().ok().map(|c| c.elf_type),
        elf_abi: parsed.as_ref().ok().map(|c| (c.os_abi, c.abi_version)),
        kernels: options.kernels.then(|| {
            parsed
                .as_ref()
                .map(|c| c.kernels.clone())
                .unwrap_or_default()
        }),
        members: Vec::new(),
        problem: parsed.as_ref().err().map(ToString::to_string),
    };
    ContainerScan {
        section: SectionKind::File,
        offset: 0,
        size: data.len() as u64,
        header_size: None,
        entries: vec![entry],
    }
}
