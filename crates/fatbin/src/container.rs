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

use crate::error::Error;
use crate::read::{Bytes, ReadAt};

pub const CONTAINER_MAGIC: u32 = 0xBA55_ED50;
const CONTAINER_HEADER_SIZE: u64 = 0x10;
/// Where a container header holds the size of the entries after it (a `u64`).
pub(crate) const CONTAINER_SIZE_AT: u64 = 8;
const ENTRY_BASE_HEADER_SIZE: u64 = 0x40;

/// What an entry holds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
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

/// Entry headers longer than this are refused: real ones are under 0x100 bytes, and
/// the size must not drive an allocation.
const MAX_ENTRY_HEADER: u64 = 1 << 20;
/// One read covers the whole header of almost every entry.
const HEADER_READ: usize = 0x80;

/// One entry of a container: its header, read and owned; its payload, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the entry header in the file.
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
    header: Vec<u8>,
    identifier: Option<(usize, usize)>,
    options: Option<(usize, usize)>,
    members: Option<(usize, u32)>,
}

impl Entry {
    /// Offset of the payload in the file.
    pub fn payload_offset(&self) -> u64 {
        self.offset + u64::from(self.header_size)
    }

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

    /// Length of the stored content: the exact compressed size, else the payload.
    pub fn stored_len(&self) -> u64 {
        if self.compressed_size == 0 {
            self.payload_size
        } else {
            u64::from(self.compressed_size)
        }
    }

    /// The stored content within the file's bytes.
    pub fn stored<'d>(&self, file: &'d [u8]) -> Result<&'d [u8], Error> {
        Bytes::new(file, "fatbin entry payload").slice(self.payload_offset(), self.stored_len())
    }

    /// Size of the content once decompressed (the stored size when not compressed).
    pub fn content_size(&self) -> u64 {
        if self.compressed_size == 0 {
            self.payload_size
        } else {
            self.uncompressed_size
        }
    }

    pub fn is_debug(&self) -> bool {
        self.flags.has(EntryFlags::DEBUG)
    }

    /// `fatbinary --ident`, when set.
    pub fn identifier(&self) -> Option<&[u8]> {
        self.identifier
            .map(|(start, len)| &self.header[start..start + len])
    }

    /// For PTX: the ptxas options; for LTO-IR: the NVVM options.
    pub fn options(&self) -> Option<&[u8]> {
        self.options
            .map(|(start, len)| &self.header[start..start + len])
    }

    /// Members of a concatenated group, read from their headers without decompressing.
    pub fn group_members(&self) -> impl Iterator<Item = GroupMember> + '_ {
        let (start, count) = self.members.unwrap_or((0, 0));
        (0..count as usize).map(move |index| {
            let at = start as u64 + index as u64 * ENTRY_BASE_HEADER_SIZE;
            // In bounds: the table was checked when the header was read.
            let bytes = Bytes::new(&self.header, "concatenated member header");
            let field = |read: Result<u64, Error>| read.unwrap_or_default();
            GroupMember {
                kind: EntryKind::from_raw(bytes.u16(at).unwrap_or_default()),
                blob_offset: bytes.u32(at + 0x04).unwrap_or_default(),
                size: field(bytes.u64(at + 0x08)),
                version_minor: bytes.u16(at + 0x18).unwrap_or_default(),
                version_major: bytes.u16(at + 0x1A).unwrap_or_default(),
                arch: bytes.u32(at + 0x1C).unwrap_or_default(),
                flags: EntryFlags(field(bytes.u64(at + 0x28))),
            }
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

/// One container's header and place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Container {
    /// Offset of the container header in the file.
    pub offset: u64,
    pub version: u16,
    pub header_size: u64,
    /// Header plus entries.
    pub total_size: u64,
    /// The bytes after the container header, read along with it: usually the first
    /// entry's whole header, which then costs no second read.
    prefetched: [u8; HEADER_READ],
    prefetched_len: usize,
}

impl Container {
    /// The entries in order, read from `source`. Stops at the first malformed entry,
    /// reporting it.
    pub fn entries<'r, R: ReadAt + ?Sized>(&self, source: &'r R) -> Entries<'r, R> {
        let first = self.offset + self.header_size;
        Entries {
            source,
            position: first,
            end: self.offset + self.total_size,
            failed: false,
            prefetched: (self.header_size == CONTAINER_HEADER_SIZE).then_some((
                first,
                self.prefetched,
                self.prefetched_len,
            )),
        }
    }
}

/// Iterator over a container's entries.
#[derive(Debug)]
pub struct Entries<'r, R: ?Sized> {
    source: &'r R,
    position: u64,
    end: u64,
    failed: bool,
    prefetched: Option<(u64, [u8; HEADER_READ], usize)>,
}

impl<R: ReadAt + ?Sized> Iterator for Entries<'_, R> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.end {
            return None;
        }
        let prefetched = self
            .prefetched
            .take()
            .filter(|(at, _, _)| *at == self.position)
            .map(|(_, bytes, len)| bytes[..len].to_vec());
        match read_entry(self.source, self.position, self.end, prefetched) {
            Ok(entry) => {
                self.position = entry.payload_offset() + entry.payload_size;
                Some(Ok(entry))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

/// Reads the entry header at `at`; the entry must end by `end` (its container's end).
/// `prefetched` holds the header's first bytes when they were read already.
fn read_entry<R: ReadAt + ?Sized>(
    source: &R,
    at: u64,
    end: u64,
    prefetched: Option<Vec<u8>>,
) -> Result<Entry, Error> {
    const WHAT: &str = "fatbin entry header";
    let room = end.saturating_sub(at);
    if room < ENTRY_BASE_HEADER_SIZE {
        return Err(Error::Truncated {
            what: WHAT,
            offset: at,
            needed: ENTRY_BASE_HEADER_SIZE,
            available: room,
        });
    }
    let mut header = match prefetched {
        Some(bytes) if bytes.len() as u64 >= room.min(HEADER_READ as u64) => bytes,
        _ => {
            let mut bytes = vec![0u8; to_usize(room.min(HEADER_READ as u64))];
            source.read_at(at, &mut bytes, WHAT)?;
            bytes
        }
    };
    header.truncate(to_usize(room.min(HEADER_READ as u64)));
    let bytes = Bytes::new(&header, WHAT);
    let header_size = u64::from(bytes.u32(0x04)?);
    let payload_size = bytes.u64(0x08)?;
    if !(ENTRY_BASE_HEADER_SIZE..=MAX_ENTRY_HEADER).contains(&header_size) {
        return Err(Error::malformed(
            WHAT,
            at,
            format!("header size {header_size:#x} is outside 0x40..={MAX_ENTRY_HEADER:#x}"),
        ));
    }
    let total = header_size
        .checked_add(payload_size)
        .filter(|total| *total <= room);
    if total.is_none() {
        return Err(Error::Truncated {
            what: "fatbin entry",
            offset: at,
            needed: header_size.saturating_add(payload_size),
            available: room,
        });
    }
    if header_size > header.len() as u64 {
        let already = header.len();
        header.resize(to_usize(header_size), 0);
        source.read_at(at + already as u64, &mut header[already..], WHAT)?;
    }
    header.truncate(to_usize(header_size));
    let bytes = Bytes::new(&header, WHAT);
    let relative = |error: Error| error.at_base(at);

    let compressed_size = bytes.u32(0x10)?;
    if u64::from(compressed_size) > payload_size {
        return Err(Error::malformed(
            WHAT,
            at,
            format!("compressed size {compressed_size} exceeds the payload size {payload_size}"),
        ));
    }
    let kind = EntryKind::from_raw(bytes.u16(0)?);
    let range = |offset: u32, len: u32| -> Result<(usize, usize), Error> {
        bytes
            .slice(u64::from(offset), u64::from(len))
            .map_err(relative)?;
        Ok((offset as usize, len as usize))
    };
    let identifier_len = bytes.u32(0x24)?;
    let identifier = (identifier_len > 0)
        .then(|| range(bytes.u32(0x20)?, identifier_len))
        .transpose()?;

    let (options, members) = read_extension(&bytes, kind, at)?;

    Ok(Entry {
        offset: at,
        kind,
        header_size: u32::try_from(header_size).expect("bounded above"),
        payload_size,
        compressed_size,
        version_major: bytes.u16(0x1A)?,
        version_minor: bytes.u16(0x18)?,
        arch: bytes.u32(0x1C)?,
        flags: EntryFlags(bytes.u64(0x28)?),
        uncompressed_size: bytes.u64(0x38)?,
        header,
        identifier,
        options,
        members,
    })
}

/// Where the extension descriptor (header offset 0x14) points: the options string of
/// PTX and LTO-IR entries, or the member table of a concatenated group.
#[allow(
    clippy::type_complexity,
    reason = "two optional ranges, named at the call"
)]
fn read_extension(
    bytes: &Bytes<'_>,
    kind: EntryKind,
    at: u64,
) -> Result<(Option<(usize, usize)>, Option<(usize, u32)>), Error> {
    const WHAT: &str = "fatbin entry header";
    let relative = |error: Error| error.at_base(at);
    let extension = u64::from(bytes.u32(0x14)?);
    if extension == 0 {
        return Ok((None, None));
    }
    let first = bytes.u32(extension).map_err(relative)?;
    let second = bytes.u32(extension + 4).map_err(relative)?;
    match kind {
        EntryKind::Ptx | EntryKind::RelocatablePtx | EntryKind::LtoIr => {
            bytes
                .slice(u64::from(first), u64::from(second))
                .map_err(relative)?;
            Ok((Some((first as usize, second as usize)), None))
        }
        EntryKind::Concatenated => {
            let table_len = u64::from(first) * ENTRY_BASE_HEADER_SIZE;
            if u64::from(second) != 8 + table_len {
                return Err(Error::malformed(
                    WHAT,
                    at,
                    format!("group of {first} members declares a table of {second} bytes"),
                ));
            }
            bytes.slice(extension + 8, table_len).map_err(relative)?;
            Ok((None, Some((to_usize(extension + 8), first))))
        }
        _ => Ok((None, None)),
    }
}

/// Iterator over the containers of a section (or a `.fatbin` file).
#[derive(Debug)]
pub struct Containers<'r, R: ?Sized> {
    source: &'r R,
    position: u64,
    end: u64,
    failed: bool,
}

/// Walks the containers in `source` from `start` for `len` bytes, one after the
/// other. Zero padding between and after containers is skipped; any other byte where
/// a container should start is an error.
pub fn containers<R: ReadAt + ?Sized>(source: &R, start: u64, len: u64) -> Containers<'_, R> {
    Containers {
        source,
        position: start,
        end: start.saturating_add(len),
        failed: false,
    }
}

impl<R: ReadAt + ?Sized> Iterator for Containers<'_, R> {
    type Item = Result<Container, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // Skip zero padding, 8 bytes at a time (containers are 8-aligned); the same
        // read brings the next container's header and its first entry's.
        let mut raw = [0u8; 16 + HEADER_READ];
        let mut n;
        loop {
            if self.position >= self.end {
                return None;
            }
            n = to_usize((self.end - self.position).min(raw.len() as u64));
            if let Err(error) = self
                .source
                .read_at(self.position, &mut raw[..n], "fatbin section")
            {
                self.failed = true;
                return Some(Err(error));
            }
            let word = n.min(8);
            if raw[..word].iter().any(|&b| b != 0) {
                break;
            }
            self.position += word as u64;
        }
        let result = parse_container(&raw, n, self.position, self.end);
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

/// Parses the container header at the start of `raw` (`len` bytes read), found at `at`.
fn parse_container(
    raw: &[u8; 16 + HEADER_READ],
    len: usize,
    at: u64,
    end: u64,
) -> Result<Container, Error> {
    const WHAT: &str = "fatbin container header";
    let room = end.saturating_sub(at);
    if room < CONTAINER_HEADER_SIZE {
        return Err(Error::Truncated {
            what: WHAT,
            offset: at,
            needed: CONTAINER_HEADER_SIZE,
            available: room,
        });
    }
    let bytes = Bytes::new(&raw[..len], WHAT);
    let magic = bytes.u32(0)?;
    if magic != CONTAINER_MAGIC {
        return Err(Error::malformed(
            WHAT,
            at,
            format!(
                "found {magic:#010x} where the container magic {CONTAINER_MAGIC:#010x} was expected"
            ),
        ));
    }
    let version = bytes.u16(4)?;
    let header_size = u64::from(bytes.u16(6)?);
    let size = bytes.u64(CONTAINER_SIZE_AT)?;
    if header_size < CONTAINER_HEADER_SIZE {
        return Err(Error::malformed(
            WHAT,
            at,
            format!("header size {header_size:#x} is below the minimum 0x10"),
        ));
    }
    let total_size = header_size.saturating_add(size);
    if total_size > room {
        return Err(Error::Truncated {
            what: "fatbin container",
            offset: at,
            needed: total_size,
            available: room,
        });
    }
    let mut prefetched = [0u8; HEADER_READ];
    let prefetched_len = len.saturating_sub(16);
    prefetched[..prefetched_len].copy_from_slice(&raw[16..len]);
    Ok(Container {
        offset: at,
        version,
        header_size,
        total_size,
        prefetched,
        prefetched_len,
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
        while !padded.len().is_multiple_of(8) {
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

    fn all(data: &[u8]) -> Vec<Result<Container, Error>> {
        containers(data, 0, data.len() as u64).collect()
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
        let found: Vec<Container> = all(&data)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].offset, a.len() as u64 + 16);
        let entries: Vec<Entry> = found[0]
            .entries(&data[..])
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].arch_name(), "sm_90a");
        assert_eq!(entries[0].offset, 0x10);
        assert_eq!(entries[1].arch_name(), "compute_90");
        assert_eq!(entries[1].kind, EntryKind::Ptx);
        assert_eq!(entries[1].stored(&data).expect("payload").len(), 16);
        assert_eq!(found[1].entries(&data[..]).count(), 0);
    }

    #[test]
    fn a_file_reads_like_a_slice() {
        let data = container_bytes(&[entry_bytes(2, 80, 0x11, b"12345678", None)]);
        let mut file = tempfile::tempfile().expect("temp");
        std::io::Write::write_all(&mut file, &data).expect("write");
        let reader = crate::read::FileReader::new(&file).expect("reader");
        let from_file: Vec<Entry> = containers(&reader, 0, data.len() as u64)
            .flat_map(|c| c.expect("container").entries(&reader).collect::<Vec<_>>())
            .collect::<Result<_, _>>()
            .expect("entries");
        let from_slice: Vec<Entry> = all(&data)
            .into_iter()
            .flat_map(|c| c.expect("container").entries(&data[..]).collect::<Vec<_>>())
            .collect::<Result<_, _>>()
            .expect("entries");
        assert_eq!(from_file, from_slice);
    }

    #[test]
    fn garbage_where_a_container_should_start_is_an_error_with_offset() {
        let mut data = container_bytes(&[]);
        data.extend_from_slice(b"garbage!garbage!");
        let results = all(&data);
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
        let container = all(&data).remove(0).expect("header fine");
        let err = container
            .entries(&data[..])
            .next()
            .expect("one")
            .expect_err("truncated");
        assert!(
            matches!(err, Error::Truncated { offset: 0x10, .. }),
            "{err}"
        );

        let mut data = container_bytes(&[]);
        data[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(all(&data).remove(0).is_err());
    }

    #[test]
    fn compressed_size_larger_than_payload_is_refused() {
        let data = container_bytes(&[entry_bytes(1, 80, 0x8011, b"abcdefgh", Some((9, 100)))]);
        let container = all(&data).remove(0).expect("ok");
        let err = container
            .entries(&data[..])
            .next()
            .expect("one")
            .expect_err("bad");
        assert!(
            err.to_string().contains("compressed size 9 exceeds"),
            "{err}"
        );
    }

    #[test]
    fn tiny_or_huge_header_sizes_are_refused() {
        for size in [0u32, 8, 0x3f, u32::MAX] {
            let mut data = container_bytes(&[entry_bytes(2, 80, 0x11, b"", None)]);
            data[0x10 + 4..0x10 + 8].copy_from_slice(&size.to_le_bytes());
            let container = all(&data).remove(0).expect("ok");
            assert!(
                container.entries(&data[..]).next().expect("one").is_err(),
                "{size}"
            );
        }
    }

    #[test]
    fn identifiers_and_options_outside_the_header_are_errors() {
        let mut data = container_bytes(&[entry_bytes(1, 80, 0x11, b"x", None)]);
        // Identifier of 4 bytes at offset 0x3e: runs past the 0x40-byte header.
        data[0x10 + 0x20..0x10 + 0x24].copy_from_slice(&0x3eu32.to_le_bytes());
        data[0x10 + 0x24..0x10 + 0x28].copy_from_slice(&4u32.to_le_bytes());
        let container = all(&data).remove(0).expect("ok");
        let err = container
            .entries(&data[..])
            .next()
            .expect("one")
            .expect_err("bad");
        assert!(err.to_string().contains("offset 0x4e"), "{err}");
    }
}
