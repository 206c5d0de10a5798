//! Fix-ups of an unpacked redistributable and its split into outputs.
//!
//! Fix-ups: `lib/<cuda major>/` flattened into `lib/`; `pkg-config/` moved to
//! `share/pkgconfig/` with `cudaroot`, `libdir` and `includedir` pointing at the outputs;
//! a `/usr/` path in pkg-config or CMake files refused unless allowed.
//!
//! Outputs: `bin` ← `bin/`; `dev` ← `*.pc`, `*.cmake`; `include` ← `include/`; `lib` ←
//! `lib/`, `lib64/`; `static` ← `*.a`; `samples` ← `samples/`; `python` ← `*.whl`;
//! `stubs` ← `stubs/`, `lib/stubs/`; `doc` ← `doc/`, `docs/`, `share/doc/`, `share/man/`;
//! `out` keeps the rest and links every file of the others (the whole package, as one
//! tree, for compatibility). Empty outputs are not made.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;

/// The outputs, in Nixpkgs' order.
pub const OUTPUTS: &[&str] = &[
    "out", "doc", "samples", "python", "bin", "dev", "include", "lib", "static", "stubs",
];

/// The output a file (path relative to the package root) belongs to.
pub fn output_of(relative: &Path) -> &'static str {
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    let name = parts.last().copied().unwrap_or_default();
    let top = parts.first().copied().unwrap_or_default();
    let under = |prefix: &[&str]| parts.len() > prefix.len() && parts.starts_with(prefix);
    if Path::new(name).extension().is_some_and(|e| e == "a") {
        "static"
    } else if Path::new(name)
        .extension()
        .is_some_and(|e| e == "pc" || e == "cmake")
    {
        "dev"
    } else if Path::new(name).extension().is_some_and(|e| e == "whl") {
        "python"
    } else if under(&["stubs"]) || under(&["lib", "stubs"]) || under(&["lib64", "stubs"]) {
        "stubs"
    } else if under(&["samples"]) {
        "samples"
    } else if under(&["doc"])
        || under(&["docs"])
        || under(&["share", "doc"])
        || under(&["share", "man"])
    {
        "doc"
    } else if under(&["bin"]) {
        "bin"
    } else if under(&["include"]) {
        "include"
    } else if top == "lib" || top == "lib64" {
        "lib"
    } else {
        "out"
    }
}

/// Where the outputs will be, for the paths written into pkg-config files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLocations {
    pub dev: PathBuf,
    pub include: PathBuf,
    pub lib: PathBuf,
}

/// Options of the fix-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixupOptions {
    pub locations: OutputLocations,
    /// Accept `/usr/` in pkg-config and CMake files.
    pub allow_usr: bool,
}

/// Applies the fix-ups to the package tree at `root`, in place; returns what was done.
pub fn fix_up(root: &Path, options: &FixupOptions) -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    wheel_to_nvidia_layout(root, &mut done)?;
    flatten_cuda_major(root, &mut done)?;
    move_pkg_config(root, &options.locations, &mut done)?;
    if !options.allow_usr {
        refuse_usr(root, root)?;
    }
    Ok(done)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// A wheel (`nvidia/<component>/{lib,include,bin}` beside `*.dist-info/`) takes NVIDIA's
/// archive layout: the component folders' contents at the top, the licence as `LICENSE`,
/// the wheel's metadata dropped.
fn wheel_to_nvidia_layout(root: &Path, done: &mut Vec<String>) -> Result<(), Error> {
    let nvidia = root.join("nvidia");
    let mut metadata = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io(root))? {
        let entry = entry.map_err(io(root))?;
        if entry.file_name().to_string_lossy().ends_with(".dist-info") {
            metadata.push(entry.path());
        }
    }
    if !nvidia.is_dir() || metadata.is_empty() {
        return Ok(());
    }
    for component in std::fs::read_dir(&nvidia).map_err(io(&nvidia))? {
        let component = component.map_err(io(&nvidia))?.path();
        if !component.is_dir() {
            continue;
        }
        merge_into(&component, root)?;
        done.push(format!(
            "moved nvidia/{}/ to the top",
            component.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    for info in &metadata {
        for name in ["licenses/License.txt", "LICENSE", "License.txt"] {
            let license = info.join(name);
            if license.is_file() && !root.join("LICENSE").exists() {
                std::fs::rename(&license, root.join("LICENSE")).map_err(io(&license))?;
            }
        }
        remove_all(info)?;
    }
    remove_all(&nvidia)
}

/// Moves everything under `from` into `to`, merging folders; a file that would replace
/// another is refused.
fn merge_into(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let source = entry.path();
        let destination = to.join(entry.file_name());
        let is_dir = entry.file_type().map_err(io(&source))?.is_dir();
        if is_dir && destination.is_dir() {
            merge_into(&source, &destination)?;
        } else if destination.symlink_metadata().is_ok() {
            return Err(Error::BadPackage {
                path: source,
                problem: format!("would replace {}", destination.display()),
            });
        } else {
            std::fs::rename(&source, &destination).map_err(io(&destination))?;
        }
    }
    Ok(())
}

fn remove_all(path: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// `lib/12/…` → `lib/…` (cuDNN and others keep per-CUDA folders).
fn flatten_cuda_major(root: &Path, done: &mut Vec<String>) -> Result<(), Error> {
    let lib = root.join("lib");
    let Ok(entries) = std::fs::read_dir(&lib) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(io(&lib))?;
        let name = entry.file_name();
        let is_major = name
            .to_str()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_major || !entry.file_type().map_err(io(&lib))?.is_dir() {
            continue;
        }
        let folder = entry.path();
        for inner in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let inner = inner.map_err(io(&folder))?;
            let destination = lib.join(inner.file_name());
            if destination.symlink_metadata().is_ok() {
                return Err(Error::BadPackage {
                    path: inner.path(),
                    problem: format!(
                        "flattening into lib/ would replace {}",
                        destination.display()
                    ),
                });
            }
            std::fs::rename(inner.path(), &destination).map_err(io(&destination))?;
        }
        std::fs::remove_dir(&folder).map_err(io(&folder))?;
        done.push(format!(
            "flattened lib/{} into lib/",
            name.to_string_lossy()
        ));
    }
    Ok(())
}

/// `pkg-config/*.pc` → `share/pkgconfig/`, with their folders rewritten.
fn move_pkg_config(root: &Path, at: &OutputLocations, done: &mut Vec<String>) -> Result<(), Error> {
    let source = root.join("pkg-config");
    if !source.is_dir() {
        return Ok(());
    }
    let target = root.join("share/pkgconfig");
    std::fs::create_dir_all(&target).map_err(io(&target))?;
    for entry in std::fs::read_dir(&source).map_err(io(&source))? {
        let entry = entry.map_err(io(&source))?;
        let path = entry.path();
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let rewritten: String = text
            .lines()
            .map(|line| rewrite_pc_line(line, at) + "\n")
            .collect();
        let destination = target.join(entry.file_name());
        std::fs::write(&destination, rewritten).map_err(io(&destination))?;
        std::fs::remove_file(&path).map_err(io(&path))?;
        done.push(format!(
            "moved pkg-config/{0} to share/pkgconfig/{0}",
            entry.file_name().to_string_lossy()
        ));
    }
    std::fs::remove_dir(&source).map_err(io(&source))?;
    Ok(())
}

fn rewrite_pc_line(line: &str, at: &OutputLocations) -> String {
    let Some((key, value)) = line.split_once('=') else {
        return line.to_owned();
    };
    let value = value.trim();
    match key.trim() {
        "cudaroot" => format!("cudaroot={}", at.dev.display()),
        "libdir" if value.ends_with("/lib") || value.ends_with("/lib64") => {
            format!("libdir={}/lib", at.lib.display())
        }
        "includedir" if value.ends_with("/include") => {
            format!("includedir={}/include", at.include.display())
        }
        _ => line.to_owned(),
    }
}

/// pkg-config and CMake files must not send builds to the host's `/usr/`.
fn refuse_usr(root: &Path, dir: &Path) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            refuse_usr(root, &path)?;
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path);
        if !kind.is_file() || output_of(relative) != "dev" {
            continue;
        }
        let text = std::fs::read(&path).map_err(io(&path))?;
        let text = String::from_utf8_lossy(&text);
        if let Some((number, line)) = text.lines().enumerate().find(|(_, l)| l.contains("/usr/")) {
            return Err(Error::BadPackage {
                path: path.clone(),
                problem: format!(
                    "line {}: `{}` refers to /usr/ (allow it with --allow-usr if that is intended)",
                    number + 1,
                    line.trim()
                ),
            });
        }
    }
    Ok(())
}

/// One output of a split: its files and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub name: &'static str,
    /// Files, links included, relative to the output's root.
    pub files: Vec<PathBuf>,
    /// Bytes of regular files (links to other outputs not counted).
    pub bytes: u64,
}

/// Splits the package tree at `root` into `out_dir/<output>/…` (`out_dir` must not
/// exist; it appears whole or not at all). With `consume`, files are moved out of
/// `root` rather than copied. With `link_outputs`, `out` also links every file of the
/// other outputs (relative links, for a split folder; a store makes its own).
pub fn split(
    root: &Path,
    out_dir: &Path,
    consume: bool,
    link_outputs: bool,
) -> Result<Vec<Output>, Error> {
    if out_dir.symlink_metadata().is_ok() {
        return Err(Error::io(
            out_dir,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
        ));
    }
    let mut by_output: BTreeMap<&'static str, Vec<PathBuf>> = BTreeMap::new();
    for file in files(root)? {
        by_output.entry(output_of(&file)).or_default().push(file);
    }
    let parent = out_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let work = tempfile::Builder::new()
        .prefix(".cudapkgs-split-")
        .tempdir_in(parent)
        .map_err(io(parent))?;
    let mut outputs = Vec::new();
    for name in OUTPUTS {
        let Some(list) = by_output.get(name) else {
            continue;
        };
        let mut bytes = 0;
        for relative in list {
            let destination = work.path().join(name).join(relative);
            bytes += place(&root.join(relative), &destination, consume)?;
        }
        outputs.push(Output {
            name,
            files: list.clone(),
            bytes,
        });
    }
    if link_outputs {
        link_compatibility_view(work.path(), &mut outputs)?;
    }
    std::fs::rename(work.path(), out_dir).map_err(io(out_dir))?;
    // The folder now lives at `out_dir`; nothing is left to clean.
    let _ = work.keep();
    Ok(outputs)
}

/// `out` gets a link to every file of the other outputs, at the file's package path.
fn link_compatibility_view(work: &Path, outputs: &mut Vec<Output>) -> Result<(), Error> {
    let mut links = Vec::new();
    for output in outputs.iter().filter(|o| o.name != "out") {
        for relative in &output.files {
            let link = work.join("out").join(relative);
            let depth = relative.components().count();
            let mut target = PathBuf::new();
            for _ in 0..depth {
                target.push("..");
            }
            target.push(output.name);
            target.push(relative);
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::os::unix::fs::symlink(&target, &link).map_err(io(&link))?;
            links.push(relative.clone());
        }
    }
    match outputs.iter_mut().find(|o| o.name == "out") {
        Some(out) => out.files.extend(links),
        None if !links.is_empty() => outputs.insert(
            0,
            Output {
                name: "out",
                files: links,
                bytes: 0,
            },
        ),
        None => {}
    }
    if let Some(out) = outputs.iter_mut().find(|o| o.name == "out") {
        out.files.sort();
    }
    Ok(())
}

/// Moves or copies one file or link; returns the bytes of a regular file.
fn place(source: &Path, destination: &Path, consume: bool) -> Result<u64, Error> {
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let metadata = source.symlink_metadata().map_err(io(source))?;
    if consume {
        std::fs::rename(source, destination).map_err(io(destination))?;
    } else if metadata.file_type().is_symlink() {
        let target = std::fs::read_link(source).map_err(io(source))?;
        std::os::unix::fs::symlink(target, destination).map_err(io(destination))?;
    } else {
        std::fs::copy(source, destination).map_err(io(destination))?;
    }
    Ok(if metadata.is_file() {
        metadata.len()
    } else {
        0
    })
}

/// Files and links under `root`, relative to it, sorted; folders are implied.
pub fn files(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found = Vec::new();
    collect_files(root, root, &mut found)?;
    Ok(found)
}

fn collect_files(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), Error> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if entry.file_type().map_err(io(&path))?.is_dir() {
            collect_files(root, &path, found)?;
        } else {
            found.push(path.strip_prefix(root).unwrap_or(&path).to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::output_of;
    use std::path::Path;

    #[test]
    fn files_go_to_the_outputs_of_the_rules() {
        for (path, output) in [
            ("bin/nvcc", "bin"),
            ("include/cuda_runtime.h", "include"),
            ("lib/libcudart.so.13", "lib"),
            ("lib64/libcudart.so.13", "lib"),
            ("lib/libcudart_static.a", "static"),
            ("lib/stubs/libcuda.so", "stubs"),
            ("stubs/libcuda.so", "stubs"),
            ("share/pkgconfig/cudart-13.0.pc", "dev"),
            ("lib/cmake/cudnn/cudnn-config.cmake", "dev"),
            ("samples/mnist/main.cpp", "samples"),
            (
                "python/tensorrt-10.14.1-cp312-none-linux_x86_64.whl",
                "python",
            ),
            ("share/doc/README", "doc"),
            ("LICENSE", "out"),
            ("version.json", "out"),
        ] {
            assert_eq!(output_of(Path::new(path)), output, "{path}");
        }
    }
}
