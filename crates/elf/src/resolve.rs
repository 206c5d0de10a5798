//! Where each needed library is found, searched the way glibc's dynamic loader does it,
//! with NVIDIA driver libraries and stub folders told apart.
//!
//! Order for a name without `/`: the object's `DT_RPATH` (only when it has no
//! `DT_RUNPATH`), `LD_LIBRARY_PATH`, `DT_RUNPATH`, then the system folders (the loader's
//! cache and default folders). `$ORIGIN`, `$LIB` and `$PLATFORM` (also in braces) are
//! expanded; an empty list item means the current folder. A candidate counts only if it
//! is an ELF file of the same class and machine, as the loader checks.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::dynamic::{Class, DynamicInfo, class_and_machine};
use crate::loads::LoadName;

/// How the loader is set up for a search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPaths {
    /// `LD_LIBRARY_PATH`, as written.
    pub ld_library_path: Option<String>,
    /// Folders searched last (the loader cache's and default folders); empty for none.
    pub system: Vec<PathBuf>,
    /// What `$LIB` expands to; `lib64` for 64-bit and `lib` for 32-bit when unset.
    pub lib: Option<String>,
    /// What `$PLATFORM` expands to; the machine name when unset.
    pub platform: Option<String>,
    /// The root of the file system the files live in (a container's), when it is not
    /// this machine's: absolute search folders, and absolute link targets, are taken
    /// inside it, and `..` never rises above it. `system` is then the root's folders
    /// (`system_folders_in`), written as paths of this machine.
    pub root: Option<PathBuf>,
}

impl SearchPaths {
    /// This machine's system folders: `/etc/ld.so.conf` and what it includes, then the
    /// loader's built-in folders.
    pub fn system_folders() -> Vec<PathBuf> {
        Self::system_folders_in(Path::new("/"))
    }

    /// The system folders of the file system whose root is `root` (a container's):
    /// its own `etc/ld.so.conf` and the loader's built-in folders, inside it, written
    /// as paths of this machine. Nothing of this machine's own folders is used.
    pub fn system_folders_in(root: &Path) -> Vec<PathBuf> {
        let mut folders = Vec::new();
        read_ld_so_conf(root, Path::new("/etc/ld.so.conf"), &mut folders, 0);
        for default in ["/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
            let path = inside(root, Path::new(default));
            if !folders.contains(&path) {
                folders.push(path);
            }
        }
        folders
    }

    /// `path`, named inside the root, as a path of this machine.
    pub fn in_root(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) => inside(root, path),
            None => path.to_owned(),
        }
    }
}

/// `path` (absolute inside `root`, or relative to its top) as a path of this machine.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Reads the loader's configuration file `path` (named inside `root`) and those it
/// includes, adding the folders they list.
fn read_ld_so_conf(root: &Path, path: &Path, folders: &mut Vec<PathBuf>, depth: usize) {
    let Some(text) = real_path_in(Some(root), &inside(root, path))
        .and_then(|real| std::fs::read_to_string(real).ok())
    else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(pattern) = line.strip_prefix("include") {
            let pattern = Path::new(pattern.trim());
            // A relative pattern is relative to the including file's folder.
            let pattern = path.parent().unwrap_or(Path::new("/")).join(pattern);
            if depth < 8 {
                for included in expand_glob(root, &pattern) {
                    read_ld_so_conf(root, &included, folders, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            let folder = inside(root, Path::new(line));
            if !folders.contains(&folder) {
                folders.push(folder);
            }
        }
    }
}

/// The file `path` (a path of this machine) names, every link resolved, with `root` (a
/// folder `path` lies under) taken as `/`: an absolute link target is followed inside
/// the root and `..` never rises above it, as the loader inside a container would see
/// it. Without a root, the links are this machine's. `None` when nothing is there (or
/// the links loop).
pub fn real_path_in(root: Option<&Path>, path: &Path) -> Option<PathBuf> {
    let Some(root) = root.filter(|root| *root != Path::new("/")) else {
        return std::fs::canonicalize(path).ok();
    };
    let relative = path.strip_prefix(root).ok()?;
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    push_components(relative, &mut pending);
    let mut real = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            real.pop();
            continue;
        }
        let candidate = real.join(&part);
        let metadata = std::fs::symlink_metadata(root.join(&candidate)).ok()?;
        if metadata.file_type().is_symlink() {
            links += 1;
            // The kernel's own limit on links followed in one lookup.
            if links > 40 {
                return None;
            }
            let target = std::fs::read_link(root.join(&candidate)).ok()?;
            if target.is_absolute() {
                real = PathBuf::new();
            }
            push_components(&target, &mut pending);
        } else {
            real = candidate;
        }
    }
    Some(root.join(real))
}

/// Pushes the parts of `path` that name something (`..` kept) onto `pending`, last
/// first, so that popping gives them in order.
fn push_components(path: &Path, pending: &mut Vec<std::ffi::OsString>) {
    use std::path::Component;
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => pending.push(name.to_owned()),
            Component::ParentDir => pending.push("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

/// `dir/*.conf`-style patterns (a `*` in the last component only) named inside `root`,
/// sorted like the loader's configuration tool reads them; the paths found are named
/// inside the root too.
fn expand_glob(root: &Path, path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![path.to_owned()];
    };
    let Some(real_dir) = real_path_in(Some(root), &inside(root, dir)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(real_dir)
        .map(|read| {
            read.filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|n| {
                    n.starts_with(prefix)
                        && n.ends_with(suffix)
                        && n.len() >= prefix.len() + suffix.len()
                })
                .map(|n| dir.join(n))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Which step of the search found a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// The name holds a `/`: used as it is.
    Path,
    Rpath,
    LdLibraryPath,
    Runpath,
    System,
}

/// The outcome for one `DT_NEEDED` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Resolved {
    pub name: String,
    /// Where the loader would take it from.
    pub path: Option<PathBuf>,
    pub via: Option<Via>,
    /// A library the NVIDIA driver installs (`libcuda.so.1`, `libnvidia-ml.so.1`, …): it
    /// must come from the host, never from a package.
    pub driver: bool,
    /// Found in a stub folder: a program would load NVIDIA's stub instead of the driver.
    pub stub: bool,
}

pub use cudapkgs_tree::dir::is_file_name;

/// Libraries that come with the NVIDIA driver rather than with any CUDA package.
pub fn is_driver_library(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    [
        "libcuda.so",
        "libcudadebugger.so",
        "libnvidia-",
        "libnvcuvid.so",
        "libnvoptix.so",
        "libGLX_nvidia.so",
        "libEGL_nvidia.so",
        "libGLESv2_nvidia.so",
        "libGLESv1_CM_nvidia.so",
    ]
    .iter()
    .any(|prefix| base.starts_with(prefix))
}

/// NVIDIA's link-time stand-ins live in folders named `stubs` (`lib/stubs`,
/// `lib64/stubs`, `targets/…/lib/stubs`).
pub fn is_stub_folder(folder: &Path) -> bool {
    folder.file_name().is_some_and(|name| name == "stubs")
}

/// The folder `$ORIGIN` stands for in the search paths of the file at `path`: its
/// parent, or `.` for a bare file name (whose parent is the empty path, which would turn
/// `$ORIGIN/lib` into `/lib`).
pub fn origin_folder(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The folders the object's own search lists name (`DT_RPATH` without `DT_RUNPATH`,
/// `LD_LIBRARY_PATH`, `DT_RUNPATH`), in the loader's order, as searched for the file
/// found at `path` (inside the root, when there is one); the system folders aside.
pub fn own_folders(path: &Path, info: &DynamicInfo, search: &SearchPaths) -> Vec<PathBuf> {
    let mut order = SearchOrder::of(path, info, search);
    order.steps.pop();
    order
        .steps
        .into_iter()
        .flat_map(|(folders, _)| folders)
        .collect()
}

/// The folders of the object's `DT_RPATH` (none when it has a `DT_RUNPATH`, which makes
/// the loader ignore it), as searched for the file found at `path`. The loader also
/// searches them for the libraries of the objects it loads on this one's behalf, as long
/// as those have no `DT_RUNPATH` of their own: a Python module's `RPATH` of
/// `$ORIGIN/../../scipy.libs` serves the libraries found there too.
pub fn rpath_folders(path: &Path, info: &DynamicInfo, search: &SearchPaths) -> Vec<PathBuf> {
    let order = SearchOrder::of(path, info, search);
    order
        .steps
        .into_iter()
        .find(|(_, via)| *via == Via::Rpath)
        .map(|(folders, _)| folders)
        .unwrap_or_default()
}

/// The first of `folders` holding `name` as an object the loader would accept for
/// `info`, read through `lookups`.
pub fn find_in_folders(
    folders: &[PathBuf],
    name: &str,
    info: &DynamicInfo,
    search: &SearchPaths,
    lookups: &Lookups,
) -> Option<PathBuf> {
    if !is_file_name(name) {
        return None;
    }
    folders
        .iter()
        .map(|folder| folder.join(name))
        .find(|candidate| lookups.matches_object(candidate, info, search))
}

/// The folders the loader searches for one object, in its order.
struct SearchOrder {
    steps: Vec<(Vec<PathBuf>, Via)>,
}

impl SearchOrder {
    fn of(path: &Path, info: &DynamicInfo, search: &SearchPaths) -> SearchOrder {
        let origin = origin_folder(path);
        // Inside a root, `$ORIGIN` is the folder as the root names it, and every folder
        // the lists name is then taken inside the root.
        let origin_in_root = search
            .root
            .as_deref()
            .and_then(|root| origin.strip_prefix(root).ok())
            .map(|relative| Path::new("/").join(relative));
        let expand = |list: &str| match &origin_in_root {
            Some(origin) => expand_list(list, origin, info, search)
                .into_iter()
                .map(|folder| search.in_root(&folder))
                .collect(),
            None => expand_list(list, origin, info, search),
        };
        let rpath = match (&info.rpath, &info.runpath) {
            (Some(rpath), None) => expand(rpath),
            _ => Vec::new(),
        };
        let ld_library_path = search
            .ld_library_path
            .as_deref()
            .map(&expand)
            .unwrap_or_default();
        let runpath = info.runpath.as_deref().map(&expand).unwrap_or_default();
        SearchOrder {
            steps: vec![
                (rpath, Via::Rpath),
                (ld_library_path, Via::LdLibraryPath),
                (runpath, Via::Runpath),
                (search.system.clone(), Via::System),
            ],
        }
    }

    /// The first folder, in the loader's order, where `pick` finds a file.
    fn find(&self, mut pick: impl FnMut(&Path) -> Option<PathBuf>) -> Option<(PathBuf, Via)> {
        self.steps.iter().find_map(|(folders, via)| {
            folders
                .iter()
                .find_map(|folder| pick(folder))
                .map(|found| (found, *via))
        })
    }
}

/// Resolves every `DT_NEEDED` entry of the file at `path` (described by `info`).
pub fn resolve_needed(path: &Path, info: &DynamicInfo, search: &SearchPaths) -> Vec<Resolved> {
    resolve_needed_with(path, info, search, &Lookups::default())
}

/// `resolve_needed`, with what it reads of the file system kept in `lookups`.
pub fn resolve_needed_with(
    path: &Path,
    info: &DynamicInfo,
    search: &SearchPaths,
    lookups: &Lookups,
) -> Vec<Resolved> {
    let order = SearchOrder::of(path, info, search);
    info.needed
        .iter()
        .map(|name| {
            let driver = is_driver_library(name);
            let found = if name.contains('/') {
                let candidate = search.in_root(Path::new(name));
                lookups
                    .matches_object(&candidate, info, search)
                    .then_some((candidate, Via::Path))
            } else if !is_file_name(name) {
                // `..` joined to a folder names its parent: nothing to search for.
                None
            } else {
                order.find(|folder| {
                    let candidate = folder.join(name);
                    lookups
                        .matches_object(&candidate, info, search)
                        .then_some(candidate)
                })
            };
            let stub = found
                .as_ref()
                .is_some_and(|(found, _)| found.parent().is_some_and(is_stub_folder));
            Resolved {
                name: name.clone(),
                path: found.as_ref().map(|(found, _)| found.clone()),
                via: found.map(|(_, via)| via),
                driver,
                stub,
            }
        })
        .collect()
}

/// What searches read of the file system, kept so that the searches of a whole tree's
/// files (which search the same system folders for the same libraries) read each folder
/// listing and each candidate's header once. Shared between threads.
#[derive(Debug, Default)]
pub struct Lookups {
    listings: Mutex<HashMap<PathBuf, Arc<Vec<String>>>>,
    /// Each candidate's class and machine; `None` for no ELF file (or none there).
    objects: Mutex<HashMap<PathBuf, Option<(Class, u16)>>>,
}

impl Lookups {
    /// The file names in `folder`, sorted (none when it cannot be read).
    fn names(&self, folder: &Path, search: &SearchPaths) -> Arc<Vec<String>> {
        if let Some(names) = lock(&self.listings).get(folder) {
            return Arc::clone(names);
        }
        let names = match &search.root {
            Some(root) => real_path_in(Some(root), folder)
                .map(|real| folder_names(&real))
                .unwrap_or_default(),
            None => folder_names(folder),
        };
        let names = Arc::new(names);
        lock(&self.listings).insert(folder.to_owned(), Arc::clone(&names));
        names
    }

    /// `matches_object` (inside the search's root), each candidate read once.
    fn matches_object(&self, candidate: &Path, info: &DynamicInfo, search: &SearchPaths) -> bool {
        let known = lock(&self.objects).get(candidate).copied();
        let object = known.unwrap_or_else(|| {
            let object = match &search.root {
                Some(root) => {
                    real_path_in(Some(root), candidate).and_then(|real| object_kind(&real))
                }
                None => object_kind(candidate),
            };
            lock(&self.objects).insert(candidate.to_owned(), object);
            object
        });
        object == Some((info.class, info.machine))
    }
}

/// A lock whose holder cannot leave the map half changed: a panic elsewhere does not
/// make the cache unusable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The run-time loads of a file worth showing beside its needed libraries: not a needed
/// library again, and not the file's own name.
pub fn extra_loads<'a>(
    path: &Path,
    info: &DynamicInfo,
    loads: &'a [LoadName],
) -> Vec<&'a LoadName> {
    let own = path.file_name().and_then(|n| n.to_str());
    loads
        .iter()
        .filter(|load| {
            !info.needed.iter().any(|needed| load.matches(needed))
                && !info
                    .soname
                    .as_deref()
                    .is_some_and(|soname| load.matches(soname))
                && !own.is_some_and(|own| load.matches(own))
        })
        .collect()
}

/// Where `dlopen` would find each of `loads` for the file at `path`: the folders searched
/// as for its needed libraries, the first file there whose name the load name matches.
pub fn resolve_loads(
    path: &Path,
    info: &DynamicInfo,
    loads: &[&LoadName],
    search: &SearchPaths,
) -> Vec<Resolved> {
    resolve_loads_with(path, info, loads, search, &Lookups::default())
}

/// `resolve_loads`, with what it reads of the file system kept in `lookups`.
pub fn resolve_loads_with(
    path: &Path,
    info: &DynamicInfo,
    loads: &[&LoadName],
    search: &SearchPaths,
    lookups: &Lookups,
) -> Vec<Resolved> {
    let order = SearchOrder::of(path, info, search);
    loads
        .iter()
        .map(|load| {
            let found = order.find(|folder| {
                lookups
                    .names(folder, search)
                    .iter()
                    .filter(|name| load.matches(name))
                    .map(|name| folder.join(name))
                    .find(|candidate| lookups.matches_object(candidate, info, search))
            });
            let stub = found
                .as_ref()
                .is_some_and(|(found, _)| found.parent().is_some_and(is_stub_folder));
            Resolved {
                name: load.to_string(),
                driver: is_driver_library(load.as_str()),
                path: found.as_ref().map(|(found, _)| found.clone()),
                via: found.map(|(_, via)| via),
                stub,
            }
        })
        .collect()
}

/// The file names in `folder`, sorted (none when it cannot be read).
fn folder_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|read| {
            read.filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The entries of a search list that provide at least one needed library or run-time
/// load (as the loader would accept it), in their order, without repeats:
/// `--shrink-runpath`.
pub fn shrink_list(
    list: &str,
    path: &Path,
    info: &DynamicInfo,
    loads: &[LoadName],
    search: &SearchPaths,
) -> String {
    let origin = origin_folder(path);
    let mut kept: Vec<&str> = Vec::new();
    for item in list.split(':').filter(|item| !item.is_empty()) {
        let folder = expand_list(item, origin, info, search).remove(0);
        if provides_any(&folder, info, loads) && !kept.contains(&item) {
            kept.push(item);
        }
    }
    kept.join(":")
}

/// Whether `folder` holds a library that `info` needs or one of `loads` names, as the
/// loader would accept it.
pub fn provides_any(folder: &Path, info: &DynamicInfo, loads: &[LoadName]) -> bool {
    let needed = info
        .needed
        .iter()
        .any(|name| is_file_name(name) && matches_object(&folder.join(name), info));
    needed
        || (!loads.is_empty()
            && folder_names(folder).iter().any(|name| {
                loads.iter().any(|load| load.matches(name))
                    && matches_object(&folder.join(name), info)
            }))
}

/// Splits a search list on `:` and expands its tokens.
pub fn expand_list(
    list: &str,
    origin: &Path,
    info: &DynamicInfo,
    search: &SearchPaths,
) -> Vec<PathBuf> {
    let lib = search.lib.clone().unwrap_or_else(|| {
        if info.class == Class::Elf64 {
            "lib64"
        } else {
            "lib"
        }
        .to_owned()
    });
    let platform = search
        .platform
        .clone()
        .unwrap_or_else(|| info.machine_name.to_owned());
    list.split(':')
        .map(|item| {
            if item.is_empty() {
                return PathBuf::from(".");
            }
            let origin = origin.to_string_lossy();
            let expanded = item
                .replace("${ORIGIN}", &origin)
                .replace("$ORIGIN", &origin)
                .replace("${LIB}", &lib)
                .replace("$LIB", &lib)
                .replace("${PLATFORM}", &platform)
                .replace("$PLATFORM", &platform);
            PathBuf::from(expanded)
        })
        .collect()
}

/// Whether a candidate is an ELF file the loader would accept for `info`.
pub fn matches_object(candidate: &Path, info: &DynamicInfo) -> bool {
    object_kind(candidate) == Some((info.class, info.machine))
}

/// The class and machine of the ELF file at `candidate`; `None` when it is no regular
/// ELF file.
fn object_kind(candidate: &Path) -> Option<(Class, u16)> {
    let mut header = [0u8; 20];
    // Only a regular file is a library; opening a FIFO named like one would wait.
    if !std::fs::metadata(candidate).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut file = File::open(candidate).ok()?;
    file.read_exact(&mut header).ok()?;
    class_and_machine(&header)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dynamic::ElfKind;

    #[test]
    fn a_root_has_its_own_system_folders_and_links() {
        let dir = tempfile::tempdir().expect("temp");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        for folder in [
            "etc/ld.so.conf.d",
            "opt/cuda/lib",
            "opt/tool",
            "usr/lib",
            "lib",
        ] {
            std::fs::create_dir_all(root.join(folder)).expect("mkdir");
        }
        std::fs::write(
            root.join("etc/ld.so.conf"),
            "include ld.so.conf.d/*.conf\n/usr/local/lib # local\n",
        )
        .expect("write");
        std::fs::write(root.join("etc/ld.so.conf.d/cuda.conf"), "/opt/cuda/lib\n").expect("write");
        std::fs::write(root.join("opt/cuda/lib/libx.so.1"), b"x").expect("write");
        // An absolute link is followed inside the root; `..` stops at its top.
        std::os::unix::fs::symlink("/opt/cuda/lib/libx.so.1", root.join("usr/lib/libx.so.1"))
            .expect("link");
        std::os::unix::fs::symlink("../../../../opt", root.join("lib/up")).expect("link");
        let folders = SearchPaths::system_folders_in(&root);
        assert_eq!(
            folders[..2],
            [root.join("opt/cuda/lib"), root.join("usr/local/lib")]
        );
        assert!(folders.contains(&root.join("usr/lib")));
        let real = root.join("opt/cuda/lib/libx.so.1");
        assert_eq!(
            real_path_in(Some(&root), &root.join("usr/lib/libx.so.1")),
            Some(real.clone())
        );
        assert_eq!(
            real_path_in(Some(&root), &root.join("lib/up/cuda/lib/libx.so.1")),
            Some(real)
        );
        assert_eq!(
            real_path_in(Some(&root), &root.join("usr/lib/libnone.so")),
            None
        );
        // The root's `$ORIGIN` and absolute entries are folders inside it.
        let search = SearchPaths {
            system: folders,
            root: Some(root.clone()),
            ..SearchPaths::default()
        };
        let library = info(&["libx.so.1"], None, Some("$ORIGIN/../cuda/lib:/usr/lib"));
        let owner = root.join("opt/tool/libowner.so");
        assert_eq!(
            own_folders(&owner, &library, &search),
            [root.join("opt/tool/../cuda/lib"), root.join("usr/lib")]
        );
        // Even a search list that climbs far stays inside.
        let climbing = info(&[], None, Some("$ORIGIN/../../../../.."));
        let folder = own_folders(&owner, &climbing, &search).remove(0);
        assert_eq!(real_path_in(Some(&root), &folder), Some(root.clone()));
    }

    /// An x86-64 shared library's view with these entries.
    pub(crate) fn info(needed: &[&str], rpath: Option<&str>, runpath: Option<&str>) -> DynamicInfo {
        DynamicInfo {
            class: Class::Elf64,
            little_endian: true,
            machine: 62,
            machine_name: "x86_64",
            kind: ElfKind::SharedObject,
            interpreter: None,
            has_dynamic: true,
            soname: None,
            needed: needed.iter().map(|s| (*s).to_owned()).collect(),
            rpath: rpath.map(str::to_owned),
            runpath: runpath.map(str::to_owned),
        }
    }

    /// An ELF header of the given class and machine: enough for the loader's check.
    pub(crate) fn fake_library(path: &Path, class: u8, machine: u16) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = class;
        header[5] = 1;
        header[18..20].copy_from_slice(&machine.to_le_bytes());
        std::fs::write(path, header).expect("write");
    }

    #[test]
    fn search_order_follows_the_loader() {
        let dir = tempfile::tempdir().expect("temp");
        let root = dir.path();
        for folder in ["rpath", "env", "runpath", "system", "lib"] {
            fake_library(&root.join(folder).join("libx.so.1"), 2, 62);
        }
        let object = root.join("lib/libuser.so");
        let search = SearchPaths {
            ld_library_path: Some(root.join("env").display().to_string()),
            system: vec![root.join("system")],
            ..SearchPaths::default()
        };
        let rpath = root.join("rpath").display().to_string();
        let runpath = root.join("runpath").display().to_string();

        let found = |info: &DynamicInfo, search: &SearchPaths| {
            resolve_needed(&object, info, search)[0].clone()
        };
        let with_rpath = found(&info(&["libx.so.1"], Some(&rpath), None), &search);
        assert_eq!(
            (with_rpath.via, with_rpath.path),
            (Some(Via::Rpath), Some(root.join("rpath/libx.so.1")))
        );
        // RUNPATH disables RPATH and comes after LD_LIBRARY_PATH.
        let both = found(&info(&["libx.so.1"], Some(&rpath), Some(&runpath)), &search);
        assert_eq!(both.via, Some(Via::LdLibraryPath));
        let no_env = SearchPaths {
            ld_library_path: None,
            ..search.clone()
        };
        assert_eq!(
            found(&info(&["libx.so.1"], Some(&rpath), Some(&runpath)), &no_env).via,
            Some(Via::Runpath)
        );
        assert_eq!(
            found(&info(&["libx.so.1"], None, None), &no_env).via,
            Some(Via::System)
        );
        let origin = found(&info(&["libx.so.1"], None, Some("$ORIGIN")), &no_env);
        assert_eq!(
            (origin.via, origin.path),
            (Some(Via::Runpath), Some(root.join("lib/libx.so.1")))
        );
        let nothing = found(&info(&["libx.so.1"], None, None), &SearchPaths::default());
        assert_eq!((nothing.via, nothing.path), (None, None));
    }

    #[test]
    fn a_bare_file_name_has_the_current_folder_as_origin() {
        assert_eq!(origin_folder(Path::new("libx.so")), Path::new("."));
        assert_eq!(origin_folder(Path::new("./libx.so")), Path::new("."));
        assert_eq!(origin_folder(Path::new("lib/libx.so")), Path::new("lib"));
        assert_eq!(origin_folder(Path::new("/libx.so")), Path::new("/"));
        let expanded = expand_list(
            "$ORIGIN/../lib",
            origin_folder(Path::new("libx.so")),
            &info(&[], None, None),
            &SearchPaths::default(),
        );
        assert_eq!(expanded, [PathBuf::from("./../lib")]);
    }

    #[test]
    fn wrong_class_or_machine_is_skipped() {
        let dir = tempfile::tempdir().expect("temp");
        fake_library(&dir.path().join("a/liby.so"), 1, 3);
        fake_library(&dir.path().join("b/liby.so"), 2, 183);
        fake_library(&dir.path().join("c/liby.so"), 2, 62);
        let list = ["a", "b", "c"]
            .map(|f| dir.path().join(f).display().to_string())
            .join(":");
        let resolved = resolve_needed(
            &dir.path().join("x.so"),
            &info(&["liby.so"], None, Some(&list)),
            &SearchPaths::default(),
        );
        assert_eq!(resolved[0].path, Some(dir.path().join("c/liby.so")));
    }

    #[test]
    fn tokens_expand_in_both_spellings() {
        let origin = Path::new("/opt/pkg/lib");
        let expanded = expand_list(
            "$ORIGIN/../${LIB}:${ORIGIN}/$PLATFORM::/abs",
            origin,
            &info(&[], None, None),
            &SearchPaths::default(),
        );
        assert_eq!(
            expanded,
            [
                PathBuf::from("/opt/pkg/lib/../lib64"),
                PathBuf::from("/opt/pkg/lib/x86_64"),
                PathBuf::from("."),
                PathBuf::from("/abs")
            ]
        );
    }

    #[test]
    fn driver_libraries_and_stub_folders() {
        for name in [
            "libcuda.so.1",
            "libnvidia-ml.so.1",
            "libcudadebugger.so.1",
            "libnvidia-ptxjitcompiler.so.1",
            "/x/libcuda.so",
        ] {
            assert!(is_driver_library(name), "{name}");
        }
        for name in [
            "libcudart.so.12",
            "libcublas.so.12",
            "libnvrtc.so.12",
            "libnvJitLink.so.12",
        ] {
            assert!(!is_driver_library(name), "{name}");
        }
        let dir = tempfile::tempdir().expect("temp");
        fake_library(&dir.path().join("lib/stubs/libcuda.so.1"), 2, 62);
        let runpath = dir.path().join("lib/stubs").display().to_string();
        let resolved = resolve_needed(
            &dir.path().join("lib/libk.so"),
            &info(&["libcuda.so.1"], None, Some(&runpath)),
            &SearchPaths::default(),
        );
        assert!(resolved[0].driver && resolved[0].stub);
    }
}
