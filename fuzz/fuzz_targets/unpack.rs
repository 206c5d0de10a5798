//! The unpacker, the fix-ups and the split on hostile archives.
//!
//! Inputs are either raw archive bytes (tar.xz, tar.gz or zip, chosen by the first byte)
//! or, more often, a list of tar entries (file, folder, symbolic or hard link, with any
//! name and target) written as a tar here, so that link chains and odd names are reached
//! quickly. Properties, checked against the kernel's own path resolution rather than the
//! unpacker's:
//! - a sentinel folder beside the work folder is never changed, whatever happens;
//! - a refused archive leaves nothing in the work folder;
//! - in an accepted archive, and in every output of its split, each link resolves inside
//!   (its package, or its output; `out`, which links the others' files, inside the split
//!   folder), followed as the kernel follows it;
//! - nothing but files, folders and links is ever created.
#![no_main]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use cudapkgs_redist::split::{FixupOptions, OutputLocations, fix_up, split};
use cudapkgs_redist::unpack::{Limits, unpack};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Kind {
    File,
    Folder,
    Symlink,
    Hardlink,
}

#[derive(Debug, Arbitrary)]
struct Member {
    kind: Kind,
    name: Name,
    target: Name,
    executable: bool,
    data: Vec<u8>,
}

/// A path made of a few components from a small alphabet that makes collisions, `..`,
/// `.`, the names the fix-ups look for and the stripped top folder likely.
#[derive(Debug, Arbitrary)]
struct Name(Vec<u8>);

const PARTS: &[&str] = &[
    "top", "..", ".", "y", "lib", "nvidia", "cu13", "pkg-config", "12", "x.pc", "a",
    "outside", "x.dist-info", "share", "pkgconfig", "include", "bin", "",
];

impl Name {
    fn text(&self) -> String {
        let mut text: Vec<&str> = self
            .0
            .iter()
            .take(8)
            .map(|b| PARTS[usize::from(*b) % PARTS.len()])
            .collect();
        if self.0.first().is_some_and(|b| b & 0x80 != 0) {
            text.insert(0, "");
        }
        text.join("/")
    }
}

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(u8, Vec<u8>),
    Entries(Vec<Member>),
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}", width = field.len() - 1);
    field[..text.len()].copy_from_slice(text.as_bytes());
}

/// A ustar archive of `members`, written byte by byte (names over 100 bytes cut).
fn tar(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let (kind, data): (u8, &[u8]) = match m.kind {
            Kind::File => (b'0', &m.data),
            Kind::Folder => (b'5', b""),
            Kind::Symlink => (b'2', b""),
            Kind::Hardlink => (b'1', b""),
        };
        let mut header = [0u8; 512];
        let name = m.name.text();
        let name = &name.as_bytes()[..name.len().min(100)];
        header[..name.len()].copy_from_slice(name);
        octal(&mut header[100..108], if m.executable { 0o755 } else { 0o644 });
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], data.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = kind;
        let target = m.target.text();
        let target = &target.as_bytes()[..target.len().min(100)];
        header[157..157 + target.len()].copy_from_slice(target);
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn compressed(format: u8, body: &[u8]) -> Vec<u8> {
    match format % 3 {
        0 => {
            let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 0);
            encoder.write_all(body).expect("compress");
            encoder.finish().expect("compress")
        }
        1 => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(body).expect("compress");
            encoder.finish().expect("compress")
        }
        _ => body.to_vec(),
    }
}

/// Where the kernel's resolution of the link at `link` ends, as far as it exists, with
/// what is left applied by its words; `None` for a loop the kernel refuses.
fn kernel_resolution(link: &Path) -> Option<PathBuf> {
    let target = std::fs::read_link(link).expect("a link");
    let joined = link.parent().expect("parent").join(&target);
    let parts: Vec<Component<'_>> = joined.components().collect();
    for cut in (1..=parts.len()).rev() {
        let head: PathBuf = parts[..cut].iter().collect();
        let Ok(mut resolved) = std::fs::canonicalize(&head) else {
            continue;
        };
        for part in &parts[cut..] {
            match part {
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => resolved.push(name),
                _ => {}
            }
        }
        return Some(resolved);
    }
    None
}

/// Every link under `root` resolves inside it; only files, folders and links exist.
fn check_inside(root: &Path) {
    let canonical_root = std::fs::canonicalize(root).expect("root");
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("entry").path();
            let kind = path.symlink_metadata().expect("meta").file_type();
            if kind.is_symlink() {
                if let Some(end) = kernel_resolution(&path) {
                    assert!(
                        end.starts_with(&canonical_root),
                        "{} -> {} resolves to {}, outside {}",
                        path.display(),
                        std::fs::read_link(&path).expect("link").display(),
                        end.display(),
                        canonical_root.display()
                    );
                }
            } else if kind.is_dir() {
                pending.push(path);
            } else {
                assert!(kind.is_file(), "{} is not a file, folder or link", path.display());
            }
        }
    }
}

/// The sentinel's listing with sizes and change times: any write, creation or removal
/// under it changes this.
fn sentinel_state(sentinel: &Path) -> Vec<(PathBuf, u64, i64, i64)> {
    let mut state = Vec::new();
    let mut pending = vec![sentinel.to_owned()];
    while let Some(dir) = pending.pop() {
        let meta = dir.symlink_metadata().expect("sentinel");
        state.push((dir.clone(), meta.size(), meta.mtime_nsec(), meta.ctime_nsec()));
        if !meta.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&dir).expect("sentinel") {
            pending.push(entry.expect("entry").path());
        }
    }
    state.sort();
    state
}

fuzz_target!(|input: Input| {
    let archive = match &input {
        Input::Raw(format, body) => compressed(*format, body),
        Input::Entries(members) => compressed(u8::from(members.len() % 2 == 1) * 2, &tar(members)),
    };
    let base = if Path::new("/dev/shm").is_dir() { Path::new("/dev/shm") } else { Path::new("/tmp") };
    let dir = tempfile::tempdir_in(base).expect("temp");
    // `outside` is what `../outside` or `../../outside` from the package would reach.
    let sentinel = dir.path().join("outside");
    std::fs::create_dir_all(sentinel.join("folder")).expect("sentinel");
    std::fs::write(sentinel.join("keep"), b"keep").expect("sentinel");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work");
    std::os::unix::fs::symlink("../outside", work.join("outside")).expect("sentinel link");
    let before = sentinel_state(&sentinel);
    let path = dir.path().join("archive");
    std::fs::write(&path, &archive).expect("write");
    let target = work.join("target");
    let limits = Limits { max_bytes: 1 << 20, max_entries: 1000 };
    match unpack(&path, &target, limits) {
        Ok(()) => {
            check_inside(&target);
            let options = FixupOptions {
                locations: OutputLocations {
                    dev: work.join("out/dev"),
                    include: work.join("out/include"),
                    lib: work.join("out/lib"),
                },
                allow_usr: true,
            };
            if fix_up(&target, &options).is_ok() {
                // With `out` linking the other outputs' files: those links rise into
                // the split folder, so `out` is checked within it, the others alone.
                if let Ok(outputs) = split(&target, &work.join("out"), true) {
                    check_inside(&work.join("out"));
                    for output in outputs.iter().filter(|o| o.name != "out") {
                        check_inside(&work.join("out").join(output.name));
                    }
                }
            }
        }
        Err(_) => {
            let left: Vec<_> = std::fs::read_dir(&work)
                .expect("work")
                .map(|e| e.expect("entry").file_name())
                .filter(|name| name != "outside")
                .collect();
            assert!(left.is_empty(), "a refused archive left {left:?}");
        }
    }
    assert_eq!(sentinel_state(&sentinel), before, "something outside the target changed");
});
