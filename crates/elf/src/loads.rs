//! Libraries a file may load at run time (`dlopen`), read from its bytes.
//!
//! Libraries that load others by name keep the names in their read-only data: whole
//! sonames (`libcublasLt.so.12`), stems the code completes with a version
//! (`libcudnn_adv.so`, `libnvrtc.so.`) and `printf` patterns (`libnvrtc.so.%d`). Each is
//! a [`LoadName`]; which of them are real dependencies is decided by matching them
//! against the libraries a tree or a package set provides, so no list of vendors' names
//! is needed (and a name that matches nothing provided costs nothing).

use object::elf;
use object::read::elf::{ElfFile, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

/// A library name found in a file's read-only data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LoadName(String);

/// The characters of a library file name (and of `%d`-style placeholders).
fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'+' | b'.' | b'%')
}

impl LoadName {
    /// A name as it would be found in a file (`libcublasLt.so.12`, `libnvrtc.so.%d`).
    pub fn new(name: impl Into<String>) -> LoadName {
        LoadName(name.into())
    }

    /// The name as found (`libnvrtc.so.%d`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the library file `name` (`libnvrtc.so.12`) is one this name loads: the
    /// same name, a stem completed by a version (`libX.so` or `libX.so.` → `libX.so.12`),
    /// or a pattern whose `%d`/`%u`/`%i` take digits and `%s` any name characters.
    pub fn matches(&self, name: &str) -> bool {
        let pattern = self.0.as_bytes();
        let name = name.as_bytes();
        if pattern == name {
            return true;
        }
        if pattern.contains(&b'%') {
            return pattern_matches(pattern, name);
        }
        let stem_end = if pattern.ends_with(b".so") {
            pattern.len() + 1
        } else if pattern.ends_with(b".so.") {
            pattern.len()
        } else {
            return false;
        };
        name.len() > stem_end
            && name.starts_with(pattern)
            && name[pattern.len()..stem_end].iter().all(|&b| b == b'.')
            && is_version(&name[stem_end..])
    }
}

impl std::fmt::Display for LoadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `12`, `12.9`, `9.28.0`: what follows `.so.` in a versioned soname.
fn is_version(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .split(|&b| b == b'.')
            .all(|part| !part.is_empty() && part.iter().all(u8::is_ascii_digit))
}

/// `printf`-style matching: `%d`, `%i`, `%u` take one or more digits, `%s` one or more
/// name characters; everything else must be equal.
fn pattern_matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern {
        [] => name.is_empty(),
        [b'%', kind @ (b'd' | b'i' | b'u' | b's'), rest @ ..] => {
            let takes = |b: &u8| {
                if *kind == b's' {
                    is_name_byte(*b)
                } else {
                    b.is_ascii_digit()
                }
            };
            let most = name.iter().take_while(|b| takes(b)).count();
            (1..=most).any(|taken| pattern_matches(rest, &name[taken..]))
        }
        [first, rest @ ..] => name.first() == Some(first) && pattern_matches(rest, &name[1..]),
    }
}

/// Every library name in the read-only data of the ELF file `bytes`, sorted and
/// deduplicated; nothing for files that are not ELF or cannot be read.
pub fn load_names(bytes: &[u8]) -> Vec<LoadName> {
    let mut names = Vec::new();
    for range in read_only_data(bytes) {
        collect_names(&bytes[range], &mut names);
    }
    names.sort();
    names.dedup();
    names
}

/// Library names in `data`: runs of name characters around a `.so` that begin with
/// `lib` (after a `/` when the run is a path).
fn collect_names(data: &[u8], names: &mut Vec<LoadName>) {
    let mut last_end = 0;
    for at in memchr::memmem::find_iter(data, b".so") {
        if at < last_end {
            continue;
        }
        let start = data[..at]
            .iter()
            .rposition(|&b| !is_name_byte(b))
            .map_or(0, |p| p + 1);
        let end = data[at..]
            .iter()
            .position(|&b| !is_name_byte(b))
            .map_or(data.len(), |p| at + p);
        last_end = end;
        let word = &data[start..end];
        // `.so` must end the name or be followed by a version or placeholder.
        let after = &word[at - start + 3..];
        let suffix_ok = after.is_empty() || after.starts_with(b".");
        if word.starts_with(b"lib") && word.len() > 6 && suffix_ok && word.len() <= 255 {
            if let Ok(text) = std::str::from_utf8(word) {
                names.push(LoadName(text.to_owned()));
            }
        }
    }
}

/// Read-only sections that hold no names a program loads: device code (CUDA's
/// fatbins, most of a CUDA library's bytes) and unwind tables. Skipping them spares
/// reading the bulk of every CUDA library.
const NAMELESS_SECTIONS: [&[u8]; 5] = [
    b".nv_fatbin",
    b"__nv_relfatbin",
    b".eh_frame",
    b".eh_frame_hdr",
    b".gcc_except_table",
];

/// The byte ranges of read-only, allocated, non-executable data: `SHT_PROGBITS` sections
/// without write or exec flags (but `NAMELESS_SECTIONS`), or (for files without section
/// headers) the load segments that are only readable.
fn read_only_data(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    match FileKind::parse(bytes) {
        Ok(FileKind::Elf64) => ranges::<elf::FileHeader64<Endianness>>(bytes),
        Ok(FileKind::Elf32) => ranges::<elf::FileHeader32<Endianness>>(bytes),
        _ => Vec::new(),
    }
}

fn ranges<H: FileHeader<Endian = Endianness>>(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let Ok(file) = ElfFile::<H>::parse(bytes) else {
        return Vec::new();
    };
    let endian = file.endian();
    let in_file = |offset: u64, size: u64| -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        (end <= bytes.len()).then_some(start..end)
    };
    let table = file.elf_section_table();
    let read_only: Vec<_> = table
        .iter()
        .filter(|section| {
            let flags = section.sh_flags(endian).0;
            section.sh_type(endian) == elf::SHT_PROGBITS
                && flags & elf::SHF_ALLOC.0 != 0
                && flags & (elf::SHF_WRITE.0 | elf::SHF_EXECINSTR.0) == 0
        })
        .collect();
    // Files with read-only data only in sections known to hold no names have nothing
    // to scan; they do not fall back to their segments.
    if !read_only.is_empty() {
        return read_only
            .into_iter()
            .filter(|section| {
                table
                    .section_name(endian, section)
                    .map_or(true, |name| !NAMELESS_SECTIONS.contains(&name))
            })
            .filter_map(|section| {
                in_file(
                    section.sh_offset(endian).into(),
                    section.sh_size(endian).into(),
                )
            })
            .collect();
    }
    file.elf_program_headers()
        .iter()
        .filter(|segment| {
            segment.p_type(endian) == elf::PT_LOAD
                && segment.p_flags(endian).0 & (elf::PF_X.0 | elf::PF_W.0) == 0
        })
        .filter_map(|segment| {
            in_file(
                segment.p_offset(endian).into(),
                segment.p_filesz(endian).into(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_code_and_unwind_tables_are_not_read_for_names() {
        use object::{Object, ObjectSection};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/cuda/out/arch_a.so"
        );
        let bytes = std::fs::read(path).expect("fixture");
        let file = object::File::parse(&*bytes).expect("elf");
        let skipped: Vec<std::ops::Range<usize>> = [".nv_fatbin", ".eh_frame"]
            .iter()
            .map(|name| {
                let section = file.section_by_name(name).expect("the section is there");
                let (offset, size) = section.file_range().expect("in the file");
                let start = usize::try_from(offset).expect("small");
                start..start + usize::try_from(size).expect("small")
            })
            .collect();
        let read = read_only_data(&bytes);
        assert!(!read.is_empty(), ".rodata is still read");
        for range in &read {
            for skip in &skipped {
                assert!(
                    range.end <= skip.start || skip.end <= range.start,
                    "{range:?} {skip:?}"
                );
            }
        }
    }

    fn names_in(data: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        collect_names(data, &mut names);
        names.into_iter().map(|n| n.0).collect()
    }

    #[test]
    fn names_are_found_whole_and_only_names() {
        assert_eq!(
            names_in(b"\0libcublasLt.so.12\0libcudnn_adv.so\0libnvrtc.so.%d\0libnvrtc.so.\0"),
            [
                "libcublasLt.so.12",
                "libcudnn_adv.so",
                "libnvrtc.so.%d",
                "libnvrtc.so."
            ]
        );
        assert_eq!(
            names_in(b"Cannot load (libcuda.so.1 / libcuda.so). x/usr/lib/libz.so.1\0"),
            ["libcuda.so.1", "libcuda.so", "libz.so.1"]
        );
        // Not library names: no `lib` prefix, `.so` inside a word, `.sox`.
        assert!(names_in(b"\0cuda.so.1\0libfoo.sox\0also.something\0lib.so\0").is_empty());
    }

    #[test]
    fn names_match_the_files_they_load() {
        let name = |text: &str| LoadName(text.to_owned());
        assert!(name("libcublasLt.so.12").matches("libcublasLt.so.12"));
        assert!(!name("libcublasLt.so.12").matches("libcublasLt.so.13"));
        assert!(name("libcudnn_adv.so").matches("libcudnn_adv.so.9"));
        assert!(name("libcudnn_adv.so").matches("libcudnn_adv.so.9.28.0"));
        assert!(!name("libcudnn_adv.so").matches("libcudnn_adv_x.so.9"));
        assert!(!name("libcudnn_adv.so").matches("libcudnn_adv.so.9a"));
        assert!(name("libnvrtc.so.").matches("libnvrtc.so.13"));
        assert!(name("libnvrtc.so.%d").matches("libnvrtc.so.12"));
        assert!(!name("libnvrtc.so.%d").matches("libnvrtc.so.12.9"));
        assert!(name("libnvrtc.so.%d.%d").matches("libnvrtc.so.12.9"));
        assert!(name("lib%s.so.1").matches("libcuda.so.1"));
        assert!(!name("libnvrtc.so.%d").matches("libnvrtc-builtins.so.12"));
    }

    #[test]
    fn files_that_are_not_elf_have_none() {
        assert!(load_names(b"libcuda.so.1 but not an ELF file").is_empty());
        assert!(load_names(b"\x7fELF\x02\x01\x01").is_empty());
    }
}
