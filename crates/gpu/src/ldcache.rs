//! The host loader's cache (`/etc/ld.so.cache`): which file the loader maps a soname
//! to, read the way `ldconfig -p` prints it, without running anything.
//!
//! The file is glibc's "new" format (`glibc-ld.so.cache1.1`), alone or after the old
//! `ld.so-1.7.0` table; string offsets count from the new header.

use std::path::PathBuf;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// Magic, `nlibs`, `len_strings`, flags and padding, extension offset, 3 unused words.
const NEW_HEADER: usize = 20 + 4 + 4 + 4 + 4 + 12;
const NEW_ENTRY: usize = 24;
const OLD_ENTRY: usize = 12;

/// The ABI tag of this machine's 64-bit libraries in the entries' flags.
const fn this_abi() -> Option<i32> {
    if cfg!(target_arch = "x86_64") {
        Some(0x0300)
    } else if cfg!(target_arch = "aarch64") {
        Some(0x0a00)
    } else {
        None
    }
}

/// One library the cache knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedLibrary {
    pub soname: String,
    pub path: PathBuf,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn c_string(data: &[u8], at: usize) -> Option<&str> {
    let rest = data.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// Where the new-format table starts: at 0, or after the old table, aligned to 8.
fn new_table(data: &[u8]) -> Option<usize> {
    if data.starts_with(NEW_MAGIC) {
        return Some(0);
    }
    if !data.starts_with(OLD_MAGIC) {
        return None;
    }
    let count = usize::try_from(u32_at(data, 12)?).ok()?;
    let end = 16usize.checked_add(count.checked_mul(OLD_ENTRY)?)?;
    let start = end.checked_add(7)? & !7;
    data.get(start..)?.starts_with(NEW_MAGIC).then_some(start)
}

/// The libraries of this machine's ABI in a cache file, in the cache's order (the
/// order the loader prefers); `None` when the bytes are not a cache it can read.
pub fn parse(data: &[u8]) -> Option<Vec<CachedLibrary>> {
    let base = new_table(data)?;
    let count = usize::try_from(u32_at(data, base + 20)?).ok()?;
    let abi = this_abi()?;
    let mut libraries = Vec::new();
    for index in 0..count {
        let at = base + NEW_HEADER + index.checked_mul(NEW_ENTRY)?;
        let flags = i32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?);
        let key = usize::try_from(u32_at(data, at + 4)?).ok()?;
        let value = usize::try_from(u32_at(data, at + 8)?).ok()?;
        if flags & 0xff00 != abi {
            continue;
        }
        let (Some(soname), Some(path)) = (c_string(data, base + key), c_string(data, base + value))
        else {
            return None;
        };
        libraries.push(CachedLibrary {
            soname: soname.to_owned(),
            path: PathBuf::from(path),
        });
    }
    Some(libraries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache in the new format with the given (flags, soname, path) entries.
    fn cache(entries: &[(i32, &str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let table = NEW_HEADER + entries.len() * NEW_ENTRY;
        let mut offsets = Vec::new();
        for (_, soname, path) in entries {
            let key = table + strings.len();
            strings.extend_from_slice(soname.as_bytes());
            strings.push(0);
            let value = table + strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            offsets.push((key, value));
        }
        let mut data = NEW_MAGIC.to_vec();
        data.extend_from_slice(&u32::try_from(entries.len()).unwrap_or(0).to_le_bytes());
        data.extend_from_slice(&u32::try_from(strings.len()).unwrap_or(0).to_le_bytes());
        data.resize(NEW_HEADER, 0);
        for ((flags, _, _), (key, value)) in entries.iter().zip(offsets) {
            data.extend_from_slice(&flags.to_le_bytes());
            data.extend_from_slice(&u32::try_from(key).unwrap_or(0).to_le_bytes());
            data.extend_from_slice(&u32::try_from(value).unwrap_or(0).to_le_bytes());
            data.extend_from_slice(&[0; 12]);
        }
        data.extend_from_slice(&strings);
        data
    }

    #[test]
    fn entries_of_other_abis_are_skipped() {
        let Some(abi) = this_abi() else { return };
        let other = if abi == 0x0300 { 0x0a00 } else { 0x0300 };
        let data = cache(&[
            (abi | 3, "libcuda.so.1", "/usr/lib/libcuda.so.1"),
            (other | 3, "libcuda.so.1", "/usr/lib32/libcuda.so.1"),
        ]);
        let found = parse(&data).expect("a cache");
        assert_eq!(
            found,
            [CachedLibrary {
                soname: "libcuda.so.1".to_owned(),
                path: PathBuf::from("/usr/lib/libcuda.so.1"),
            }]
        );
    }

    #[test]
    fn truncated_or_foreign_bytes_are_not_a_cache() {
        let Some(abi) = this_abi() else { return };
        let data = cache(&[(abi | 3, "libm.so.6", "/lib/libm.so.6")]);
        for cut in [10, NEW_HEADER, NEW_HEADER + 10, data.len() - 3] {
            assert_eq!(parse(&data[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse(b"not a cache at all, really"), None);
    }
}
