//! Unpacking refuses hostile and broken archives and leaves nothing behind; good ones
//! unpack with links, exec bits and the top folder stripped.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cudapkgs_redist::Error;
use cudapkgs_redist::unpack::{Limits, unpack};
use cudapkgs_testkit::ustar::{Member, declare_size, file, folder, pax_header, symlink, tar, xz};

/// Unpacks `archive` bytes into `<dir>/target`; on error checks nothing was left.
fn try_unpack(dir: &Path, archive: &[u8], limits: Limits) -> Result<(), Error> {
    let path = dir.join("archive.tar.xz");
    std::fs::write(&path, archive).expect("write");
    let result = unpack(&path, &dir.join("target"), limits);
    if result.is_err() {
        let left: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .filter(|n| n != "archive.tar.xz" && n != "outside")
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    result
}

fn refused(members: &[Member<'_>], expected: &str) {
    let dir = tempfile::tempdir().expect("temp");
    let error = try_unpack(dir.path(), &xz(&tar(members)), Limits::default())
        .expect_err("a hostile archive is refused");
    let message = error.to_string();
    assert!(message.contains(expected), "{message}");
    assert!(message.contains("nothing was unpacked"), "{message}");
}

#[test]
fn a_good_archive_unpacks_with_links_modes_and_no_top_folder() {
    let dir = tempfile::tempdir().expect("temp");
    let archive = tar(&[
        folder("pkg-archive/"),
        folder("pkg-archive/lib/"),
        file("pkg-archive/lib/libx.so.1.2", b"\x7fELF..."),
        symlink("pkg-archive/lib/libx.so.1", "libx.so.1.2"),
        symlink("pkg-archive/lib/libx.so", "libx.so.1"),
        Member {
            name: "pkg-archive/bin/tool",
            kind: b'0',
            mode: 0o755,
            link: "",
            data: b"#!/bin/sh\n",
        },
        Member {
            name: "pkg-archive/lib/hard",
            kind: b'1',
            mode: 0o644,
            link: "pkg-archive/lib/libx.so.1.2",
            data: b"",
        },
    ]);
    try_unpack(dir.path(), &xz(&archive), Limits::default()).expect("unpacks");
    let target = dir.path().join("target");
    assert_eq!(
        std::fs::read(target.join("lib/libx.so")).expect("through links"),
        b"\x7fELF..."
    );
    assert_eq!(
        std::fs::read_link(target.join("lib/libx.so.1")).expect("link"),
        Path::new("libx.so.1.2")
    );
    let mode = std::fs::metadata(target.join("bin/tool"))
        .expect("tool")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
    assert_eq!(
        std::fs::read(target.join("lib/hard")).expect("hard link"),
        b"\x7fELF..."
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(left.len(), 2, "only the archive and the target: {left:?}");
}

#[test]
fn hostile_archives_are_refused_whole() {
    refused(
        &[file("top/ok", b"x"), file("top/../../escape", b"x")],
        "leaves the archive's folder",
    );
    refused(
        &[file("/tmp/absolute", b"x")],
        "leaves the archive's folder",
    );
    refused(
        &[symlink("top/lib", "../../etc")],
        "points outside the archive",
    );
    refused(
        &[symlink("top/abs", "/etc/passwd")],
        "points outside the archive",
    );
    // A link that is harmless alone, then a file written through it.
    refused(
        &[symlink("top/lib", "."), file("top/lib/x", b"x")],
        "entry top/lib/x: top/lib is a symbolic link, not a folder",
    );
    refused(
        &[Member {
            name: "top/h",
            kind: b'1',
            mode: 0o644,
            link: "../outside",
            data: b"",
        }],
        "leaves the archive's folder",
    );
    refused(
        &[Member {
            name: "top/dev",
            kind: b'3',
            mode: 0o644,
            link: "",
            data: b"",
        }],
        "not a file, folder or link",
    );
    refused(
        &[Member {
            name: "top/fifo",
            kind: b'6',
            mode: 0o644,
            link: "",
            data: b"",
        }],
        "not a file, folder or link",
    );
}

#[test]
fn entries_of_other_types_are_named_in_words() {
    for (kind, words) in [
        (b'6', "p/x is a named pipe (FIFO)"),
        (b'3', "p/x is a character device"),
        (b'4', "p/x is a block device"),
        (b'S', "p/x is a GNU sparse file"),
        (b'V', "p/x is of the unknown type `V`"),
    ] {
        let member = Member {
            name: "p/x",
            kind,
            mode: 0o644,
            link: "",
            data: b"",
        };
        refused(&[folder("p/"), member], words);
    }
}

#[test]
fn a_link_escaping_the_stripped_top_folder_is_refused() {
    // Inside the archive, but outside the package once its top folder is stripped.
    refused(
        &[
            folder("top/"),
            file("top/a", b"x"),
            symlink("top/up", "../top/a"),
        ],
        "points outside the package",
    );
}

#[test]
fn what_a_tar_unpacks_to_is_bounded_by_its_size() {
    // One entry declaring 3 GiB in an archive of a few hundred bytes: the bound is
    // 1 GiB for small archives (256 times the size for big ones), whatever the limits
    // allow, and the entry is refused before a byte of it is written.
    let mut archive = tar(&[folder("top/"), file("top/big", b"")]);
    let header = &mut archive[512..1024];
    declare_size(header, 3 << 30);
    let dir = tempfile::tempdir().expect("temp");
    let error = try_unpack(dir.path(), &xz(&archive), Limits::default()).expect_err("bounded");
    assert!(
        error
            .to_string()
            .contains("unpacks to more than 1073741824 bytes"),
        "{error}"
    );
}

#[test]
fn bombs_and_broken_archives_are_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let zeros = vec![0u8; 4 << 20];
    let bomb = xz(&tar(&[file("top/zeros", &zeros)]));
    assert!(
        bomb.len() < 4096,
        "4 MiB of zeros compress to {} bytes",
        bomb.len()
    );
    let limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };
    let error = try_unpack(dir.path(), &bomb, limits).expect_err("over the bound");
    assert!(
        error.to_string().contains("more than 1048576 bytes"),
        "{error}"
    );

    let many: Vec<String> = (0..101).map(|i| format!("top/f{i}")).collect();
    let members: Vec<Member> = many.iter().map(|n| file(n, b"")).collect();
    let error = try_unpack(dir.path(), &xz(&tar(&members)), limits).expect_err("too many");
    assert!(
        error.to_string().contains("more than 100 entries"),
        "{error}"
    );

    let good = xz(&tar(&[
        file("top/a", &vec![7u8; 100_000]),
        file("top/b", b"b"),
    ]));
    let error =
        try_unpack(dir.path(), &good[..good.len() / 2], Limits::default()).expect_err("truncated");
    assert!(
        error.to_string().contains("damaged or truncated"),
        "{error}"
    );

    let error =
        try_unpack(dir.path(), b"not an archive at all", Limits::default()).expect_err("garbage");
    assert!(
        error.to_string().contains("not a tar.xz, tar.gz or zip"),
        "{error}"
    );
}

fn zip(members: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, mode, data) in members {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(*mode);
        if mode & 0o170_000 == 0o120_000 {
            writer
                .add_symlink(*name, std::str::from_utf8(data).expect("utf-8"), options)
                .expect("link");
        } else {
            writer.start_file(*name, options).expect("member");
            writer.write_all(data).expect("write");
        }
    }
    writer.finish().expect("zip").into_inner()
}

#[test]
fn wheels_unpack_and_hostile_zips_are_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let good = zip(&[
        ("nvidia/cu13/lib/libx.so.13", 0o100_644, b"elf"),
        ("nvidia/cu13/bin/tool", 0o100_755, b"#!"),
        ("nvidia/cu13/lib/libx.so", 0o120_777, b"libx.so.13"),
    ]);
    try_unpack(dir.path(), &good, Limits::default()).expect("unpacks");
    let target = dir.path().join("target/cu13");
    assert_eq!(
        std::fs::read(target.join("lib/libx.so")).expect("link"),
        b"elf"
    );
    let mode = std::fs::metadata(target.join("bin/tool"))
        .expect("tool")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);

    for (members, expected) in [
        (
            vec![("../evil", 0o100_644, &b"x"[..])],
            "leaves the archive's folder",
        ),
        (
            vec![("a/link", 0o120_777, &b"../../etc"[..])],
            "points outside the archive",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp");
        let error = try_unpack(dir.path(), &zip(&members), Limits::default()).expect_err("refused");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

/// A folder beside the target with one file, to prove nothing outside changed.
fn sentinel(dir: &Path) -> std::path::PathBuf {
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("keep"), b"keep").expect("write");
    outside
}

fn assert_untouched(outside: &Path) {
    let names: Vec<_> = std::fs::read_dir(outside)
        .expect("outside")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["keep"], "nothing planted or removed outside");
    assert_eq!(std::fs::read(outside.join("keep")).expect("read"), b"keep");
}

#[test]
fn link_chains_that_resolve_outside_are_refused() {
    // `y -> .` makes `y/y/y/y/../../..` look four levels deep; it resolves to the
    // package's top, then three levels above it.
    let dir = tempfile::tempdir().expect("temp");
    let outside = sentinel(dir.path());
    let error = try_unpack(
        dir.path(),
        &xz(&tar(&[
            folder("top/"),
            symlink("top/y", "."),
            symlink("top/lib", "y/y/y/y/../../../outside"),
            file("top/lib/planted", b"x"),
        ])),
        Limits::default(),
    )
    .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("is a symbolic link, not a folder"),
        "{error}"
    );
    assert_untouched(&outside);
    refused(
        &[
            folder("top/"),
            symlink("top/y", "."),
            symlink("top/lib", "y/y/y/y/../../../outside"),
        ],
        "link lib -> y/y/y/y/../../../outside points outside the package",
    );
    // Each link inside by its words, out only together: `p -> q/..` with `q -> .`.
    refused(
        &[
            folder("top/"),
            symlink("top/p", "q/.."),
            symlink("top/q", "."),
        ],
        "link p -> q/.. points outside the package",
    );
    refused(
        &[folder("top/"), symlink("top/a", "b"), symlink("top/b", "a")],
        "loops through more than 40 links",
    );
}

#[test]
fn hard_links_never_reach_through_links() {
    refused(
        &[
            folder("top/"),
            file("top/real", b"x"),
            symlink("top/alias", "real"),
            Member {
                name: "top/hard",
                kind: b'1',
                mode: 0o644,
                link: "top/alias",
                data: b"",
            },
        ],
        "names a symbolic link",
    );
    refused(
        &[
            folder("top/"),
            symlink("top/y", "."),
            file("top/real", b"x"),
            Member {
                name: "top/hard",
                kind: b'1',
                mode: 0o644,
                link: "top/y/real",
                data: b"",
            },
        ],
        "names no earlier file",
    );
}

/// A GNU long-name (`L`) or long-link (`K`) record, then the entry it names.
fn long_record(kind: u8, data: &[u8]) -> Member<'_> {
    Member {
        name: "././@LongLink",
        kind,
        mode: 0o644,
        link: "",
        data,
    }
}

#[test]
fn long_names_and_link_targets_are_bounded() {
    let huge = vec![b'a'; 1 << 20];
    refused(
        &[long_record(b'K', &huge), symlink("top/l", "placeholder")],
        "a long link is longer than 4096 bytes",
    );
    refused(
        &[long_record(b'L', &huge), file("top/f", b"x")],
        "a long name is longer than 4096 bytes",
    );
    let pax = vec![b'x'; 2 << 20];
    refused(
        &[pax_header("top/PaxHeader", &pax), file("top/f", b"x")],
        "a PAX header is longer than 1048576 bytes",
    );
    // A long name within the bound is honoured.
    let dir = tempfile::tempdir().expect("temp");
    let name = format!("top/{}", "n".repeat(200));
    let mut record = name.clone().into_bytes();
    record.push(0);
    try_unpack(
        dir.path(),
        &xz(&tar(&[
            long_record(b'L', &record),
            file("top/short", b"long"),
        ])),
        Limits::default(),
    )
    .expect("unpacks");
    assert_eq!(
        std::fs::read(dir.path().join("target").join("n".repeat(200))).expect("long name"),
        b"long"
    );
    let long_target = "t".repeat(5000);
    let dir = tempfile::tempdir().expect("temp");
    let error = try_unpack(
        dir.path(),
        &zip(&[("top/l", 0o120_777, long_target.as_bytes())]),
        Limits::default(),
    )
    .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("a link target is longer than 4096 bytes"),
        "{error}"
    );
}

#[test]
fn paths_and_link_targets_deeper_than_the_bound_are_refused() {
    let long = |text: String| {
        let mut record = text.into_bytes();
        record.push(0);
        record
    };
    // 257 components, then 256: the bound is on components, whatever their length.
    let too_deep = long(format!("top/{}f", "d/".repeat(255)));
    refused(
        &[long_record(b'L', &too_deep), file("top/f", b"x")],
        "entry top/d/d/d/… has 257 path components, more than the 256 accepted",
    );
    let deep_target = long("a/".repeat(257));
    refused(
        &[
            long_record(b'K', &deep_target),
            symlink("top/l", "placeholder"),
        ],
        "the target of link top/l: a/a/a/a/… has 257 path components, more than the 256 accepted",
    );
    let deepest = long(format!("top/{}f", "d/".repeat(254)));
    let dir = tempfile::tempdir().expect("temp");
    try_unpack(
        dir.path(),
        &xz(&tar(&[long_record(b'L', &deepest), file("top/f", b"x")])),
        Limits::default(),
    )
    .expect("256 components unpack");
}

#[test]
fn a_pax_size_that_disagrees_with_its_header_is_refused() {
    let record = b"13 size=9999\n";
    refused(
        &[pax_header("top/PaxHeader", record), file("top/f", b"x")],
        "its PAX size disagrees with its header",
    );
}

#[test]
fn a_fifo_named_as_the_archive_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp");
    let fifo = dir.path().join("archive.tar.xz");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let (sender, receiver) = std::sync::mpsc::channel();
    let target = dir.path().join("target");
    std::thread::spawn(move || {
        let _ = sender.send(unpack(&fifo, &target, Limits::default()).map_err(|e| {
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            format!("{e}: {}", cause.unwrap_or_default())
        }));
    });
    let result = receiver
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("unpacking a FIFO must not wait for a writer");
    let error = result.expect_err("refused");
    assert!(error.contains("is a FIFO, not a file"), "{error}");
}

#[test]
fn work_folders_of_killed_unpacks_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().expect("temp");
    // What a killed process (an id no process can have) left beside its target.
    let abandoned = dir.path().join(".cudapkgs-unpack-4294967295-1-1/raw/top");
    std::fs::create_dir_all(&abandoned).expect("mkdir");
    try_unpack(
        dir.path(),
        &xz(&tar(&[file("top/f", b"x")])),
        Limits::default(),
    )
    .expect("unpacks");
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["archive.tar.xz", "target"]);
}
