//! Whether a file that uses the NVIDIA driver can find it. The driver comes with the
//! machine, never with a package: a store path must name the driver's folder in its
//! runpath (NixOS's `/run/opengl-driver/lib` by default), and a plain file must reach a
//! `libcuda.so.1` (or that folder) through its own search list or the system's folders.

use std::path::{Path, PathBuf};

use cudapkgs_elf::DynamicInfo;
use cudapkgs_elf::auto::opens_driver;
use cudapkgs_elf::loads::LoadName;
use cudapkgs_elf::resolve::{
    SearchPaths, is_driver_library, is_stub_folder, own_folders, real_path_in,
};

/// Whether the file at `path` needs or loads a driver library and is none itself.
pub fn uses_driver(path: &Path, info: &DynamicInfo, loads: &[LoadName]) -> bool {
    let own = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    !is_driver_library(own)
        && (info.needed.iter().any(|name| is_driver_library(name)) || opens_driver(loads))
}

/// The folders the file's own search lists name, in the loader's order, expanded for the
/// file found at `found_at` (inside the search's root, when there is one).
pub fn own_search(found_at: &Path, info: &DynamicInfo, search: &SearchPaths) -> Vec<PathBuf> {
    own_folders(found_at, info, search)
}

/// Whether a runpath or rpath entry, as written, names the driver folder.
pub fn names_driver_dir<'a>(entries: impl IntoIterator<Item = &'a str>, driver_dir: &Path) -> bool {
    entries
        .into_iter()
        .any(|entry| Path::new(entry) == driver_dir)
}

/// Whether a search through `folders` (paths of this machine) finds the driver: one of
/// them is the driver folder (named inside the search's root), or holds a `libcuda.so.1`
/// outside a stub folder.
pub fn reaches_driver<'a>(
    folders: impl IntoIterator<Item = &'a Path>,
    driver_dir: &Path,
    search: &SearchPaths,
) -> bool {
    let driver_dir = search.in_root(driver_dir);
    folders.into_iter().any(|folder| {
        folder == driver_dir
            || (!is_stub_folder(folder)
                && real_path_in(search.root.as_deref(), &folder.join("libcuda.so.1"))
                    .is_some_and(|real| real.is_file()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_folder_is_named_or_holds_the_driver() {
        let driver = Path::new("/run/opengl-driver/lib");
        assert!(names_driver_dir(
            ["$ORIGIN", "/run/opengl-driver/lib/"],
            driver
        ));
        assert!(!names_driver_dir(["$ORIGIN", "/run/opengl-driver"], driver));
        let dir = tempfile::tempdir().expect("temp");
        let stubs = dir.path().join("stubs");
        std::fs::create_dir(&stubs).expect("mkdir");
        std::fs::write(stubs.join("libcuda.so.1"), b"stub").expect("write");
        let here = SearchPaths::default();
        assert!(!reaches_driver([stubs.as_path()], driver, &here));
        std::fs::write(dir.path().join("libcuda.so.1"), b"driver").expect("write");
        assert!(reaches_driver([stubs.as_path(), dir.path()], driver, &here));
        assert!(reaches_driver([driver], driver, &here));
        // Inside a root, the driver folder is the root's.
        let root = SearchPaths {
            root: Some(dir.path().to_owned()),
            ..SearchPaths::default()
        };
        let inside = dir.path().join("run/opengl-driver/lib");
        assert!(reaches_driver([inside.as_path()], driver, &root));
        assert!(!reaches_driver([driver], driver, &root));
    }
}
