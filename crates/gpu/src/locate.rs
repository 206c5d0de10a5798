//! Where the NVIDIA driver's `libcuda.so.1` is on this machine.
//!
//! A folder the user names is the only place looked at. Otherwise, in order: NixOS's
//! driver folder, WSL's, then the host loader's cache, so a distribution's driver is
//! found where the loader would find it. Only `libcuda.so.1` counts: `libcuda.so` is
//! what the toolkit's stub folders hold.

use std::path::{Path, PathBuf};

use crate::error::GpuError;
use crate::ldcache;

/// The driver library's name: its soname.
pub const DRIVER_SONAME: &str = "libcuda.so.1";

/// NixOS's driver folder (`hardware.graphics`), the default runpath entry of Nix builds.
pub const NIXOS_DRIVER_FOLDER: &str = "/run/opengl-driver/lib";
/// Where WSL 2 puts the host's driver.
pub const WSL_DRIVER_FOLDER: &str = "/usr/lib/wsl/lib";
/// The host loader's cache.
pub const LOADER_CACHE: &str = "/etc/ld.so.cache";

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct DriverSearch {
    /// Look only here.
    pub folder: Option<PathBuf>,
    /// The file system root the standard places are under (`/` on a host).
    pub root: Option<PathBuf>,
}

/// The driver found, and every place looked at before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDriver {
    pub library: PathBuf,
    pub looked_in: Vec<PathBuf>,
}

impl FoundDriver {
    /// The folder the driver is in.
    pub fn folder(&self) -> &Path {
        self.library.parent().unwrap_or(Path::new("/"))
    }
}

impl DriverSearch {
    fn under_root(&self, path: &str) -> PathBuf {
        match &self.root {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        }
    }

    /// The first `libcuda.so.1` that is a file, or the places looked in.
    pub fn find(&self) -> Result<FoundDriver, GpuError> {
        let mut looked_in = Vec::new();
        let folders = match &self.folder {
            Some(folder) => vec![folder.clone()],
            None => vec![
                self.under_root(NIXOS_DRIVER_FOLDER),
                self.under_root(WSL_DRIVER_FOLDER),
            ],
        };
        for folder in folders {
            let candidate = folder.join(DRIVER_SONAME);
            looked_in.push(folder);
            if candidate.is_file() {
                return Ok(FoundDriver {
                    library: candidate,
                    looked_in,
                });
            }
        }
        if self.folder.is_none() {
            let cache = self.under_root(LOADER_CACHE);
            let cached = std::fs::read(&cache)
                .ok()
                .and_then(|data| ldcache::parse(&data))
                .unwrap_or_default();
            looked_in.push(cache);
            for library in cached {
                if library.soname == DRIVER_SONAME {
                    let path = self.under_root(&library.path.to_string_lossy());
                    if path.is_file() {
                        return Ok(FoundDriver {
                            library: path,
                            looked_in,
                        });
                    }
                }
            }
        }
        Err(GpuError::NoDriver(looked_in))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_folder_is_the_only_place_looked_at() {
        let root = tempfile::tempdir().expect("temp dir");
        let named = root.path().join("drivers");
        std::fs::create_dir(&named).expect("folder");
        let search = DriverSearch {
            folder: Some(named.clone()),
            root: Some(root.path().to_owned()),
        };
        let error = search.find().expect_err("no driver yet");
        assert_eq!(
            error.to_string(),
            format!("no NVIDIA driver found (looked in {})", named.display())
        );
        std::fs::write(named.join("libcuda.so"), b"stub").expect("write");
        assert!(search.find().is_err(), "libcuda.so is not the driver");
        std::fs::write(named.join(DRIVER_SONAME), b"driver").expect("write");
        assert_eq!(
            search.find().expect("found").library,
            named.join(DRIVER_SONAME)
        );
    }

    #[test]
    fn nixos_comes_before_wsl_and_the_loader_cache() {
        let root = tempfile::tempdir().expect("temp dir");
        let search = DriverSearch {
            folder: None,
            root: Some(root.path().to_owned()),
        };
        let error = search.find().expect_err("nothing there");
        let GpuError::NoDriver(looked_in) = error else {
            panic!("{error}")
        };
        assert_eq!(
            looked_in,
            [
                root.path().join("run/opengl-driver/lib"),
                root.path().join("usr/lib/wsl/lib"),
                root.path().join("etc/ld.so.cache"),
            ]
        );
        for folder in [WSL_DRIVER_FOLDER, NIXOS_DRIVER_FOLDER] {
            let folder = search.under_root(folder);
            std::fs::create_dir_all(&folder).expect("folder");
            std::fs::write(folder.join(DRIVER_SONAME), b"driver").expect("write");
            assert_eq!(search.find().expect("found").folder(), folder);
        }
    }
}
