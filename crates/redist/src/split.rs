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

use cudapkgs_tree::dir::{Dir, Kind};
use cudapkgs_tree::links::{LinkTree, Scope};
use cudapkgs_tree::scratch::{MadeFolders, Scratch};

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
/// Every step works through a handle on `root` and follows no link: a link where a
/// fix-up expects a folder (`nvidia`, `lib`, `pkg-config`) is left as it is.
pub fn fix_up(root: &Path, options: &FixupOptions) -> Result<Vec<String>, Error> {
    let dir = Dir::open(root).map_err(io(root))?;
    let mut done = Vec::new();
    wheel_to_nvidia_layout(&dir, &mut done)?;
    flatten_cuda_major(&dir, &mut done)?;
    move_pkg_config(&dir, &options.locations, &mut done)?;
    if !options.allow_usr {
        refuse_usr(&dir)?;
    }
    // Moving folders changes where `..` leads: a link that stayed inside as unpacked may
    // not after the flattening.
    if let Some(escape) = dir.escaping_link().map_err(io(root))? {
        return Err(Error::BadPackage {
            path: root.to_owned(),
            problem: format!("{} after the fix-ups", crate::unpack::escaping(&escape)),
        });
    }
    Ok(done)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// An I/O error at `relative` under `dir`, named by its full path.
fn io_at<'a>(dir: &'a Dir, relative: &'a Path) -> impl Fn(std::io::Error) -> Error + 'a {
    move |e| Error::io(&dir.path().join(relative), e)
}

fn is_folder(dir: &Dir, relative: &Path) -> Result<bool, Error> {
    Ok(dir.kind(relative).map_err(io_at(dir, relative))? == Some(Kind::Folder))
}

/// A wheel (`nvidia/<component>/{lib,include,bin}` beside `*.dist-info/`) takes NVIDIA's
/// archive layout: the component folders' contents at the top, the licence as `LICENSE`,
/// the wheel's metadata dropped.
fn wheel_to_nvidia_layout(dir: &Dir, done: &mut Vec<String>) -> Result<(), Error> {
    let top = Path::new("");
    let metadata: Vec<PathBuf> = dir
        .entries(top)
        .map_err(io_at(dir, top))?
        .into_iter()
        .filter(|(name, kind)| {
            *kind == Kind::Folder && name.to_string_lossy().ends_with(".dist-info")
        })
        .map(|(name, _)| PathBuf::from(name))
        .collect();
    let nvidia = Path::new("nvidia");
    if !is_folder(dir, nvidia)? || metadata.is_empty() {
        return Ok(());
    }
    for (component, kind) in dir.entries(nvidia).map_err(io_at(dir, nvidia))? {
        if kind != Kind::Folder {
            continue;
        }
        merge_into(dir, &nvidia.join(&component), top)?;
        done.push(format!(
            "moved nvidia/{}/ to the top",
            component.to_string_lossy()
        ));
    }
    let license = Path::new("LICENSE");
    for info in &metadata {
        for name in ["licenses/License.txt", "LICENSE", "License.txt"] {
            let candidate = info.join(name);
            let is_file = dir.kind(&candidate).map_err(io_at(dir, &candidate))? == Some(Kind::File);
            if is_file && dir.kind(license).map_err(io_at(dir, license))?.is_none() {
                dir.rename_new(&candidate, dir, license)
                    .map_err(io_at(dir, &candidate))?;
            }
        }
        dir.remove_all(info).map_err(io_at(dir, info))?;
    }
    dir.remove_all(nvidia).map_err(io_at(dir, nvidia))
}

/// Moves everything under `from` into `to` (both relative to `dir`), merging folders; an
/// entry that would replace another is refused.
fn merge_into(dir: &Dir, from: &Path, to: &Path) -> Result<(), Error> {
    dir.create_dir_all(to).map_err(io_at(dir, to))?;
    for (name, kind) in dir.entries(from).map_err(io_at(dir, from))? {
        let source = from.join(&name);
        let destination = to.join(&name);
        let present = dir.kind(&destination).map_err(io_at(dir, &destination))?;
        match present {
            Some(Kind::Folder) if kind == Kind::Folder => merge_into(dir, &source, &destination)?,
            Some(_) => {
                return Err(Error::BadPackage {
                    path: dir.path().join(&source),
                    problem: format!(
                        "would go to {}, which another part of the package holds already",
                        destination.display()
                    ),
                });
            }
            None => dir
                .rename_new(&source, dir, &destination)
                .map_err(io_at(dir, &destination))?,
        }
    }
    Ok(())
}

/// `lib/12/…` → `lib/…` (cuDNN and others keep per-CUDA folders).
fn flatten_cuda_major(dir: &Dir, done: &mut Vec<String>) -> Result<(), Error> {
    let lib = Path::new("lib");
    if !is_folder(dir, lib)? {
        return Ok(());
    }
    for (name, kind) in dir.entries(lib).map_err(io_at(dir, lib))? {
        let is_major = name
            .to_str()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_major || kind != Kind::Folder {
            continue;
        }
        let folder = lib.join(&name);
        for (inner, _) in dir.entries(&folder).map_err(io_at(dir, &folder))? {
            let destination = lib.join(&inner);
            if dir
                .kind(&destination)
                .map_err(io_at(dir, &destination))?
                .is_some()
            {
                return Err(Error::BadPackage {
                    path: dir.path().join(folder.join(&inner)),
                    problem: format!(
                        "flattening into lib/ would replace {}",
                        dir.path().join(&destination).display()
                    ),
                });
            }
            dir.rename_new(&folder.join(&inner), dir, &destination)
                .map_err(io_at(dir, &destination))?;
        }
        dir.remove_dir(&folder).map_err(io_at(dir, &folder))?;
        done.push(format!(
            "flattened lib/{} into lib/",
            name.to_string_lossy()
        ));
    }
    Ok(())
}

/// The most bytes of a pkg-config or CMake file read.
const MAX_TEXT_FILE: u64 = 16 << 20;

/// `pkg-config/*.pc` → `share/pkgconfig/`, with their folders rewritten.
fn move_pkg_config(dir: &Dir, at: &OutputLocations, done: &mut Vec<String>) -> Result<(), Error> {
    let source = Path::new("pkg-config");
    if !is_folder(dir, source)? {
        return Ok(());
    }
    let target = Path::new("share/pkgconfig");
    dir.create_dir_all(target).map_err(io_at(dir, target))?;
    for (name, kind) in dir.entries(source).map_err(io_at(dir, source))? {
        let path = source.join(&name);
        if kind != Kind::File {
            return Err(Error::BadPackage {
                path: dir.path().join(&path),
                problem: format!("is {}; pkg-config files must be files", kind.described()),
            });
        }
        let bytes = dir.read(&path, MAX_TEXT_FILE).map_err(io_at(dir, &path))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::BadPackage {
            path: dir.path().join(&path),
            problem: "is not UTF-8 text".to_owned(),
        })?;
        let rewritten: String = text
            .lines()
            .map(|line| rewrite_pc_line(line, at) + "\n")
            .collect();
        let destination = target.join(&name);
        dir.create_file(&destination, 0o644)
            .and_then(|mut file| std::io::Write::write_all(&mut file, rewritten.as_bytes()))
            .map_err(io_at(dir, &destination))?;
        dir.remove_file(&path).map_err(io_at(dir, &path))?;
        done.push(format!(
            "moved pkg-config/{0} to share/pkgconfig/{0}",
            name.to_string_lossy()
        ));
    }
    dir.remove_dir(source).map_err(io_at(dir, source))?;
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
fn refuse_usr(dir: &Dir) -> Result<(), Error> {
    let top = Path::new("");
    for relative in dir.files().map_err(io_at(dir, top))? {
        if output_of(&relative) != "dev"
            || dir.kind(&relative).map_err(io_at(dir, &relative))? != Some(Kind::File)
        {
            continue;
        }
        let text = dir
            .read(&relative, MAX_TEXT_FILE)
            .map_err(io_at(dir, &relative))?;
        let text = String::from_utf8_lossy(&text);
        if let Some((number, line)) = text.lines().enumerate().find(|(_, l)| l.contains("/usr/")) {
            return Err(Error::UsrReference {
                path: dir.path().join(&relative),
                line: number + 1,
                text: line.trim().to_owned(),
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

/// The prefix of the work folders a split leaves beside `out_dir` while it runs.
const WORK_PREFIX: &str = ".cudapkgs-split-";

/// Splits the package tree at `root` into `out_dir/<output>/…` (`out_dir` must not
/// exist; it appears whole or not at all), moving the files out of `root`. With
/// `link_outputs`, `out` also links every file of the other outputs (relative links, for a
/// split folder; a store makes its own). A link whose resolution leaves its output
/// refuses the split.
pub fn split(root: &Path, out_dir: &Path, link_outputs: bool) -> Result<Vec<Output>, Error> {
    if out_dir.symlink_metadata().is_ok() {
        return Err(Error::io(
            out_dir,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"),
        ));
    }
    let tree = Dir::open(root).map_err(io(root))?;
    let mut by_output: BTreeMap<&'static str, Vec<PathBuf>> = BTreeMap::new();
    for file in tree.files().map_err(io(root))? {
        by_output.entry(output_of(&file)).or_default().push(file);
    }
    let parent = cudapkgs_tree::folder_of(out_dir);
    let made = MadeFolders::create_all(parent).map_err(io(parent))?;
    cudapkgs_tree::scratch::remove_abandoned(parent, WORK_PREFIX).map_err(io(parent))?;
    // Becomes `out_dir`: a folder like one the user made (0755 less the umask).
    let scratch = Scratch::create_with_mode(parent, WORK_PREFIX, 0o755).map_err(io(parent))?;
    let work = scratch.dir().map_err(io(parent))?;
    let mut outputs = Vec::new();
    for name in OUTPUTS {
        let Some(list) = by_output.get(name) else {
            continue;
        };
        let mut bytes = 0;
        for relative in list {
            let destination = Path::new(name).join(relative);
            if let Some(folder) = destination.parent() {
                work.create_dir_all(folder).map_err(io_at(&work, folder))?;
            }
            let status = tree.status(relative).map_err(io_at(&tree, relative))?;
            if let Some(status) = status.filter(|s| s.kind == Kind::File) {
                bytes += status.size;
            }
            tree.rename_new(relative, &work, &destination)
                .map_err(io_at(&work, &destination))?;
        }
        let output = work
            .open_dir(Path::new(name))
            .map_err(io_at(&work, Path::new(name)))?;
        if let Some(escape) = output.escaping_link().map_err(io(output.path()))? {
            return Err(Error::BadPackage {
                path: root.to_owned(),
                problem: format!("{} of output {name}", crate::unpack::escaping(&escape)),
            });
        }
        outputs.push(Output {
            name,
            files: list.clone(),
            bytes,
        });
    }
    if link_outputs {
        refuse_links_out_of(&work, root, &[])?;
        link_compatibility_view(&work, &mut outputs)?;
    }
    std::fs::rename(scratch.path(), out_dir).map_err(io(out_dir))?;
    made.keep();
    Ok(outputs)
}

/// A link one output gets to a file of another: `out`'s links to every file of the
/// others, and any a caller makes after the split (the build's `dev` links for linking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossLink {
    /// The output holding the link, and the link's path in it.
    pub output: &'static str,
    pub link: PathBuf,
    /// The output linked into, and the path there.
    pub into: &'static str,
    pub target: PathBuf,
}

impl CrossLink {
    /// The link's target relative to it, as in a folder holding the outputs side by side
    /// (a store writes the other output's path instead: the same place).
    fn relative_target(&self) -> PathBuf {
        let mut target = PathBuf::new();
        for _ in self.link.components() {
            target.push("..");
        }
        target.push(self.into);
        target.push(&self.target);
        target
    }
}

/// Refuses the outputs under `root` (one folder each, as the split left them) when a link
/// would lead out of them once `extra` and `out`'s links to every file of the others are
/// made: each output is a store path of its own, so rising above one is leaving it,
/// unless straight into another of the package's outputs. Nothing is changed.
pub fn refuse_links_out_of_outputs(root: &Path, extra: &[CrossLink]) -> Result<(), Error> {
    let outputs = Dir::open(root).map_err(io(root))?;
    refuse_links_out_of(&outputs, root, extra)
}

/// [`refuse_links_out_of_outputs`] on the outputs under `work`; errors name `package`.
fn refuse_links_out_of(work: &Dir, package: &Path, extra: &[CrossLink]) -> Result<(), Error> {
    let mut tree = LinkTree::read(work).map_err(io(work.path()))?;
    let in_work = |link: &CrossLink| Path::new(link.output).join(&link.link);
    for link in extra {
        tree.plan_link(&in_work(link), &link.relative_target());
    }
    for into in OUTPUTS.iter().filter(|o| **o != "out") {
        for file in tree.files_below(Path::new(into)) {
            let link = CrossLink {
                output: "out",
                link: file.clone(),
                into,
                target: file,
            };
            tree.plan_link(&in_work(&link), &link.relative_target());
        }
    }
    let Some(mut escape) = tree.escaping_link(Scope::SideBySide) else {
        return Ok(());
    };
    let mut parts = escape.link.components();
    let output = parts.next().map(|c| c.as_os_str().to_owned());
    escape.link = parts.as_path().to_owned();
    Err(Error::BadPackage {
        path: package.to_owned(),
        problem: format!(
            "{} of output {}, once out links the files of the other outputs",
            crate::unpack::escaping(&escape),
            output.unwrap_or_default().to_string_lossy()
        ),
    })
}

/// `out` gets a link to every file of the other outputs, at the file's package path.
fn link_compatibility_view(work: &Dir, outputs: &mut Vec<Output>) -> Result<(), Error> {
    let mut links = Vec::new();
    for output in outputs.iter().filter(|o| o.name != "out") {
        for relative in &output.files {
            let link = Path::new("out").join(relative);
            let target = CrossLink {
                output: "out",
                link: relative.clone(),
                into: output.name,
                target: relative.clone(),
            }
            .relative_target();
            if let Some(parent) = link.parent() {
                work.create_dir_all(parent).map_err(io_at(work, parent))?;
            }
            work.symlink(&target, &link).map_err(io_at(work, &link))?;
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

/// Files and links under `root`, relative to it, sorted; folders are implied and never
/// followed through links.
pub fn files(root: &Path) -> Result<Vec<PathBuf>, Error> {
    Dir::open(root)
        .and_then(|dir| dir.files())
        .map_err(io(root))
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
