//! Copying a tree (what `store add` stores) while it changes under the reader.
//!
//! Inputs are a small tree (files, some in a folder, some executable, a link) and up to
//! four changes, each made when the NAR stream reaches a given byte: a write in place, an
//! append, a truncation, a new file, a removed file, a file renamed over another, a mode
//! change, a file or the folder replaced by a link. Properties:
//! - an accepted copy is one state the tree was in (before the changes, or after one of
//!   them), never a mix of two;
//! - a refused copy leaves nothing;
//! - a copy during which nothing changed is accepted.
#![no_main]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cudapkgs_nix::nar;
use cudapkgs_store::snapshot;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct File {
    in_folder: bool,
    executable: bool,
    size: u16,
    seed: u8,
}

#[derive(Debug, Arbitrary)]
enum Kind {
    Write { at: u16, bytes: Vec<u8> },
    Append(Vec<u8>),
    Truncate(u16),
    Create,
    Remove,
    RenameOver,
    ToggleExecutable,
    ToLink,
    FolderToLink,
}

#[derive(Debug, Arbitrary)]
struct Change {
    /// The NAR byte at which it is made.
    at: u16,
    /// Which file (modulo the count).
    file: u8,
    kind: Kind,
}

#[derive(Debug, Arbitrary)]
struct Input {
    files: Vec<File>,
    link: bool,
    changes: Vec<Change>,
}

fn file_path(tree: &Path, index: usize, in_folder: bool) -> PathBuf {
    if in_folder {
        tree.join("folder").join(format!("f{index}"))
    } else {
        tree.join(format!("f{index}"))
    }
}

/// Makes `change` to the tree at `tree`, whose files are `files`; errors (a file already
/// removed) are changes that did not happen.
fn make(tree: &Path, files: &[PathBuf], change: &Change, serial: usize) {
    let file = &files[usize::from(change.file) % files.len()];
    let _ = match &change.kind {
        Kind::Write { at, bytes } => std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, bytes, u64::from(*at))),
        Kind::Append(bytes) => std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes)),
        Kind::Truncate(len) => std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .and_then(|f| f.set_len(u64::from(*len))),
        Kind::Create => std::fs::write(
            file.with_file_name(format!("new{serial}")),
            format!("new file {serial}"),
        ),
        Kind::Remove => std::fs::remove_file(file),
        Kind::RenameOver => {
            let replacement = tree.with_file_name(format!("replacement{serial}"));
            std::fs::write(&replacement, format!("replaced {serial}"))
                .and_then(|()| std::fs::rename(&replacement, file))
        }
        Kind::ToggleExecutable => std::fs::metadata(file).and_then(|m| {
            let mode = m.permissions().mode() ^ 0o100;
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode))
        }),
        Kind::ToLink => {
            std::fs::remove_file(file).and_then(|()| std::os::unix::fs::symlink("elsewhere", file))
        }
        Kind::FolderToLink => {
            let folder = tree.join("folder");
            let moved = tree.with_file_name(format!("moved{serial}"));
            std::fs::rename(&folder, moved)
                .and_then(|()| std::os::unix::fs::symlink(tree.with_file_name("outside"), folder))
        }
    };
}

/// The NAR of the tree now, or `None` if it cannot be read.
fn state(tree: &Path) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    nar::dump(tree, &mut bytes).ok().map(|()| bytes)
}

/// A tap that makes the changes as the stream passes their bytes, recording the tree's
/// state after each.
struct Changing<'a> {
    tree: &'a Path,
    files: &'a [PathBuf],
    changes: Vec<&'a Change>,
    seen: usize,
    made: usize,
    states: Vec<Option<Vec<u8>>>,
}

impl std::io::Write for Changing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.seen += buf.len();
        while let Some(change) = self.changes.get(self.made) {
            if usize::from(change.at) > self.seen {
                break;
            }
            make(self.tree, self.files, change, self.made);
            self.made += 1;
            self.states.push(state(self.tree));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|input: Input| {
    let dir = tempfile::tempdir().expect("temp");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("folder")).expect("mkdir");
    std::fs::create_dir(dir.path().join("outside")).expect("mkdir");
    std::fs::write(dir.path().join("outside/f0"), "outside the tree").expect("write");
    let files: Vec<PathBuf> = input
        .files
        .iter()
        .take(6)
        .enumerate()
        .map(|(index, file)| {
            let path = file_path(&tree, index, file.in_folder);
            let bytes: Vec<u8> = (0..usize::from(file.size) % 20_000)
                .map(|n| (n % 251) as u8 ^ file.seed)
                .collect();
            std::fs::write(&path, bytes).expect("write");
            if file.executable {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
            path
        })
        .collect();
    if files.is_empty() {
        return;
    }
    if input.link {
        std::os::unix::fs::symlink("f0", tree.join("link")).expect("link");
    }
    let mut changes: Vec<&Change> = input.changes.iter().take(4).collect();
    changes.sort_by_key(|change| change.at);
    let before = state(&tree);
    let mut tap = Changing {
        tree: &tree,
        files: &files,
        changes,
        seen: 0,
        made: 0,
        states: vec![before],
    };
    let copy = dir.path().join("copy");
    let copied = snapshot::copy(&tree, &copy, &mut tap);
    match &copied {
        Ok(()) => {
            let stored = state(&copy).expect("a copy dumps");
            assert!(
                tap.states.iter().flatten().any(|state| *state == stored),
                "the copy is none of the {} states the tree was in",
                tap.states.len()
            );
        }
        Err(_) => assert!(!copy.exists(), "a refused copy left {}", copy.display()),
    }
    assert!(
        tap.made > 0 || copied.is_ok(),
        "nothing changed, yet the copy was refused: {copied:?}"
    );
    // Let the temporary folder go: copied folders are read-only.
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(dir.path())
        .status();
});
