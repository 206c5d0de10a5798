//! Automatic runpaths for a whole tree, the way packagers need them: each ELF file gets
//! `$ORIGIN` when a sibling provides one of its libraries, then the folders that provide
//! the others (inside the tree as `$ORIGIN`-relative paths, elsewhere as they are), then
//! the entries it already had that still find one of its libraries, then the driver
//! folder when it uses the NVIDIA driver. "Its libraries" are the needed ones and those
//! it loads at run time (`loads`), found by name in the tree. Stub folders never appear;
//! needed libraries found nowhere are reported instead of guessed.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::dynamic::DynamicInfo;
use crate::loads::LoadName;
use crate::resolve::{
    SearchPaths, expand_list, is_driver_library, is_file_name, is_stub_folder, matches_object,
    origin_folder, provides_any,
};

/// An ELF file of the tree, read.
#[derive(Debug, Clone)]
pub struct TreeFile {
    pub path: PathBuf,
    pub info: DynamicInfo,
    /// The libraries it may load at run time (`loads::load_names` of its bytes).
    pub loads: Vec<LoadName>,
}

impl TreeFile {
    /// Loads a driver library itself (`dlopen("libcuda.so.1")`), as the CUDA runtime does.
    pub fn opens_driver(&self) -> bool {
        opens_driver(&self.loads)
    }
}

/// Whether run-time loads name a driver library.
pub fn opens_driver(loads: &[LoadName]) -> bool {
    loads.iter().any(|load| is_driver_library(load.as_str()))
}

/// Where libraries can come from: every library file name (symbolic links included)
/// under the tree and the library roots, stub folders excluded.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Vec<PathBuf>>,
}

impl Providers {
    /// Indexes the folders under `roots` (recursively).
    pub fn index(roots: &[PathBuf]) -> Providers {
        let mut providers = Providers::default();
        for root in roots {
            providers.add_folder(root, 0);
        }
        providers
    }

    fn add_folder(&mut self, folder: &Path, depth: usize) {
        if depth > 32 || is_stub_folder(folder) {
            return;
        }
        let Ok(read) = std::fs::read_dir(folder) else {
            return;
        };
        let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                self.add_folder(&path, depth + 1);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                if name.contains(".so") {
                    self.by_name
                        .entry(name.to_owned())
                        .or_default()
                        .push(folder.to_owned());
                }
            }
        }
    }

    /// Every folder holding a library `load` names, with that library's file name, that
    /// the loader would accept for `info`.
    pub fn find_load(&self, load: &LoadName, info: &DynamicInfo) -> Vec<(&str, &Path)> {
        self.by_name
            .iter()
            .filter(|(name, _)| load.matches(name))
            .flat_map(|(name, folders)| {
                folders
                    .iter()
                    .filter(move |folder| matches_object(&folder.join(name), info))
                    .map(move |folder| (name.as_str(), folder.as_path()))
            })
            .collect()
    }

    /// The first folder whose `name` the loader would accept for `info`.
    pub fn find(&self, name: &str, info: &DynamicInfo) -> Option<&Path> {
        self.by_name
            .get(name)?
            .iter()
            .find(|folder| matches_object(&folder.join(name), info))
            .map(PathBuf::as_path)
    }
}

/// What the automatic mode decided for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct AutoRunpath {
    pub path: PathBuf,
    pub runpath: String,
    /// The current search path (`DT_RUNPATH`, else `DT_RPATH`).
    pub before: Option<String>,
    pub needs_driver: bool,
    /// Needed libraries found nowhere.
    pub unresolved: Vec<String>,
    /// Needed entries that are not plain file names (`/etc/passwd`, `../libx.so`): the
    /// loader would take them from outside every searched folder, so no runpath serves.
    pub not_file_names: Vec<String>,
}

/// How the automatic mode searches.
#[derive(Debug, Clone)]
pub struct AutoOptions {
    /// Folders whose contents count as part of the package: written as `$ORIGIN`-relative.
    pub tree: PathBuf,
    /// The driver's library folder, for files that load the driver.
    pub driver_dir: PathBuf,
    /// System folders: libraries found there need no runpath entry.
    pub system: SearchPaths,
    /// Needed names that may stay unresolved.
    pub allow_unresolved: Vec<String>,
}

/// The runpath each file of the tree should have.
pub fn plan_tree(
    files: &[TreeFile],
    providers: &Providers,
    options: &AutoOptions,
) -> Vec<AutoRunpath> {
    files
        .iter()
        .filter(|file| file.info.has_dynamic)
        // Stubs are left alone: nothing loads them at run time.
        .filter(|file| !file.path.parent().is_some_and(is_stub_folder))
        .map(|file| plan_file(file, providers, options))
        .collect()
}

fn plan_file(file: &TreeFile, providers: &Providers, options: &AutoOptions) -> AutoRunpath {
    let info = &file.info;
    let origin = origin_folder(&file.path);
    let mut entries: Vec<String> = Vec::new();
    let mut needs_driver = file.opens_driver();
    let mut unresolved = Vec::new();
    let mut not_file_names = Vec::new();
    let mut push = |entry: String| {
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    };
    let mut sibling = false;
    let mut found: Vec<String> = Vec::new();
    let kept = kept_entries(file, options);
    for name in &info.needed {
        // Before the driver check: `../libcuda.so.1` is a path, not the driver.
        if !is_file_name(name) {
            not_file_names.push(name.clone());
            continue;
        }
        if is_driver_library(name) {
            needs_driver = true;
            continue;
        }
        if matches_object(&origin.join(name), info) {
            sibling = true;
            continue;
        }
        if let Some(folder) = providers.find(name, info) {
            found.push(written_folder(folder, origin, &options.tree));
            continue;
        }
        // An entry the file keeps serves it where it is (one outside the tree and the
        // library roots); a relative one would depend on the working folder.
        let kept_provides = kept
            .iter()
            .any(|(_, folder)| folder.is_absolute() && matches_object(&folder.join(name), info));
        if kept_provides {
            continue;
        }
        let system = options
            .system
            .system
            .iter()
            .any(|folder| matches_object(&folder.join(name), info));
        if !system
            && !options
                .allow_unresolved
                .iter()
                .any(|allowed| allowed == name)
        {
            unresolved.push(name.clone());
        }
    }
    // A run-time load is served by the folders of the tree that hold what it names; one
    // that names nothing here is the program's own business (an optional library).
    for load in &file.loads {
        if is_driver_library(load.as_str()) {
            continue;
        }
        for (_, folder) in providers.find_load(load, info) {
            if folder == origin {
                sibling = true;
            } else {
                found.push(written_folder(folder, origin, &options.tree));
            }
        }
    }
    if sibling {
        push("$ORIGIN".to_owned());
    }
    for folder in found {
        push(folder);
    }
    for (entry, _) in kept {
        push(entry);
    }
    if needs_driver {
        push(options.driver_dir.display().to_string());
    }
    AutoRunpath {
        path: file.path.clone(),
        runpath: entries.join(":"),
        before: info.runpath.clone().or_else(|| info.rpath.clone()),
        needs_driver,
        unresolved,
        not_file_names,
    }
}

/// The file's current search-path entries that still find one of its needed or
/// run-time-loaded libraries (a folder outside the tree it was given, a sibling package
/// of a venv), with the folders they name: never dropped. Stub folders go.
fn kept_entries(file: &TreeFile, options: &AutoOptions) -> Vec<(String, PathBuf)> {
    let info = &file.info;
    let Some(current) = info.runpath.as_deref().or(info.rpath.as_deref()) else {
        return Vec::new();
    };
    let origin = origin_folder(&file.path);
    current
        .split(':')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let folder = expand_list(entry, origin, info, &options.system).remove(0);
            (entry.to_owned(), folder)
        })
        .filter(|(_, folder)| !is_stub_folder(folder) && provides_any(folder, info, &file.loads))
        .collect()
}

/// Why `dir` cannot be the driver folder written into runpaths, if it cannot: a
/// relative entry is searched from each program's working folder, `:` separates entries,
/// and a runpath holds bytes the loader reads as text.
pub fn driver_dir_problem(dir: &Path) -> Option<&'static str> {
    let Some(text) = dir.to_str() else {
        return Some("is not valid UTF-8");
    };
    if !dir.is_absolute() {
        Some(
            "is not absolute: the loader would look for the driver from each program's working folder",
        )
    } else if text.contains(':') {
        Some("contains `:`, which separates runpath entries")
    } else {
        None
    }
}

/// A provider folder as a runpath entry: relative to `$ORIGIN` inside the tree, so the
/// tree can move; absolute outside it.
fn written_folder(folder: &Path, origin: &Path, tree: &Path) -> String {
    if folder.starts_with(tree) && origin.starts_with(tree) {
        let relative = relative_path(origin, folder);
        if relative.as_os_str().is_empty() {
            "$ORIGIN".to_owned()
        } else {
            format!("$ORIGIN/{}", relative.display())
        }
    } else {
        folder.display().to_string()
    }
}

/// The path from folder `from` to folder `to` (both absolute or both relative).
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component<'_>> = from.components().collect();
    let to: Vec<Component<'_>> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for component in &to[common..] {
        path.push(component.as_os_str());
    }
    path
}

/// NixOS's driver folder, where files that use the driver look for it unless told
/// otherwise (`--driver-dir`).
pub const DEFAULT_DRIVER_DIR: &str = "/run/opengl-driver/lib";

/// Where this machine's driver library lives: the loader's folders and the places
/// container runtimes and NixOS put it, stub folders excluded.
pub fn host_driver_dir() -> Option<PathBuf> {
    let mut folders = vec![
        PathBuf::from(DEFAULT_DRIVER_DIR),
        PathBuf::from("/usr/local/nvidia/lib64"),
        PathBuf::from("/usr/lib/wsl/lib"),
    ];
    folders.extend(SearchPaths::system_folders());
    folders
        .into_iter()
        .filter(|folder| !is_stub_folder(folder))
        .find(|folder| folder.join("libcuda.so.1").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/t/lib"), Path::new("/t/lib")),
            PathBuf::new()
        );
        assert_eq!(
            relative_path(Path::new("/t/bin"), Path::new("/t/lib")),
            PathBuf::from("../lib")
        );
        assert_eq!(
            relative_path(Path::new("/t/a/b"), Path::new("/t/c")),
            PathBuf::from("../../c")
        );
        assert_eq!(
            written_folder(Path::new("/t/lib"), Path::new("/t/bin"), Path::new("/t")),
            "$ORIGIN/../lib"
        );
        assert_eq!(
            written_folder(
                Path::new("/opt/x/lib"),
                Path::new("/t/bin"),
                Path::new("/t")
            ),
            "/opt/x/lib"
        );
    }

    #[test]
    fn driver_loads() {
        assert!(opens_driver(&[LoadName::new("libcuda.so.1")]));
        assert!(opens_driver(&[LoadName::new("libnvidia-ml.so.1")]));
        assert!(!opens_driver(&[LoadName::new("libcudart.so.13")]));
    }

    #[test]
    fn needed_paths_are_reported_not_searched() {
        let dir = tempfile::tempdir().expect("temp");
        let needed = [
            "/etc/hostname",
            "../../../../../../etc/passwd",
            "../libcuda.so.1",
            "..",
            "libc.so.6",
        ];
        let file = TreeFile {
            path: dir.path().join("lib/libx.so"),
            info: DynamicInfo {
                class: crate::Class::Elf64,
                little_endian: true,
                machine: 62,
                machine_name: "x86_64",
                kind: crate::ElfKind::SharedObject,
                interpreter: None,
                has_dynamic: true,
                soname: None,
                needed: needed.map(str::to_owned).to_vec(),
                rpath: None,
                runpath: None,
            },
            loads: Vec::new(),
        };
        let options = AutoOptions {
            tree: dir.path().to_owned(),
            driver_dir: PathBuf::from("/run/opengl-driver/lib"),
            system: SearchPaths::default(),
            allow_unresolved: vec!["libc.so.6".to_owned()],
        };
        let plan = plan_tree(&[file], &Providers::default(), &options);
        assert_eq!(plan[0].not_file_names, needed[..4]);
        assert!(plan[0].unresolved.is_empty(), "{plan:?}");
        assert!(!plan[0].needs_driver, "a path to libcuda is not the driver");
    }

    #[test]
    fn an_absolute_entry_that_finds_a_needed_library_resolves_it() {
        use crate::resolve::tests::{fake_library, info};
        let dir = tempfile::tempdir().expect("temp");
        let deps = dir.path().join("deps");
        fake_library(&deps.join("liba.so"), 2, 62);
        let runpath = format!("{}:{}", deps.display(), dir.path().join("empty").display());
        let file = TreeFile {
            path: dir.path().join("tree/app"),
            info: info(&["liba.so", "libb.so"], None, Some(&runpath)),
            loads: Vec::new(),
        };
        let options = AutoOptions {
            tree: dir.path().join("tree"),
            driver_dir: PathBuf::from("/run/opengl-driver/lib"),
            system: SearchPaths::default(),
            allow_unresolved: Vec::new(),
        };
        let plan = plan_tree(&[file], &Providers::default(), &options);
        assert_eq!(plan[0].unresolved, ["libb.so"], "{plan:?}");
        assert_eq!(plan[0].runpath, deps.display().to_string());
    }

    #[test]
    fn driver_folders_are_absolute_single_entries() {
        assert_eq!(
            driver_dir_problem(Path::new("/run/opengl-driver/lib")),
            None
        );
        for bad in ["relative", "./lib", "", "/a:/b"] {
            assert!(driver_dir_problem(Path::new(bad)).is_some(), "{bad}");
        }
    }
}
