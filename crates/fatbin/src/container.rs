//! Fatbin containers and their entries, read in place.
//!
//! A section holds containers back to back: a 16-byte header (magic `0xBA55ED50`,
//! version, header size, size of the entries) followed by entries, each a header of
//! its own size and a payload. Nothing here trusts a size: every read is bounds-checked
//! and every step moves forward, so hostile input ends in an error, never a loop or a
//! panic.

use std::fmt;

use cudapkgs_caps::{Capability, Variant};
use serde::Serialize;

use crate::error::{Bytes, Error};

pub const CONTAINER_MAGIC: u32 = 0xBA55_ED50;
const CONTAINER_HEADER_SIZE: u64 = 0x10;
const ENTRY_BASE_HEADER_SIZE: u64 = 0x40;

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    Ptx,
    /// PTX compiled for device linking (`Fatbin relocatable ptx code` in cuobjdump);
    /// only a device link can use it.
    RelocatablePtx,
    /// A device ELF (cubin): SASS.
    Sass,
    /// NVVM IR for link-time optimisation.
    LtoIr,
    /// A group of entries compressed together.
    Concatenated,
    /// A kind number not seen in practice.
    Other(u16),
}

impl EntryKind {
    fn from_raw(raw: u16) -> Self {
        match raw {
            1 => EntryKind::Ptx,
            2 => EntryKind::Sass,
            8 => EntryKind::LtoIr,
            0x40 => EntryKind::RelocatablePtx,
            0x100 => EntryKind::Concatenated,
            other => EntryKind::Other(other),
        }
    }

    pub fn name(self) -> String {
        match self {
            EntryKind::Ptx => "ptx".into(),
            EntryKind::RelocatablePtx => "relocatable-ptx".into(),
            EntryKind::Sass => "sass".into(),
            EntryKind::LtoIr => "lto-ir".into(),
            EntryKind::Concatenated => "concatenated".into(),
            EntryKind::Other(raw) => format!("kind-{raw:#x}"),
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// How an entry's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    None,
    /// LZ4 raw block, no frame.
    Lz4,
    Zstd,
    /// Compressed in a way this reader does not decode (LTO-IR's `0x10000` flag).
    Unknown,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
            Compression::Unknown => "unknown",
        }
    }
}

/// The entry header's flag word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryFlags(pub u64);

impl EntryFlags {
    pub const ADDRESS_64: u64 = 0x1;
    pub const DEBUG: u64 = 0x2;
    pub const HOST_LINUX: u64 = 0x10;
    pub const HOST_MAC: u64 = 0x20;
    pub const HOST_WINDOWS: u64 = 0x40;
    pub const LZ4: u64 = 0x2000;
    pub const ZSTD: u64 = 0x8000;
    pub const OPAQUE_COMPRESSION: u64 = 0x1_0000;
    pub const ARCH_SPECIFIC: u64 = 0x10_0000;
    pub const FAMILY_SPECIFIC: u64 = 0x20_0000;

    pub fn has(self, bit: u64) -> bool {
        self.0 & bit != 0
    }

    pub fn host(self) -> &'static str {
        if self.has(Self::HOST_LINUX) {
            "linux"
        } else if self.has(Self::HOST_WINDOWS) {
            "windows"
        } else if self.has(Self::HOST_MAC) {
            "mac"
        } else {
            "unknown"
        }
    }
}

/// One entry of a container, borrowed from the file's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Offset of the entry header within the data the container was read from.
    pub offset: u64,
    pub kind: EntryKind,
    pub header_size: u32,
    /// Payload size as stored (padded to 8).
    pub payload_size: u64,
    /// Exact compressed size; 0 when not compressed.
    pub compressed_size: u32,
    pub version_major: u16,
    pub version_minor: u16,
    /// Architecture number: 75, 90, 100, 121.
    pub arch: u32,
    pub flags: EntryFlags,
    /// Exact uncompressed size; 0 when not compressed.
    pub uncompressed_size: u64,
    /// `fatbinary --ident`, when set.
    pub identifier: Option<&'a [u8]>,
    /// For PTX: the ptxas options; for LTO-IR: the NVVM options.
    pub options: Option<&'a [u8]>,
    /// The payload exactly as stored (padding included).
    pub payload: &'a [u8],
    /// For concatenated groups: the members, listed from their headers.
    pub members: Option<&'a [u8]>,
    member_count: u32,
}

impl<'a> Entry<'a> {
    /// The entry's target with its `a`/`f` variant, if the number is a valid capability.
    pub fn capability(&self) -> Option<Capability> {
        let major = u8::try_from(self.arch / 10).ok().filter(|m| *m > 0)?;
        let minor = u8::try_from(self.arch % 10).ok()?;
        Some(Capability::new(major, minor, self.variant()))
    }

    pub fn variant(&self) -> Variant {
        if self.flags.has(EntryFlags::ARCH_SPECIFIC) {
            Variant::ArchSpecific
        } else if self.flags.has(EntryFlags::FAMILY_SPECIFIC) {
            Variant::FamilySpecific
        } else {
            Variant::Baseline
        }
    }

    /// The architecture as cuobjdump's header dump names it: `sm_90a`, `sm_100f` for
    /// SASS, `compute_90` for PTX (and LTO-IR, which is also virtual).
    pub fn arch_name(&self) -> String {
        let prefix = match self.kind {
            EntryKind::Ptx | EntryKind::RelocatablePtx | EntryKind::LtoIr => "compute",
            _ => "sm",
        };
        format!("{prefix}_{}{}", self.arch, self.variant().suffix())
    }

    pub fn compression(&self) -> Compression {
        if self.flags.has(EntryFlags::OPAQUE_COMPRESSION) {
            Compression::Unknown
        } else if self.flags.has(EntryFlags::ZSTD) {
            Compression::Zstd
        } else if self.flags.has(EntryFlags::LZ4) {
            Compression::Lz4
        } else if self.compressed_size != 0 {
            Compression::Unknown
        } else {
            Compression::None
        }
    }

    /// The stored bytes that make up the content: the exact compressed size when
    /// compressed, else the payload.
    pub fn stored(&self) -> &'a [u8] {
        if self.compressed_size == 0 {
            return self.payload;
        }
        let len = usize::try_from(self.compressed_size).unwrap_or(usize::MAX);
        &self.payload[..len.min(self.payload.len())]
    }

    /// Size of the content once decompressed (the stored size when not compressed).
    pub fn content_size(&self) -> u64 {
        if self.compressed_size == 0 {
            self.payload.len() as u64
        } else {
            self.uncompressed_size
        }
    }

    pub fn is_debug(&self) -> bool {
        self.flags.has(EntryFlags::DEBUG)
    }

    /// Members of a concatenated group, read from their headers without decompressing.
    pub fn group_members(&self) -> impl Iterator<Item = Result<GroupMember, Error>> + 'a {
        let table = self.members.unwrap_or_default();
        let count = if self.members.is_some() {
            self.member_count
        } else {
            0
        };
        let base = self.offset;
        (0..u64::from(count)).map(move |index| {
            let bytes = Bytes::new(table, "concatenated member header");
            let at = index * ENTRY_BASE_HEADER_SIZE;
            let read = || -> Result<GroupMember, Error> {
                Ok(GroupMember {
                    kind: EntryKind::from_raw(bytes.u16(at)?),
                    blob_offset: bytes.u32(at + 0x04)?,
                    size: bytes.u64(at + 0x08)?,
                    version_minor: bytes.u16(at + 0x18)?,
                    version_major: bytes.u16(at + 0x1A)?,
                    arch: bytes.u32(at + 0x1C)?,
                    flags: EntryFlags(bytes.u64(at + 0x28)?),
                })
            };
            read().map_err(|error| error.at_base(base))
        })
    }
}

/// One member of a concatenated group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMember {
    pub kind: EntryKind,
    /// Offset of the member within the decompressed group.
    pub blob_offset: u32,
    pub size: u64,
    pub version_major: u16,
    pub version_minor: u16,
    pub arch: u32,
    pub flags: EntryFlags,
}

/// One container: its place and its entries' bytes.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    /// Offset of the container header within the data it was read from.
    pub offset: u64,
    pub version: u16,
    /// Header plus entries.
    pub total_size: u64,
    entries: &'a [u8],
    entries_offset: u64,
}

impl<'a> Container<'a> {
    /// The entries in order. Stops at the first malformed entry, reporting it.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            data: self.entries,
            base: self.entries_offset,
            position: 0,
            failed: false,
        }
    }
}

/// Iterator over a container's entries.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    data: &'a [u8],
    base: u64,
    position: u64,
    failed: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.data.len() as u64 {
            return None;
        }
        match parse_entry(self.data, self.position) {
            Ok((entry, next)) => {
                self.position = next;
                Some(Ok(Entry {
                    offset: entry.offset + self.base,
                    ..entry
                }))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error.at_base(self.base)))
            }
        }
    }
}

/// Parses the entry at `at`; returns it (offsets relative to `data`) and where the next
/// one starts.
fn parse_entry(data: &[u8], at: u64) -> Result<(Entry<'_>, u64), Error> {
    const WHAT: &str = "fatbin entry header";
    let bytes = Bytes::new(data, WHAT);
    bytes.slice(at, ENTRY_BASE_HEADER_SIZE)?;
    let header_size = bytes.u32(at + 0x04)?;
    let payload_size = bytes.u64(at + 0x08)?;
    if u64::from(header_size) < ENTRY_BASE_HEADER_SIZE {
        return Err(Error::malformed(
            WHAT,
            at,
            format!("header size {header_size:#x} is below the minimum 0x40"),
        ));
    }
    let header = bytes.slice(at, u64::from(header_size))?;
    let payload_start = at + u64::from(header_size);
    let payload = Bytes::new(data, "fatbin entry payload").slice(payload_start, payload_size)?;
    let compressed_size = bytes.u32(at + 0x10)?;
    if u64::from(compressed_size) > payload_size {
        return Err(Error::malformed(
            WHAT,
            at,
            format!("compressed size {compressed_size} exceeds the payload size {payload_size}"),
        ));
    }
    let kind = EntryKind::from_raw(bytes.u16(at)?);
    let extension_offset = bytes.u32(at + 0x14)?;
    let identifier_offset = bytes.u32(at + 0x20)?;
    let identifier_len = bytes.u32(at + 0x24)?;
    let header_bytes = Bytes::new(header, "fatbin entry header extension");
    let identifier = (identifier_len > 0)
        .then(|| header_bytes.slice(u64::from(identifier_offset), u64::from(identifier_len)))
        .transpose()
        .map_err(|error| error.at_base(at))?;

    let mut options = None;
    let mut members = None;
    let mut member_count = 0;
    if extension_offset != 0 {
        let descriptor = u64::from(extension_offset);
        let first = header_bytes.u32(descriptor).map_err(|e| e.at_base(at))?;
        let second = header_bytes
            .u32(descriptor + 4)
            .map_err(|e| e.at_base(at))?;
        match kind {
            EntryKind::Ptx | EntryKind::RelocatablePtx | EntryKind::LtoIr => {
                options = Some(
                    header_bytes
                        .slice(u64::from(first), u64::from(second))
                        .map_err(|e| e.at_base(at))?,
                );
            }
            EntryKind::Concatenated => {
                member_count = first;
                let table_len = u64::from(first) * ENTRY_BASE_HEADER_SIZE;
                if u64::from(second) != 8 + table_len {
                    return Err(Error::malformed(
                        WHAT,
                        at,
                        format!("group of {first} members declares a table of {second} bytes"),
                    ));
                }
                members = Some(
                    header_bytes
                        .slice(descriptor + 8, table_len)
                        .map_err(|e| e.at_base(at))?,
                );
            }
            _ => {}
        }
    }

    let entry = Entry {
        offset: at,
        kind,
        header_size,
        payload_size,
        compressed_size,
        version_major: bytes.u16(at + 0x1A)?,
        version_minor: bytes.u16(at + 0x18)?,
        arch: bytes.u32(at + 0x1C)?,
        flags: EntryFlags(bytes.u64(at + 0x28)?),
        uncompressed_size: bytes.u64(at + 0x38)?,
        identifier,
        options,
        payload,
        members,
        member_count,
    };
    Ok((entry, payload_start + payload_size))
}

/// Iterator over the containers of a section (or a `.fatbin` file).
#[derive(Debug, Clone)]
pub struct Containers<'a> {
    data: &'a [u8],
    position: u64,
    failed: bool,
}

/// Walks the containers in `data`, one after the other. Zero padding between and
/// after containers is skipped; any other byte where a container should start is an
/// error.
pub fn containers(data: &[u8]) -> Containers<'_> {
    Containers {
        data,
        position: 0,
        failed: false,
    }
}

impl<'a> Iterator for Containers<'a> {
    type Item = Result<Container<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let len = self.data.len() as u64;
        // Skip zero padding, 8 bytes at a time (containers are 8-aligned).
        while self.position < len {
            let end = (self.position + 8).min(len);
            let chunk = &self.data[to_usize(self.position)..to_usize(end)];
            if chunk.iter().any(|&b| b != 0) {
                break;
            }
            self.position = end;
        }
        if self.position >= len {
            return None;
        }
        let result = parse_container(self.data, self.position);
        match &result {
            Ok(container) => self.position = container.offset + container.total_size,
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn parse_container(data: &[u8], at: u64) -> Result<Container<'_>, Error> {
    const WHAT: &str = "fatbin container header";
    let bytes = Bytes::new(data, WHAT);
    let magic = bytes.u32(at)?;
    if magic != CONTAINER_MAGIC {
        return Err(Error::malformed(
            WHAT,
            at,
            format!(
                "found {magic:#010x} where the container magic {CONTAINER_MAGIC:#010x} was expected"
            ),
        ));
    }
    let version = bytes.u16(at + 4)?;
    let header_size = u64::from(bytes.u16(at + 6)?);
    let size = bytes.u64(at + 8)?;
    if header_size < CONTAINER_HEADER_SIZE {
        return Err(Error::malformed(
            WHAT,
            at,
            format!("header size {header_size:#x} is below the minimum 0x10"),
        ));
    }
    let entries_offset = at + header_size;
    let entries = Bytes::new(data, "fatbin container").slice(entries_offset, size)?;
    Ok(Container {
        offset: at,
        version,
        total_size: header_size + size,
        entries,
        entries_offset,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an entry with the given fields and payload (padded to 8).
    pub(crate) fn entry_bytes(
        kind: u16,
        arch: u32,
        flags: u64,
        payload: &[u8],
        compressed: Option<(u32, u64)>,
    ) -> Vec<u8> {
        let mut padded = payload.to_vec();
        while padded.len() % 8 != 0 {
            padded.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&0x0101u16.to_le_bytes());
        out.extend_from_slice(&0x40u32.to_le_bytes());
        out.extend_from_slice(&(padded.len() as u64).to_le_bytes());
        let (csize, usize_) = compressed.unwrap_or((0, 0));
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&8u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&arch.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&usize_.to_le_bytes());
        assert_eq!(out.len(), 0x40);
        out.extend_from_slice(&padded);
        out
    }

    pub(crate) fn container_bytes(entries: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = entries.concat();
        let mut out = Vec::new();
        out.extend_from_slice(&CONTAINER_MAGIC.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&0x10u16.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn walks_containers_and_entries_with_padding() {
        let a = container_bytes(&[
            entry_bytes(2, 90, 0x11 | EntryFlags::ARCH_SPECIFIC, b"cubin", None),
            entry_bytes(1, 90, 0x11, b".version 9.0", None),
        ]);
        let b = container_bytes(&[]);
        let mut data = a.clone();
        data.extend_from_slice(&[0u8; 16]);
        data.extend_from_slice(&b);
        data.extend_from_slice(&[0u8; 8]);
        let found: Vec<Container<'_>> = containers(&data).collect::<Result<_, _>>().expect("valid");
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].offset, a.len() as u64 + 16);
        let entries: Vec<Entry<'_>> = found[0].entries().collect::<Result<_, _>>().expect("valid");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].arch_name(), "sm_90a");
        assert_eq!(entries[0].offset, 0x10);
        assert_eq!(entries[1].arch_name(), "compute_90");
        assert_eq!(entries[1].kind, EntryKind::Ptx);
        assert_eq!(entries[1].payload.len(), 16);
        assert_eq!(found[1].entries().count(), 0);
    }

    #[test]
    fn garbage_where_a_container_should_start_is_an_error_with_offset() {
        let mut data = container_bytes(&[]);
        data.extend_from_slice(b"garbage!");
        let results: Vec<_> = containers(&data).collect();
        assert_eq!(results.len(), 2);
        let err = results[1].as_ref().expect_err("garbage").to_string();
        assert!(
            err.contains("offset 0x10") && err.contains("magic"),
            "{err}"
        );
    }

    #[test]
    fn sizes_beyond_the_data_are_truncation_errors() {
        let mut data = container_bytes(&[entry_bytes(2, 80, 0x11, b"12345678", None)]);
        // Claim a payload far larger than what follows.
        data[0x10 + 8..0x10 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        let container = containers(&data).next().expect("one").expect("header fine");
        let err = container
            .entries()
            .next()
            .expect("one")
            .expect_err("truncated");
        assert!(
            matches!(err, Error::Truncated { offset: 0x50, .. }),
            "{err}"
        );

        let mut data = container_bytes(&[]);
        data[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(containers(&data).next().expect("one").is_err());
    }

    #[test]
    fn compressed_size_larger_than_payload_is_refused() {
        let data = container_bytes(&[entry_bytes(1, 80, 0x8011, b"abcdefgh", Some((9, 100)))]);
        let container = containers(&data).next().expect("one").expect("ok");
        let err = container.entries().next().expect("one").expect_err("bad");
        assert!(
            err.to_string().contains("compressed size 9 exceeds"),
            "{err}"
        );
    }

    #[test]
    fn tiny_header_sizes_cannot_loop() {
        let mut data = container_bytes(&[entry_bytes(2, 80, 0x11, b"", None)]);
        data[0x10 + 4..0x10 + 8].copy_from_slice(&0u32.to_le_bytes());
        let container = containers(&data).next().expect("one").expect("ok");
        assert!(container.entries().next().expect("one").is_err());
    }
}
