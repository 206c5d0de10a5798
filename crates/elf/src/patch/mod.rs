//! Rewriting runpaths, needed libraries and sonames as a plan of positional writes:
//! the dynamic entries changed (`entries`), their strings placed (`strings`), and the
//! writes laid out, in place or in a region at the end of the file (`region`).
//!
//! When new strings fit (an identical string already exists, or a runpath or soname
//! being replaced owns a slot large enough) and the dynamic table has room, the plan
//! changes bytes in place. Otherwise it adds one region at the end of the file, mapped
//! by one new `PT_LOAD`: a copy of the program header table (which must grow by that
//! entry), the dynamic table if it must grow, and the dynamic string table with the new
//! strings. The region's virtual address is its file offset plus the first segment's
//! address-minus-offset, so that kernels computing `AT_PHDR` from `e_phoff` find the
//! moved table; it lies above every segment and keeps every alignment. A file that
//! already ends in such a region gets it rebuilt in place, so repeated rewrites neither
//! add segments nor grow the file beyond the strings they add.

mod entries;
mod region;
mod strings;

use cudapkgs_tree::Rewrite;

use crate::error::Error;
use crate::layout::{DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, Layout};

pub use entries::written_as_rpath;

/// What to do with the search path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RunpathChange {
    #[default]
    Keep,
    Set(String),
    Remove,
}

/// The changes to make to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub runpath: RunpathChange,
    /// Store the search path as `DT_RPATH` (searched before `LD_LIBRARY_PATH`, and for the
    /// libraries' own dependencies too). Without it a new search path keeps the kind the
    /// file has (`written_as_rpath`), `DT_RUNPATH` for a file with neither.
    pub force_rpath: bool,
    /// `DT_NEEDED` entries to rename: `(old, new)`.
    pub replace_needed: Vec<(String, String)>,
    pub soname: Option<String>,
}

/// A rewrite of the file, and what kind of change it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The positional writes against a copy of the original file.
    pub rewrite: Rewrite,
    /// False when the file already is as asked: nothing to write.
    pub changed: bool,
    /// True when a region was added or rebuilt at the end of the file.
    pub grew: bool,
}

/// Plans the rewrite of the ELF file `data`.
pub fn plan(data: &[u8], changes: &Changes) -> Result<Plan, Error> {
    // Only files the loader's view accepts are rewritten: whatever it refuses (a
    // truncated interpreter, say) would stay broken after the rewrite.
    if data.starts_with(b"\x7fELF") && data.get(4..6) != Some(&[2, 1]) {
        return Err(Error::Unsupported(
            "only 64-bit little-endian ELF files (x86_64, aarch64) can be rewritten".into(),
        ));
    }
    let view = crate::read_dynamic(data)?;
    let layout = Layout::read(data)?;
    if !agrees(&layout, &view) {
        return Err(Error::malformed(
            layout.phoff,
            "the program headers describe the dynamic table in two ways; refusing to guess",
        ));
    }
    let Some(edited) = entries::edited(&layout, changes) else {
        return Ok(Plan {
            rewrite: Rewrite::in_place(layout.file_len),
            changed: false,
            grew: false,
        });
    };
    let (entries, placement) = strings::place(&layout, edited, changes)?;
    region::plan(&layout, entries, placement)
}

/// Whether the rewriter's reading of the dynamic table says what the loader's view says:
/// files where the two differ (overlapping headers, several dynamic segments) are
/// ambiguous.
fn agrees(layout: &Layout, view: &crate::DynamicInfo) -> bool {
    let strings = |tag: i64| -> Vec<Option<String>> {
        layout
            .dynamic
            .iter()
            .filter(|(t, _)| *t == tag)
            .map(|(_, value)| {
                layout
                    .string(*value)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
            })
            .collect()
    };
    let first = |tag: i64| strings(tag).into_iter().next().flatten();
    let needed: Vec<Option<String>> = view.needed.iter().cloned().map(Some).collect();
    strings(DT_NEEDED) == needed
        && first(DT_RUNPATH) == view.runpath
        && first(DT_RPATH) == view.rpath
        && first(DT_SONAME) == view.soname
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_dynamic;

    fn library() -> Vec<u8> {
        let candidates = [
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/usr/lib/x86_64-linux-gnu/libm.so.6",
        ];
        let path = candidates
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("libm");
        std::fs::read(path).expect("read")
    }

    fn set(path: &str) -> Changes {
        Changes {
            runpath: RunpathChange::Set(path.into()),
            ..Changes::default()
        }
    }

    #[test]
    fn set_read_back_and_idempotent() {
        let original = library();
        let plan1 = plan(&original, &set("$ORIGIN/../lib:/opt/cuda/lib64")).expect("plan");
        assert!(plan1.changed && plan1.grew);
        let once = plan1.rewrite.apply_in_memory(&original);
        let info = read_dynamic(&once).expect("readable");
        assert_eq!(
            info.runpath.as_deref(),
            Some("$ORIGIN/../lib:/opt/cuda/lib64")
        );
        assert_eq!(info.needed, read_dynamic(&original).expect("orig").needed);
        // Same change again: nothing to do.
        assert!(
            !plan(&once, &set("$ORIGIN/../lib:/opt/cuda/lib64"))
                .expect("plan")
                .changed
        );
        // Another long value: the region is rebuilt, not stacked.
        let twice = plan(&once, &set("/a/much/longer/runpath/than/before/by/far"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&once);
        let thrice = plan(
            &twice,
            &set("/another/long/runpath/value/for/the/third/time"),
        )
        .expect("plan")
        .rewrite
        .apply_in_memory(&twice);
        let segments = |data: &[u8]| u16::from_le_bytes([data[56], data[57]]);
        assert_eq!(segments(&once), segments(&thrice));
        assert!(
            thrice.len() < once.len() + 256,
            "{} vs {}",
            thrice.len(),
            once.len()
        );
        assert_eq!(
            read_dynamic(&thrice).expect("readable").runpath.as_deref(),
            Some("/another/long/runpath/value/for/the/third/time")
        );
    }

    #[test]
    fn remove_and_shorter_values_stay_in_place() {
        let original = library();
        let with = plan(&original, &set("/long/path/one:/long/path/two"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&original);
        let shorter = plan(&with, &set("/short")).expect("plan");
        assert!(!shorter.grew && shorter.rewrite.truncate.is_none());
        let shortened = shorter.rewrite.apply_in_memory(&with);
        assert_eq!(shortened.len(), with.len());
        assert_eq!(
            read_dynamic(&shortened)
                .expect("readable")
                .runpath
                .as_deref(),
            Some("/short")
        );
        let removed = plan(
            &shortened,
            &Changes {
                runpath: RunpathChange::Remove,
                ..Changes::default()
            },
        )
        .expect("plan")
        .rewrite
        .apply_in_memory(&shortened);
        let info = read_dynamic(&removed).expect("readable");
        assert_eq!((info.runpath, info.rpath), (None, None));
    }

    #[test]
    fn rpath_soname_and_needed() {
        let original = library();
        let changes = Changes {
            runpath: RunpathChange::Set("$ORIGIN".into()),
            force_rpath: true,
            replace_needed: vec![("libc.so.6".into(), "libc-renamed.so.6".into())],
            soname: Some("libm-custom.so.6".into()),
        };
        let out = plan(&original, &changes)
            .expect("plan")
            .rewrite
            .apply_in_memory(&original);
        let info = read_dynamic(&out).expect("readable");
        assert_eq!(
            (info.rpath.as_deref(), info.runpath.as_deref()),
            (Some("$ORIGIN"), None)
        );
        assert_eq!(info.soname.as_deref(), Some("libm-custom.so.6"));
        assert!(
            info.needed.contains(&"libc-renamed.so.6".to_owned())
                && !info.needed.contains(&"libc.so.6".to_owned())
        );
    }

    #[test]
    fn edits_keep_rpath_as_rpath() {
        let force = |path: &str| Changes {
            force_rpath: true,
            ..set(path)
        };
        let original = library();
        let with_rpath = plan(&original, &force("/a"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&original);
        let search_paths = |data: &[u8]| {
            let info = read_dynamic(data).expect("readable");
            (info.rpath, info.runpath)
        };
        assert_eq!(search_paths(&with_rpath), (Some("/a".into()), None));
        // Shorter (in place), then longer (a new region): DT_RPATH both times.
        let shorter = plan(&with_rpath, &set("/"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&with_rpath);
        assert_eq!(search_paths(&shorter), (Some("/".into()), None));
        let longer = "/a/longer/search/path/than/any/string/of/the/file";
        let longer_plan = plan(&shorter, &set(longer)).expect("plan");
        assert!(longer_plan.grew);
        let grown = longer_plan.rewrite.apply_in_memory(&shorter);
        assert_eq!(search_paths(&grown), (Some(longer.into()), None));
        // The same value again changes nothing (it used to become DT_RUNPATH).
        assert!(!plan(&grown, &set(longer)).expect("plan").changed);
        // A file with neither gets DT_RUNPATH, as one with DT_RUNPATH keeps it.
        let fresh = plan(&original, &set("/b"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&original);
        assert_eq!(search_paths(&fresh), (None, Some("/b".into())));
        let again = plan(&fresh, &set("/c"))
            .expect("plan")
            .rewrite
            .apply_in_memory(&fresh);
        assert_eq!(search_paths(&again), (None, Some("/c".into())));
    }

    /// Found by review: a section whose size reaches past the end of the address space
    /// overflowed the planner's arithmetic (a panic, or a wrapped end in a release
    /// build). The input is the `elf_patch` fuzz target's regression file.
    #[test]
    fn sections_past_the_end_of_the_file_are_refused() {
        let input = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/elf-patch-section-size-overflows");
        let data = std::fs::read(input).expect("the regression file");
        let long = "$ORIGIN:/run/opengl-driver/lib:/a/longer/folder/to/force/a/new/region";
        let error = plan(&data, &set(long)).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "malformed ELF file at offset 0x3128: section 1 (at 0x238, 18446744073709551615 \
             bytes) extends past the end of the file (13928 bytes)"
        );
        // One byte past the end is refused too; a section ending at the end is not.
        let mut data = data;
        let size_at = 0x3128 + 32;
        let past = (data.len() - 0x238 + 1) as u64;
        data[size_at..size_at + 8].copy_from_slice(&past.to_le_bytes());
        assert!(matches!(
            plan(&data, &set(long)),
            Err(Error::Malformed { .. })
        ));
        data[size_at..size_at + 8].copy_from_slice(&(past - 1).to_le_bytes());
        assert!(plan(&data, &set(long)).is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_rewrite() {
        assert_eq!(plan(b"text", &set("/x")), Err(Error::NotElf));
        let mut elf32 = library();
        elf32[4] = 1;
        assert!(matches!(
            plan(&elf32, &set("/x")),
            Err(Error::Unsupported(_))
        ));
        let original = library();
        for cut in [16, 64, 300, original.len() / 2] {
            assert!(plan(&original[..cut], &set("/x")).is_err(), "{cut}");
        }
    }
}
