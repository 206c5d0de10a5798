//! Build records: a build's inputs (each archive's SHA-256, the options that shape its
//! outputs, this builder's version, the store folder) hashed into a key, kept in the
//! store's database with the outputs it gave. A build whose key is recorded, and whose
//! outputs are all still valid, is done: nothing is unpacked, hashed or added again.
//!
//! Input files are hashed once per state: the store remembers each file's SHA-256 with
//! its device, inode, size and change time, so an unchanged archive is not read again.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cudapkgs_store::store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::prepare::{Input, Pruned};
use crate::realise::{Built, Options};
use crate::targets::TargetReport;

/// Bumped whenever the same inputs would build different outputs.
const RECORD_FORMAT: u32 = 3;

/// What a record's key is the hash of, written as canonical JSON.
#[derive(Serialize, schemars::JsonSchema)]
struct KeyInputs<'a> {
    format: u32,
    builder: &'a str,
    store_folder: &'a str,
    driver_dir: &'a str,
    gpus: Vec<String>,
    strict_targets: bool,
    prune: Option<String>,
    /// Package → (version, the archive's SHA-256), sorted by package.
    packages: BTreeMap<&'a str, (&'a str, String)>,
}

/// The key of building `inputs` with `options` into `store`.
pub(crate) fn key(store: &mut Store, inputs: &[Input], options: &Options) -> Result<String, Error> {
    let mut packages = BTreeMap::new();
    for input in inputs {
        let hash = match &input.sha256 {
            Some(known) => known.clone(),
            None => archive_hash(store, &input.archive)?,
        };
        packages.insert(input.package.as_str(), (input.version.as_str(), hash));
    }
    let inputs = KeyInputs {
        format: RECORD_FORMAT,
        builder: env!("CARGO_PKG_VERSION"),
        store_folder: store.folder(),
        driver_dir: &options.driver_dir,
        gpus: options.gpus.iter().map(|gpu| format!("{gpu:?}")).collect(),
        strict_targets: options.strict_targets,
        prune: options.prune.as_ref().map(|request| format!("{request:?}")),
        packages,
    };
    let text = serde_json::to_string(&inputs).expect("plain data serialises");
    Ok(hex(&Sha256::digest(text.as_bytes())))
}

/// The SHA-256 of an input file, remembered by the store for the file's state.
fn archive_hash(store: &mut Store, path: &Path) -> Result<String, Error> {
    let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    let metadata = std::fs::metadata(&canonical).map_err(|e| Error::io(path, e))?;
    let identity = format!(
        "{}:{}:{}:{}.{}",
        metadata.dev(),
        metadata.ino(),
        metadata.len(),
        metadata.ctime(),
        metadata.ctime_nsec()
    );
    let name = canonical.to_string_lossy();
    if let Some(hash) = store.remembered_hash(&name, &identity)? {
        return Ok(hash);
    }
    let mut file =
        cudapkgs_tree::dir::open_named_file(&canonical).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let hash = hex(&hasher.finalize());
    store.remember_hash(&name, &identity, &hash)?;
    Ok(hash)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        use std::fmt::Write;
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// One package of a record.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct RecordedPackage {
    package: String,
    version: String,
    outputs: Vec<(String, String)>,
    depends_on: Vec<String>,
    architectures: BTreeMap<String, Vec<String>>,
    missing: Vec<(String, String, String)>,
    kernels_checked: usize,
    /// Output → what pruning did to it.
    pruned: BTreeMap<String, Pruned>,
    /// What a cache checks before it takes the outputs (`push` refuses what may not be
    /// redistributed).
    licence: Option<String>,
}

/// Keeps what `built` gave under `key`.
pub(crate) fn keep(store: &mut Store, key: &str, built: &[Built]) -> Result<(), Error> {
    let packages: Vec<RecordedPackage> = built
        .iter()
        .map(|b| RecordedPackage {
            package: b.package.clone(),
            version: b.version.clone(),
            outputs: b.outputs.clone(),
            depends_on: b.depends_on.clone(),
            architectures: b
                .targets
                .architectures
                .iter()
                .map(|(output, archs)| ((*output).to_owned(), archs.iter().cloned().collect()))
                .collect(),
            missing: b.targets.missing.clone(),
            kernels_checked: b.targets.kernels_checked,
            pruned: b.pruned.clone(),
            licence: b.licence.clone(),
        })
        .collect();
    let text = serde_json::to_string(&packages).expect("plain data serialises");
    Ok(store.set_build_record(key, &text)?)
}

/// The build recorded under `key`, when there is one and all its outputs are still
/// valid (a collection may have removed some); otherwise `None`, and the set is built.
pub(crate) fn recall(store: &Store, key: &str) -> Result<Option<Vec<Built>>, Error> {
    let Some(text) = store.build_record(key)? else {
        return Ok(None);
    };
    // A record this version cannot read is as good as none.
    let Ok(packages) = serde_json::from_str::<Vec<RecordedPackage>>(&text) else {
        return Ok(None);
    };
    for package in &packages {
        for (_, path) in &package.outputs {
            if store.info(path)?.is_none() || store.physical(path).symlink_metadata().is_err() {
                return Ok(None);
            }
        }
    }
    Ok(Some(
        packages
            .into_iter()
            .map(|p| Built {
                package: p.package,
                version: p.version,
                outputs: p.outputs,
                depends_on: p.depends_on,
                targets: TargetReport {
                    architectures: p
                        .architectures
                        .into_iter()
                        .filter_map(|(output, archs)| {
                            let output = output_name(&output)?;
                            Some((output, archs.into_iter().collect()))
                        })
                        .collect(),
                    missing: p.missing,
                    kernels_checked: p.kernels_checked,
                },
                repointed: Vec::new(),
                reused: true,
                pruned: p.pruned,
                licence: p.licence,
            })
            .collect(),
    ))
}

/// The store paths a record's text names (every output of every package).
pub(crate) fn paths(text: &str) -> Option<Vec<String>> {
    let packages: Vec<RecordedPackage> = serde_json::from_str(text).ok()?;
    Some(
        packages
            .into_iter()
            .flat_map(|p| p.outputs.into_iter().map(|(_, path)| path))
            .collect(),
    )
}

/// The output's name as the outputs' table spells it.
fn output_name(name: &str) -> Option<&'static str> {
    cudapkgs_redist::split::OUTPUTS
        .iter()
        .copied()
        .find(|known| *known == name)
}
