//! tar.xz archives in NVIDIA's naming, made of members written byte by byte (see
//! `cudapkgs_testkit::ustar`), so that tests can make any name, link and shape.

use std::path::{Path, PathBuf};

pub(crate) use cudapkgs_testkit::ustar::{Member, file, hard_link, symlink, tar, xz};

/// `dir/<package>-linux-x86_64-<version>-archive.tar.xz` holding `members`: the name
/// `build PACKAGE=FILE` takes the version from.
pub(crate) fn nvidia_archive(
    dir: &Path,
    package: &str,
    version: &str,
    members: &[Member<'_>],
) -> PathBuf {
    let path = dir.join(format!("{package}-linux-x86_64-{version}-archive.tar.xz"));
    std::fs::write(&path, xz(&tar(members))).expect("write");
    path
}
