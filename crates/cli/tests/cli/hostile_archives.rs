//! Hostile archives given to `split` and to `build PACKAGE=FILE`: link chains that look
//! inside but resolve outside, files written through them, hard links reaching through
//! them, links the fix-ups would follow, and zips that name one entry's bytes many times. Each is refused with nothing changed outside,
//! nothing left beside the output, and nothing in the store.

use crate::common;

use std::path::{Path, PathBuf};

use common::tar::{Member, file, hard_link, nvidia_archive, symlink};
use common::{run, run_on_store, s};
use cudapkgs_testkit::tree_snapshot;

fn archive(dir: &Path, members: &[Member<'_>]) -> PathBuf {
    nvidia_archive(dir, "libfoo", "1.0.0", members)
}

/// The attacks, each a whole archive: what it tries, and its members. The package sits
/// in `pkg/`; `deep` is a link target from `chains`.
fn attacks(deep: &str) -> Vec<(&'static str, &'static str, Vec<Member<'_>>)> {
    vec![
        (
            "a file planted through a chain that looks inside",
            "pkg/lib is a symbolic link, not a folder",
            vec![
                symlink("pkg/y", "."),
                symlink("pkg/lib", deep),
                file("pkg/lib/planted", b"planted"),
            ],
        ),
        (
            "a chain the fix-ups would follow (pkg-config is moved and removed)",
            "link pkg-config -> y/y/y/y/y/y/y/y/y/y/y/y/../",
            vec![
                symlink("pkg/y", "."),
                symlink("pkg/pkg-config", deep),
                file("pkg/include/x.h", b"int x;"),
            ],
        ),
        (
            "a hard link to an outside file's contents through a chain",
            "hard link pkg/lib/libcopied.so -> pkg/up/secret names no earlier file",
            vec![
                symlink("pkg/y", "."),
                symlink("pkg/up", deep),
                hard_link("pkg/lib/libcopied.so", "pkg/up/secret"),
            ],
        ),
    ]
}

/// Link targets that look twelve folders deep (`y -> .`), inside by their words, and
/// climb from 3 to 12 levels above the package: whatever the depth of the work folders,
/// one of them names a planted `outside/`.
fn chains() -> Vec<String> {
    (3..=12)
        .map(|ups| format!("{}{}outside", "y/".repeat(12), "../".repeat(ups)))
        .collect()
}

/// An `outside/` folder with two files in `work` and in each of its ancestors up to
/// `top` (the test's own folder): what escaping links would reach.
fn plant_sentinels(work: &Path, top: &Path) -> Vec<PathBuf> {
    let mut sentinels = Vec::new();
    for at in work.ancestors().take_while(|at| at.starts_with(top)) {
        let sentinel = at.join("outside");
        std::fs::create_dir(&sentinel).expect("mkdir");
        std::fs::write(sentinel.join("secret"), b"secret").expect("write");
        std::fs::write(sentinel.join("keep"), b"keep").expect("write");
        sentinels.push(sentinel);
    }
    sentinels
}

#[test]
fn split_refuses_hostile_archives_and_changes_nothing_outside() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path().join("a/b/c/d");
    std::fs::create_dir_all(&work).expect("mkdir");
    let sentinels = plant_sentinels(&work, dir.path());
    for deep in chains() {
        for (attack, expected, members) in attacks(&deep) {
            let before: Vec<_> = sentinels.iter().map(|p| tree_snapshot(p)).collect();
            let archive = archive(dir.path(), &members);
            let out = work.join("out");
            let (code, _, stderr) = run(&["split", s(&archive), "--out", s(&out)]);
            assert_eq!(code, 2, "{attack}: {stderr}");
            assert!(stderr.contains(expected), "{attack}: {stderr}");
            let after: Vec<_> = sentinels.iter().map(|p| tree_snapshot(p)).collect();
            assert_eq!(after, before, "{attack}: something outside changed");
            let left: Vec<_> = std::fs::read_dir(&work)
                .expect("work")
                .map(|e| e.expect("entry").file_name())
                .filter(|name| name != "outside")
                .collect();
            assert!(left.is_empty(), "{attack}: left {left:?}");
        }
    }
}

/// `build libfoo=ARCHIVE` into `store` is refused (exit 2) saying `expected`.
fn build_is_refused(
    dir: &Path,
    store: &Path,
    state: &Path,
    archive: &Path,
    attack: &str,
    expected: &str,
) {
    let input = format!("libfoo={}", archive.display());
    let (code, _, stderr) = run_on_store(
        store,
        state,
        &[
            "build",
            &input,
            "--no-gc-roots",
            "--cache",
            s(&dir.join("cache")),
        ],
    );
    assert_eq!(code, 2, "{attack}: {stderr}");
    assert!(stderr.contains(expected), "{attack}: {stderr}");
}

/// `store verify` finds `store` whole after `attack`.
fn store_is_whole(store: &Path, state: &Path, attack: &str) {
    let (code, stdout, _) = run_on_store(store, state, &["--json", "store", "verify"]);
    assert_eq!(code, 0, "{attack}: {stdout}");
}

#[test]
fn build_refuses_hostile_archives_and_adds_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    let store = dir.path().join("s/t/o/r/e");
    let state = dir.path().join("state");
    let above = store.parent().expect("parent");
    std::fs::create_dir_all(above).expect("mkdir");
    let sentinels = plant_sentinels(above, dir.path());
    for deep in chains() {
        for (attack, expected, members) in attacks(&deep) {
            let before: Vec<_> = sentinels.iter().map(|p| tree_snapshot(p)).collect();
            let archive = archive(dir.path(), &members);
            build_is_refused(dir.path(), &store, &state, &archive, attack, expected);
            let after: Vec<_> = sentinels.iter().map(|p| tree_snapshot(p)).collect();
            assert_eq!(after, before, "{attack}: something outside changed");
            let in_store: Vec<_> = std::fs::read_dir(&store)
                .expect("store")
                .map(|e| e.expect("entry").file_name())
                .filter(|name| name != "outside")
                .collect();
            assert!(
                in_store.is_empty(),
                "{attack}: the store holds {in_store:?}"
            );
            store_is_whole(&store, &state, attack);
        }
    }
}

#[test]
fn split_of_a_fifo_or_a_folder_holding_one_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp");
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).expect("mkdir");
    for fifo in [dir.path().join("archive.tar.xz"), folder.join("pipe")] {
        cudapkgs_testkit::make_fifo(&fifo);
    }
    for (input, expected) in [
        (dir.path().join("archive.tar.xz"), "is a FIFO, not a file"),
        (folder.clone(), "is a FIFO, which cannot be copied"),
    ] {
        let out = dir.path().join("out");
        let (code, _, stderr) = common::run_within(
            std::time::Duration::from_secs(30),
            &[],
            &["split", s(&input), "--out", s(&out)],
        );
        common::assert_refused(code, &stderr, expected);
        assert!(!out.exists());
    }
}

/// A wheel-like zip whose library's deflated bytes are named again `copies` times (more
/// central-directory entries, no data of their own): each name would unpack it again.
fn overlapping_zip(path: &Path, copies: usize) {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("pkg/lib/libfoo.so.1", options)
        .expect("start");
    zip.write_all(&vec![0u8; 4 << 20]).expect("write");
    for copy in 0..copies {
        zip.shallow_copy_file(
            "pkg/lib/libfoo.so.1",
            &format!("pkg/lib/libfoo-copy{copy}.so.1"),
        )
        .expect("copy");
    }
    let bytes = zip.finish().expect("finish").into_inner();
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_zip_naming_one_entry_many_times_is_refused_by_every_reader() {
    let dir = tempfile::tempdir().expect("temp");
    let archive = dir.path().join("bomb.zip");
    overlapping_zip(&archive, 100);
    let expected = "share the bytes at offset 0: one compressed stream under several names";

    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    let out = work.join("out");
    let (code, _, stderr) = run(&["split", s(&archive), "--out", s(&out)]);
    common::assert_refused(code, &stderr, expected);
    assert_eq!(std::fs::read_dir(&work).expect("work").count(), 0);

    let store = dir.path().join("store");
    let input = format!("libfoo={}", archive.display());
    let (code, _, stderr) = run(&[
        "build",
        &input,
        "--store-dir",
        s(&store),
        "--state-dir",
        s(&dir.path().join("state")),
        "--no-gc-roots",
        "--cache",
        s(&dir.path().join("cache")),
    ]);
    common::assert_refused(code, &stderr, expected);
    assert_eq!(std::fs::read_dir(&store).expect("store").count(), 0);

    let (code, stdout, stderr) = run(&["inspect", s(&archive)]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains(expected), "{stdout}{stderr}");
}

/// For the flattening attack: a link twelve folders deep in `lib/12/` climbing twelve
/// levels (to `lib/` as unpacked, to the top once flattened), and one at the top that
/// climbs through it to `outside/`.
fn flattening_names() -> [String; 3] {
    let deep = (1..=12)
        .map(|i| format!("a{i}"))
        .collect::<Vec<_>>()
        .join("/");
    [
        format!("pkg/lib/12/{deep}"),
        [".."; 12].join("/"),
        format!("lib/{deep}/{}outside/secret", "../".repeat(13)),
    ]
}

/// Links that stay inside the package as unpacked, and inside each output as split, but
/// lead out once the fix-ups have moved folders or once `out` (and `dev`) link the other
/// outputs' files: what each attack does, the refusal expected, whether `split` sees it
/// too (the `dev` links for linking are the build's alone), and the members.
fn links_out_of_outputs(
    flattening: &[String; 3],
) -> Vec<(&'static str, String, bool, Vec<Member<'_>>)> {
    let [moved, climb, reaching] = flattening;
    vec![
        (
            "a link the flattening of lib/12/ moves one level up",
            format!("link w -> {reaching} points outside the package after the fix-ups"),
            true,
            vec![
                symlink(moved, climb),
                file("pkg/lib/12/libfoo.so.1", b"x"),
                symlink("pkg/w", reaching),
            ],
        ),
        (
            "a link through one of the static output's links, missing from lib",
            "link w -> lib/a/l/.. points outside the package of output out, once out links the files of the other outputs".to_owned(),
            true,
            vec![
                symlink("pkg/lib/x.a", "p/q/r"),
                symlink("pkg/lib/a/l", "../x.a/../.."),
                symlink("pkg/w", "lib/a/l/.."),
            ],
        ),
        (
            "a link through the dev output's link for linking to a library that climbs",
            "link w -> lib/libfoo.so/../outside/secret points outside the package of output out, once out links the files of the other outputs".to_owned(),
            false,
            vec![
                symlink("pkg/lib/libfoo.so.1", ".."),
                symlink("pkg/w", "lib/libfoo.so/../outside/secret"),
            ],
        ),
    ]
}

#[test]
fn links_that_leave_the_outputs_once_linked_are_refused_before_anything_is_added() {
    let dir = tempfile::tempdir().expect("temp");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    let store = dir.path().join("store");
    let state = dir.path().join("state");
    let flattening = flattening_names();
    for (attack, expected, split_sees_it, members) in links_out_of_outputs(&flattening) {
        let archive = archive(dir.path(), &members);
        let out = work.join("out");
        let (code, _, stderr) = run(&["split", s(&archive), "--out", s(&out)]);
        if split_sees_it {
            assert_eq!(code, 2, "{attack}: {stderr}");
            assert!(stderr.contains(&expected), "{attack}: {stderr}");
            let left: Vec<_> = std::fs::read_dir(&work).expect("work").collect();
            assert!(left.is_empty(), "{attack}: left {left:?}");
        } else {
            assert_eq!(code, 0, "{attack}: {stderr}");
            std::fs::remove_dir_all(&out).expect("remove");
        }
        build_is_refused(dir.path(), &store, &state, &archive, attack, &expected);
        let in_store: Vec<_> = std::fs::read_dir(&store).expect("store").collect();
        assert!(
            in_store.is_empty(),
            "{attack}: the store holds {in_store:?}"
        );
        store_is_whole(&store, &state, attack);
    }
}
