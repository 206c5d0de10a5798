//! Realising a set of packages into the store: prepared in parallel, ordered by the
//! libraries they need from each other, then each output patched and added in order,
//! `out` last as links to the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cudapkgs_elf::auto::driver_dir_problem;
use cudapkgs_elf::patch::{Changes, RunpathChange};
use cudapkgs_elf::resolve::is_file_name;
use cudapkgs_redist::split::files;
use cudapkgs_report::{Phase, Reporter, Task};
use cudapkgs_store::store::{Scan, Store};

use crate::error::{Error, Missing};
use crate::prepare::{
    DEV_PLACEHOLDER, ElfFile, INCLUDE_PLACEHOLDER, Input, LIB_PLACEHOLDER, Prepared, Pruned,
    foreign_loads, foreign_needs, prepare,
};
use crate::record;
use crate::targets::TargetReport;

/// The order outputs enter the store: libraries first, so that the others can point
/// at them; `out` comes after all of these.
pub const ADD_ORDER: &[&str] = &[
    "lib", "static", "include", "stubs", "bin", "dev", "doc", "samples", "python",
];

/// How to build.
#[derive(Debug, Clone)]
pub struct Options {
    /// Added to the runpath of files that use the driver (`/run/opengl-driver/lib`);
    /// an absolute folder.
    pub driver_dir: String,
    /// The GPUs whose kernels are checked.
    pub gpus: Vec<cudapkgs_fatbin::Gpu>,
    /// A kernel without a usable image fails the build instead of warning.
    pub strict_targets: bool,
    /// Packages prepared at once.
    pub jobs: usize,
    /// Register each output as the garbage-collector roots `<package>-<output>` (the
    /// latest build) and `<package>-<version>-<output>` (kept when a build of another
    /// version takes the short name), `out` as `<package>` and `<package>-<version>`.
    pub gc_roots: bool,
    /// Build even when a record says these inputs were built (`--rebuild`).
    pub rebuild: bool,
    /// Prune the device code of the outputs to these capabilities; outputs pruned are
    /// paths of their own, named so (`…-lib-sm90`).
    pub prune: Option<cudapkgs_fatbin::PruneRequest>,
}

/// One package in the store.
#[derive(Debug, Clone)]
pub struct Built {
    pub package: String,
    pub version: String,
    /// (output, store path) in the order added; `out` last.
    pub outputs: Vec<(String, String)>,
    /// Packages of the set whose libraries it needs.
    pub depends_on: Vec<String>,
    pub targets: TargetReport,
    /// Roots this build took from another path: (root, the path it held). That path
    /// stays rooted by its own root (its base name).
    pub repointed: Vec<(String, String)>,
    /// Taken from a build record: nothing was unpacked or added.
    pub reused: bool,
    /// What pruning removed, per output (empty without `Options::prune`).
    pub pruned: BTreeMap<String, Pruned>,
    /// The licence its source or its wheel metadata names.
    pub licence: Option<String>,
}

impl Built {
    pub fn output(&self, name: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|(output, _)| output == name)
            .map(|(_, path)| path.as_str())
    }
}

/// Builds `inputs` into `store`; results in build order. `reporter` is told of each
/// package's phases: unpack, split (with pruning), patch and add.
pub fn build(
    store: &mut Store,
    inputs: &[Input],
    options: &Options,
    reporter: &dyn Reporter,
) -> Result<Vec<Built>, Error> {
    let key = record_key(store, inputs, options)?;
    if !options.rebuild {
        if let Some(built) = recalled(store, &key, options)? {
            return Ok(built);
        }
    }
    let built = build_anew(store, inputs, options, reporter)?;
    record::keep(store, &key, &built)?;
    Ok(built)
}

/// The key a build of `inputs` with `options` is recorded under. Inputs whose SHA-256 is
/// known are not read, so the key of a set to download is known before its downloads.
pub fn record_key(store: &mut Store, inputs: &[Input], options: &Options) -> Result<String, Error> {
    check(inputs, options)?;
    record::key(store, inputs, options)
}

/// A record of `key` obtained elsewhere (a binary cache), kept once the outputs it names
/// are valid here, and the build it records rooted as a build would root it; `None` when
/// an output is missing.
pub fn adopt(
    store: &mut Store,
    key: &str,
    record: &str,
    options: &Options,
) -> Result<Option<Vec<Built>>, Error> {
    let Some(paths) = record::paths(record) else {
        return Ok(None);
    };
    for path in &paths {
        if store.info(path)?.is_none() {
            return Ok(None);
        }
    }
    store.set_build_record(key, record)?;
    recalled(store, key, options)
}

/// The store paths a record's text names; `None` for text that is no record.
pub fn record_paths(record: &str) -> Option<Vec<String>> {
    record::paths(record)
}

/// The recorded build of these inputs, rooted again as a build would root it; `None`
/// when there is no record, or its outputs went meanwhile.
pub fn recalled(
    store: &mut Store,
    key: &str,
    options: &Options,
) -> Result<Option<Vec<Built>>, Error> {
    let Some(mut built) = record::recall(store, key)? else {
        return Ok(None);
    };
    if options.gc_roots {
        for package in &mut built {
            let mut repointed = Vec::new();
            for (output, path) in &package.outputs {
                let short = if output == "out" {
                    package.package.clone()
                } else {
                    format!("{}-{output}", package.package)
                };
                match root(store, path, &short, &mut repointed) {
                    // Collected between the record's check and its roots: build.
                    Err(Error::Store(cudapkgs_store::Error::NotValid(_))) => return Ok(None),
                    other => other?,
                }
            }
            package.repointed = repointed;
        }
    }
    Ok(Some(built))
}

/// Builds `inputs` from their archives.
fn build_anew(
    store: &mut Store,
    inputs: &[Input],
    options: &Options,
    reporter: &dyn Reporter,
) -> Result<Vec<Built>, Error> {
    // Inside the store folder: moves into place stay on one file system, and a build
    // killed midway leaves a temporary the next open of the store removes.
    let work = store.work_dir()?;
    let prepared: Vec<Prepared> = cudapkgs_redist::parallel::map(inputs, options.jobs, |input| {
        prepare(
            input,
            &work.path().join(&input.package),
            &options.gpus,
            options.prune.as_ref(),
            reporter,
        )
    })
    .into_iter()
    .collect::<Result<_, _>>()?;
    if options.strict_targets {
        let missing: Vec<String> = prepared
            .iter()
            .flat_map(|p| {
                p.targets.missing.iter().map(move |(cap, file, kernel)| {
                    format!(
                        "{}: {file}: {kernel} has no image for {cap}",
                        p.input.package
                    )
                })
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::Targets(format!(
                "{} kernels have no usable image for the GPUs checked:\n  {}",
                missing.len(),
                missing
                    .iter()
                    .take(20)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )));
        }
    }
    let dependencies = dependencies(&prepared)?;
    let order = build_order(&prepared, &dependencies)?;
    let mut built: BTreeMap<usize, Built> = BTreeMap::new();
    let mut result = Vec::new();
    for index in order {
        let deps: Vec<&Built> = dependencies[index].iter().map(|d| &built[d]).collect();
        let deps_prepared: Vec<&Prepared> =
            dependencies[index].iter().map(|d| &prepared[*d]).collect();
        let done = realise(
            store,
            &prepared[index],
            &deps,
            &deps_prepared,
            options,
            reporter,
        )?;
        result.push(done.clone());
        built.insert(index, done);
    }
    Ok(result)
}

/// Refuses what would put a file outside the build's folders or a bad entry into a
/// runpath, before anything is unpacked: package names and versions name folders and
/// store paths; the driver folder is written into runpaths as it is.
fn check(inputs: &[Input], options: &Options) -> Result<(), Error> {
    if let Some(problem) = driver_dir_problem(Path::new(&options.driver_dir)) {
        return Err(Error::DriverDir {
            dir: options.driver_dir.clone(),
            problem,
        });
    }
    for input in inputs {
        for (what, value) in [("name", &input.package), ("version", &input.version)] {
            cudapkgs_nix::store_path::check_name(value).map_err(|error| Error::BadInput {
                package: input.package.clone(),
                problem: format!("the {what} cannot name a store path: {error}"),
            })?;
        }
    }
    Ok(())
}

/// For each package, the packages whose `lib` outputs provide what it needs; a library
/// no package provides must be a system one, else the build fails naming every such
/// library of the set at once. A needed
/// entry that is a path rather than a file name fails the build.
fn dependencies(prepared: &[Prepared]) -> Result<Vec<Vec<usize>>, Error> {
    let system = cudapkgs_elf::resolve::SearchPaths::system_folders();
    let mut all = Vec::new();
    let mut missing = Vec::new();
    for (index, package) in prepared.iter().enumerate() {
        for file in &package.elf_files {
            if let Some(entry) = file.info.needed.iter().find(|name| !is_file_name(name)) {
                return Err(Error::NeededNotAFileName {
                    package: package.input.package.clone(),
                    file: format!("{}/{}", file.output, file.relative.display()),
                    entry: entry.clone(),
                });
            }
        }
        let mut deps = Vec::new();
        for (library, file) in foreign_needs(package) {
            let provider = prepared
                .iter()
                .enumerate()
                .find(|(other, p)| *other != index && p.provides.contains_key(&library));
            match provider {
                Some((other, _)) => {
                    if !deps.contains(&other) {
                        deps.push(other);
                    }
                }
                None if system.iter().any(|folder| folder.join(&library).exists()) => {}
                None => missing.push(Missing {
                    package: package.input.package.clone(),
                    file,
                    library,
                }),
            }
        }
        deps.sort_unstable();
        all.push(deps);
    }
    if !missing.is_empty() {
        return Err(Error::Unresolved(missing));
    }
    add_load_edges(prepared, &mut all);
    Ok(all)
}

/// Run-time loads make dependencies too: a package whose file loads a library another
/// package of the set provides depends on it, unless that would close a circle with the
/// edges already there (store paths cannot refer to each other both ways; the needed
/// libraries' edges come first).
fn add_load_edges(prepared: &[Prepared], dependencies: &mut [Vec<usize>]) {
    for (index, package) in prepared.iter().enumerate() {
        for load in foreign_loads(package).into_keys() {
            let providers = prepared.iter().enumerate().filter(|(other, p)| {
                *other != index && p.provides.keys().any(|name| load.matches(name))
            });
            for (other, _) in providers {
                if !dependencies[index].contains(&other) && !reaches(dependencies, other, index) {
                    dependencies[index].push(other);
                    dependencies[index].sort_unstable();
                }
            }
        }
    }
}

/// Whether `from` depends on `to`, directly or not.
fn reaches(dependencies: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; dependencies.len()];
    let mut pending = vec![from];
    while let Some(at) = pending.pop() {
        if at == to {
            return true;
        }
        if !std::mem::replace(&mut seen[at], true) {
            pending.extend(&dependencies[at]);
        }
    }
    false
}

/// Dependencies first; among the ready, the order given.
fn build_order(prepared: &[Prepared], dependencies: &[Vec<usize>]) -> Result<Vec<usize>, Error> {
    let mut order = Vec::new();
    let mut done = vec![false; prepared.len()];
    while order.len() < prepared.len() {
        let ready = (0..prepared.len())
            .find(|&i| !done[i] && dependencies[i].iter().all(|&d| done[d]))
            .ok_or_else(|| {
                let stuck: Vec<&str> = (0..prepared.len())
                    .filter(|&i| !done[i])
                    .map(|i| prepared[i].input.package.as_str())
                    .collect();
                Error::Cycle(stuck.join(", "))
            })?;
        done[ready] = true;
        order.push(ready);
    }
    Ok(order)
}

/// Patches and adds one package's outputs.
fn realise(
    store: &mut Store,
    package: &Prepared,
    deps: &[&Built],
    deps_prepared: &[&Prepared],
    options: &Options,
    reporter: &dyn Reporter,
) -> Result<Built, Error> {
    let name = &package.input.package;
    let version = &package.input.version;
    // Library name → the logical folder that has it, in the dependencies' `lib` outputs.
    let mut folders: BTreeMap<String, String> = BTreeMap::new();
    for (dep, prepared) in deps.iter().zip(deps_prepared) {
        if let Some(lib) = dep.output("lib") {
            for (library, folder) in &prepared.provides {
                folders
                    .entry(library.clone())
                    .or_insert_with(|| join(lib, folder));
            }
        }
    }
    let mut candidates: Vec<String> = deps
        .iter()
        .flat_map(|d| d.outputs.iter().map(|(_, p)| p.clone()))
        .collect();
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut repointed = Vec::new();
    let links = unversioned_links(&package.provides);
    let present = |output: &&&str| {
        package.outputs.contains(output) || (**output == "dev" && !links.is_empty())
    };
    let adding: Vec<&&str> = ADD_ORDER.iter().filter(present).collect();
    // Each output, and `out`.
    let task = Task::start(reporter, Phase::Add, name, Some(adding.len() as u64 + 1));
    for output in adding {
        let dir = package.root.join(output);
        for file in package.elf_files.iter().filter(|f| f.output == *output) {
            let runpath = runpath(file, package, &folders, &outputs, options);
            set_runpath(&dir.join(&file.relative), &runpath)?;
        }
        if *output == "dev" {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            fill_pkg_config(&dir, &outputs)?;
            link_for_linking(&dir, &links, &outputs)?;
        }
        let store_name = match (package.pruned.get(output), &options.prune) {
            (Some(done), Some(request)) if done.files > 0 => {
                format!("{name}-{version}-{output}-{}", pruned_suffix(request))
            }
            _ => format!("{name}-{version}-{output}"),
        };
        let path = add(
            store,
            &dir,
            &store_name,
            &candidates,
            options,
            &format!("{name}-{output}"),
            &mut repointed,
        )?;
        if *output == "lib" {
            for (library, folder) in &package.provides {
                folders.insert(library.clone(), join(&path, folder));
            }
        }
        candidates.push(path.clone());
        outputs.push(((*output).to_owned(), path));
        task.advance(1);
    }
    let out = package.root.join("out");
    link_outputs(package, &out, &outputs)?;
    let path = add(
        store,
        &out,
        &format!("{name}-{version}"),
        &candidates,
        options,
        name,
        &mut repointed,
    )?;
    task.advance(1);
    drop(task);
    outputs.push(("out".to_owned(), path));
    Ok(Built {
        package: name.clone(),
        version: version.clone(),
        outputs,
        depends_on: deps.iter().map(|d| d.package.clone()).collect(),
        targets: package.targets.clone(),
        repointed,
        reused: false,
        pruned: package
            .pruned
            .iter()
            .map(|(output, done)| ((*output).to_owned(), done.clone()))
            .collect(),
        licence: package.licence.clone(),
    })
}

/// What the name of a pruned output says: its capabilities (`sm90`, `sm80-sm90a`).
fn pruned_suffix(request: &cudapkgs_fatbin::PruneRequest) -> String {
    let names: Vec<String> = request
        .capabilities
        .iter()
        .map(|capability| format!("sm{}", capability.digits()))
        .collect();
    names.join("-")
}

/// Adds one output (its store name is `name`) and, with roots, roots it by its path's
/// base name (which no other build takes) and as the short `root`,
/// noting in `repointed` when the short root held another path before.
fn add(
    store: &mut Store,
    dir: &Path,
    name: &str,
    candidates: &[String],
    options: &Options,
    root_name: &str,
    repointed: &mut Vec<(String, String)>,
) -> Result<String, Error> {
    let scan = Scan::ClosureOf(candidates.to_vec());
    if !options.gc_roots {
        return Ok(store.add(dir, name, &scan, None)?.into_string());
    }
    let before = rooted_by(store, root_name)?;
    // Rooted by the short name as it is added, so no collection can take it first.
    let path = store.add(dir, name, &scan, Some(root_name))?;
    keep_rooted(store, &path, root_name, before, repointed)?;
    Ok(path.into_string())
}

/// Roots `path` by its own name (its base name, hash included: builds of one version
/// with other options have other paths, so no other build takes it) and by the `short`
/// name, noting in `repointed` when `short` held another path before.
fn root(
    store: &mut Store,
    path: &str,
    short: &str,
    repointed: &mut Vec<(String, String)>,
) -> Result<(), Error> {
    let before = rooted_by(store, short)?;
    let checked = store.parse_path(path)?;
    store.add_root(short, &checked)?;
    keep_rooted(store, path, short, before, repointed)
}

/// The path the root `name` holds.
fn rooted_by(store: &Store, name: &str) -> Result<Option<String>, Error> {
    Ok(store
        .roots()?
        .into_iter()
        .find(|existing| existing.name == name)
        .map(|existing| existing.path))
}

/// Roots `path` by its base name, and `before` (what the short root held) too when
/// the short root moved from it, noting that in `repointed`.
fn keep_rooted(
    store: &mut Store,
    path: &str,
    short: &str,
    before: Option<String>,
    repointed: &mut Vec<(String, String)>,
) -> Result<(), Error> {
    let own_root = cudapkgs_store::gc::own_root_name;
    let checked = store.parse_path(path)?;
    store.add_root(&own_root(path), &checked)?;
    if let Some(before) = before.filter(|before| before != path) {
        // Also when a path was rooted by another name (older versions used the store
        // name without its hash): the warning promises it stays rooted.
        let checked = store.parse_path(&before)?;
        store.add_root(&own_root(&before), &checked)?;
        repointed.push((short.to_owned(), before));
    }
    Ok(())
}

fn join(store_path: &str, folder: &Path) -> String {
    if folder.as_os_str().is_empty() {
        store_path.to_owned()
    } else {
        format!("{store_path}/{}", folder.display())
    }
}

/// `$ORIGIN` for libraries (nvrtc loads its builtins from beside itself), then the
/// folders of the needed libraries, then those of the libraries it loads at run time
/// (cuDNN's sub-libraries, cuBLASLt, NVRTC), then the driver folder for driver users.
fn runpath(
    file: &ElfFile,
    package: &Prepared,
    folders: &BTreeMap<String, String>,
    added: &[(String, String)],
    options: &Options,
) -> String {
    let mut entries: Vec<String> = Vec::new();
    let mut push = |entry: String| {
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    };
    if file.output == "lib" {
        push("$ORIGIN".to_owned());
    }
    let own_lib = added
        .iter()
        .find(|(o, _)| o == "lib")
        .map(|(_, p)| p.as_str());
    let mut driver = file.opens_driver();
    for library in &file.info.needed {
        if cudapkgs_elf::resolve::is_driver_library(library) {
            driver = true;
        } else if let Some(folder) = package.provides.get(library) {
            let beside = file.relative.parent().unwrap_or(Path::new("")) == folder.as_path();
            if file.output == "lib" && beside {
                continue;
            }
            if let Some(lib) = own_lib {
                push(join(lib, folder));
            }
        } else if let Some(folder) = folders.get(library) {
            push(folder.clone());
        }
    }
    for load in &file.loads {
        let own = package.provides.iter().find(|(name, _)| load.matches(name));
        if let Some((_, folder)) = own {
            let beside = file.relative.parent().unwrap_or(Path::new("")) == folder.as_path();
            if let (Some(lib), false) = (own_lib, file.output == "lib" && beside) {
                push(join(lib, folder));
            }
        } else if let Some((_, folder)) = folders.iter().find(|(name, _)| load.matches(name)) {
            push(folder.clone());
        }
    }
    if driver {
        push(options.driver_dir.clone());
    }
    entries.join(":")
}

fn set_runpath(path: &Path, runpath: &str) -> Result<(), Error> {
    // Mapped, not read: planning looks at the headers only (libraries reach 500 MB); the
    // rewrite goes to a copy renamed into place, so the mapping stays valid.
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mapped = cudapkgs_tree::Mapped::open(&file).map_err(|e| Error::io(path, e))?;
    let bytes = mapped.bytes();
    let change = if runpath.is_empty() {
        RunpathChange::Remove
    } else {
        RunpathChange::Set(runpath.to_owned())
    };
    let changes = Changes {
        runpath: change,
        ..Changes::default()
    };
    let plan = cudapkgs_elf::patch::plan(bytes, &changes).map_err(|source| Error::Elf {
        path: path.to_owned(),
        source,
    })?;
    cudapkgs_elf::write::rewrite(path, &plan).map_err(|e| Error::io(path, e))
}

/// For each versioned library of the `lib` output (`lib/libcublas.so.13`) without its
/// unversioned name: (the link `-lcublas` looks for, relative to an output, and the file
/// it names, relative to the `lib` output). The shortest version of a name is taken
/// (`libX.so.13` over `libX.so.13.1.0`), as the soname usually is.
pub(crate) fn unversioned_links(provides: &BTreeMap<String, PathBuf>) -> Vec<(PathBuf, PathBuf)> {
    let mut chosen: BTreeMap<(PathBuf, String), String> = BTreeMap::new();
    for (name, folder) in provides {
        let Some((stem, version)) = name.split_once(".so.") else {
            continue;
        };
        let versioned = !version.is_empty()
            && version
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        let unversioned = format!("{stem}.so");
        if !versioned || provides.contains_key(&unversioned) {
            continue;
        }
        let entry = chosen
            .entry((folder.clone(), unversioned))
            .or_insert_with(|| name.clone());
        if name.len() < entry.len() {
            entry.clone_from(name);
        }
    }
    chosen
        .into_iter()
        .map(|((folder, link), target)| (folder.join(link), folder.join(target)))
        .collect()
}

/// The `dev` output's links for linking (`lib/libcublas.so` → the `lib` output's
/// `lib/libcublas.so.13`), absolute so they name the store path.
fn link_for_linking(
    dev: &Path,
    links: &[(PathBuf, PathBuf)],
    added: &[(String, String)],
) -> Result<(), Error> {
    let Some((_, lib)) = added.iter().find(|(output, _)| output == "lib") else {
        return Ok(());
    };
    for (link, target) in links {
        let at = dev.join(link);
        if at.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::os::unix::fs::symlink(Path::new(lib).join(target), &at)
            .map_err(|e| Error::io(&at, e))?;
    }
    Ok(())
}

/// pkg-config files point at the `lib` and `include` outputs' store paths, and at their
/// own output through `${pcfiledir}` (a path cannot name itself).
fn fill_pkg_config(dev: &Path, added: &[(String, String)]) -> Result<(), Error> {
    let path_of = |output: &str| {
        added
            .iter()
            .find(|(o, _)| o == output)
            .map(|(_, p)| p.clone())
    };
    let own = "${pcfiledir}/../..".to_owned();
    let lib = path_of("lib").unwrap_or_else(|| own.clone());
    let include = path_of("include").unwrap_or_else(|| own.clone());
    for relative in files(dev)? {
        let path = dev.join(&relative);
        if path.extension().is_none_or(|e| e != "pc") || path.is_symlink() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let filled = text
            .replace(LIB_PLACEHOLDER, &lib)
            .replace(INCLUDE_PLACEHOLDER, &include)
            .replace(DEV_PLACEHOLDER, &own);
        std::fs::write(&path, filled).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// `out`: the package's remaining files, and a link to every file of the other outputs
/// at its path in the package.
fn link_outputs(package: &Prepared, out: &Path, added: &[(String, String)]) -> Result<(), Error> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    for (output, store_path) in added {
        for relative in files(&package.root.join(output))? {
            let link = out.join(&relative);
            if link.symlink_metadata().is_ok() {
                continue;
            }
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let target: PathBuf = Path::new(store_path).join(&relative);
            std::os::unix::fs::symlink(&target, &link).map_err(|e| Error::io(&link, e))?;
        }
    }
    Ok(())
}
