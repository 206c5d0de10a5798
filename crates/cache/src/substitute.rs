//! Bringing paths from a cache into a store (`cudapkgs copy --from`): each path's narinfo
//! must be signed by a trusted key; its NAR is downloaded, decompressed, hashed, scanned
//! for references and restored in one pass, and registered only when its size, hash and
//! references are those the signed narinfo gives, references first. A path is computed
//! from its contents before anything is registered: the store holds only paths named by
//! their contents, as `nix-store --add` and `cudapkgs build` make them.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};

use cudapkgs_nix::narinfo::NarInfo;
use cudapkgs_nix::scan::ReferenceScanner;
use cudapkgs_nix::signature::{PublicKey, trusted_signer};
use cudapkgs_nix::store_path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use cudapkgs_store::store::{Scan, Store, WorkDir};

use crate::backend::Backend;
use crate::verify::{HashingReader, sha256_field};
use crate::{CACHE_INFO_KEY, Error, NARINFO_LIMIT, compress, narinfo_key};

/// What a substitution trusts.
#[derive(Debug)]
pub struct Options<'a> {
    /// Every narinfo must carry a signature by one of these.
    pub trusted: &'a [PublicKey],
    /// NARs downloaded at once.
    pub jobs: usize,
}

/// What happened to one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Valid in the store already.
    Present(String),
    /// Downloaded, checked and registered.
    Fetched {
        path: String,
        nar_size: u64,
        file_size: u64,
        signer: String,
    },
}

#[derive(Debug, Default)]
pub struct Report {
    pub events: Vec<Event>,
}

/// Copies `paths` (full store paths, or their hash parts) with their closures from
/// `backend` into `store`.
pub fn substitute(
    store: &mut Store,
    backend: &dyn Backend,
    paths: &[String],
    options: &Options<'_>,
    progress: &dyn Fn(&Event),
) -> Result<Report, Error> {
    let store_dir = store.folder().to_owned();
    check_store_dir(backend, &store_dir)?;
    let mut report = Report::default();
    // Every narinfo of the closure is read and checked before any NAR is fetched.
    let mut narinfos: HashMap<String, NarInfo> = HashMap::new();
    // Each with its full path when known: a valid one needs no narinfo.
    let mut pending: Vec<(String, Option<String>)> = Vec::new();
    for path in paths {
        let hash = store_path::hash_part_of(path).to_owned();
        if !store_path::is_hash_part(&hash) {
            return Err(Error::Location(format!(
                "{path:?} is not a store path (or the hash part of one)"
            )));
        }
        pending.push((hash, path.starts_with('/').then(|| path.clone())));
    }
    let mut seen = HashSet::new();
    let mut present = Vec::new();
    while let Some((hash, full)) = pending.pop() {
        if !seen.insert(hash.clone()) {
            continue;
        }
        if let Some(full) = full {
            if store.info(&full)?.is_some() {
                present.push(full);
                continue;
            }
        }
        let info = fetch_narinfo(backend, &store_dir, &hash, options)?;
        if store.info(&info.store_path)?.is_some() {
            present.push(info.store_path.clone());
            continue;
        }
        for reference in &info.references {
            pending.push((
                store_path::hash_part_of(reference).to_owned(),
                Some(format!("{store_dir}/{reference}")),
            ));
        }
        narinfos.insert(info.store_path.clone(), info);
    }
    for path in present {
        let event = Event::Present(path);
        progress(&event);
        report.events.push(event);
    }
    // Every path is checked to be storable before anything is downloaded.
    let planned = dependency_order(&narinfos, &store_dir)
        .into_iter()
        .map(|path| plan(&narinfos[&path], &store_dir))
        .collect::<Result<Vec<_>, _>>()?;
    let work: Vec<WorkDir> = planned
        .iter()
        .map(|_| store.work_dir())
        .collect::<Result<_, _>>()?;
    fetch_all(
        backend,
        &planned,
        &work,
        options.jobs,
        &mut |index, fetched| {
            let event = register(
                store,
                &store_dir,
                &planned[index],
                &work[index],
                &fetched,
                options,
            )?;
            progress(&event);
            report.events.push(event);
            Ok(())
        },
    )?;
    Ok(report)
}

/// Downloads every planned path, `jobs` at once, and hands each download to `register`
/// in the plan's order (references first) as soon as it and those before it are done.
/// The first failure stops the downloads not yet started and is returned.
fn fetch_all(
    backend: &dyn Backend,
    planned: &[Planned<'_>],
    work: &[WorkDir],
    jobs: usize,
    register: &mut dyn FnMut(usize, Fetched) -> Result<(), Error>,
) -> Result<(), Error> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<(usize, Result<Fetched, Error>)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, planned.len().max(1)) {
            let (sender, next, stop) = (sender.clone(), &next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(one) = planned.get(index) else { break };
                    let tree = work[index].path().join("tree");
                    let fetched = download(backend, one.info, &one.references, &tree)
                        .and_then(|fetched| check(backend, one, &fetched).map(|()| fetched));
                    if sender.send((index, fetched)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut done: HashMap<usize, Fetched> = HashMap::new();
        let mut cursor = 0;
        for (index, fetched) in receiver {
            let outcome = fetched.and_then(|fetched| {
                done.insert(index, fetched);
                while let Some(fetched) = done.remove(&cursor) {
                    register(cursor, fetched)?;
                    cursor += 1;
                }
                Ok(())
            });
            if let Err(error) = outcome {
                stop.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
        Ok(())
    })
}

fn check_store_dir(backend: &dyn Backend, store_dir: &str) -> Result<(), Error> {
    let what = format!("{}/{CACHE_INFO_KEY}", backend.describe());
    let bytes = backend
        .get_small(CACHE_INFO_KEY, 64 << 10)?
        .ok_or_else(|| Error::Missing(format!("{what}: not found: is this a binary cache?")))?;
    let info = cudapkgs_nix::cache_info::CacheInfo::parse(&String::from_utf8_lossy(&bytes))
        .map_err(|e| Error::untrusted(&what, e.to_string()))?;
    if info.store_dir != store_dir {
        return Err(Error::Location(format!(
            "{} serves paths of the store folder {}, not {store_dir}",
            backend.describe(),
            info.store_dir
        )));
    }
    Ok(())
}

/// The narinfo of `hash`, parsed, for the path of that hash, signed by a trusted key.
fn fetch_narinfo(
    backend: &dyn Backend,
    store_dir: &str,
    hash: &str,
    options: &Options<'_>,
) -> Result<NarInfo, Error> {
    let key = narinfo_key(hash);
    let what = format!("{}/{key}", backend.describe());
    let bytes = backend
        .get_small(&key, NARINFO_LIMIT)?
        .ok_or_else(|| Error::Missing(format!("{what}: the cache does not have this path")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::untrusted(&what, "the narinfo is not UTF-8 text"))?;
    let info =
        NarInfo::parse(&text, store_dir).map_err(|e| Error::untrusted(&what, e.to_string()))?;
    if info.hash_part() != hash {
        return Err(Error::untrusted(
            &what,
            format!("it describes {}, another path", info.store_path),
        ));
    }
    if trusted_signer(&info, store_dir, options.trusted).is_none() {
        let names: Vec<&str> = options.trusted.iter().map(PublicKey::name).collect();
        let signers: Vec<&str> = info
            .sigs
            .iter()
            .filter_map(|s| s.split_once(':').map(|(n, _)| n))
            .collect();
        return Err(Error::untrusted(
            &what,
            format!(
                "no valid signature by a trusted key (trusted: {}; signed by: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                },
                if signers.is_empty() {
                    "nobody".to_owned()
                } else {
                    signers.join(", ")
                }
            ),
        ));
    }
    Ok(info)
}

/// The paths of `narinfos`, each after the references it has among them.
fn dependency_order(narinfos: &HashMap<String, NarInfo>, store_dir: &str) -> Vec<String> {
    fn visit(
        path: &str,
        narinfos: &HashMap<String, NarInfo>,
        store_dir: &str,
        done: &mut HashSet<String>,
        order: &mut Vec<String>,
    ) {
        if !done.insert(path.to_owned()) {
            return;
        }
        for reference in &narinfos[path].references {
            let full = format!("{store_dir}/{reference}");
            if full != path && narinfos.contains_key(&full) {
                visit(&full, narinfos, store_dir, done, order);
            }
        }
        order.push(path.to_owned());
    }
    let mut paths: Vec<&String> = narinfos.keys().collect();
    paths.sort();
    let mut done = HashSet::new();
    let mut order = Vec::new();
    for path in paths {
        visit(path, narinfos, store_dir, &mut done, &mut order);
    }
    order
}

/// A path to fetch, checked to be storable: its name, references and NAR digest.
struct Planned<'a> {
    info: &'a NarInfo,
    name: String,
    references: Vec<String>,
    expected: [u8; 32],
}

/// Checks that the store can hold the path of `info`: named by its contents (the path
/// the announced NAR hash and references give), without a reference to itself.
fn plan<'a>(info: &'a NarInfo, store_dir: &str) -> Result<Planned<'a>, Error> {
    let path = &info.store_path;
    let base = store_path::base_name(store_dir, path).map_err(|p| Error::untrusted(path, p))?;
    let name = base[store_path::HASH_LEN + 1..].to_owned();
    let references: Vec<String> = info
        .references
        .iter()
        .map(|r| format!("{store_dir}/{r}"))
        .collect();
    if references.contains(path) {
        return Err(not_storable(path, "it refers to itself"));
    }
    let expected = nar_digest(&info.nar_hash).ok_or_else(|| {
        Error::untrusted(
            path,
            format!("NarHash {} is not a SHA-256 in base-32", info.nar_hash),
        )
    })?;
    let computed =
        cudapkgs_nix::store_path::source_path(store_dir, &name, &expected, &references, false)?;
    if &computed != path {
        return Err(not_storable(
            path,
            "it is not named by its contents (a path Nix built from a derivation, or one with a content address of another kind)",
        ));
    }
    Ok(Planned {
        info,
        name,
        references,
        expected,
    })
}

/// Checks a download against its narinfo (sizes, hashes) and its references against
/// those the NAR mentions.
fn check(backend: &dyn Backend, planned: &Planned<'_>, fetched: &Fetched) -> Result<(), Error> {
    let info = planned.info;
    check_download(
        &format!("{}/{}", backend.describe(), info.url),
        info,
        &planned.expected,
        fetched,
    )?;
    let mut found: Vec<&String> = planned
        .references
        .iter()
        .filter(|r| {
            cudapkgs_nix::store_path::hash_part(r).is_some_and(|h| fetched.found.contains(&h))
        })
        .collect();
    found.sort();
    if found.len() != planned.references.len() {
        return Err(Error::untrusted(
            &info.store_path,
            format!(
                "its contents mention {} of the {} references its narinfo gives",
                found.len(),
                planned.references.len()
            ),
        ));
    }
    Ok(())
}

/// Adds a checked download to the store (its references are valid by now).
fn register(
    store: &mut Store,
    store_dir: &str,
    planned: &Planned<'_>,
    work: &WorkDir,
    fetched: &Fetched,
    options: &Options<'_>,
) -> Result<Event, Error> {
    let info = planned.info;
    let path = &info.store_path;
    let tree = work.path().join("tree");
    let added = store.add(
        &tree,
        &planned.name,
        &Scan::ClosureOf(planned.references.clone()),
        None,
    )?;
    if &added != path {
        return Err(Error::untrusted(
            path,
            format!("the store named its contents {added}"),
        ));
    }
    let signer = trusted_signer(info, store_dir, options.trusted)
        .unwrap_or_default()
        .to_owned();
    Ok(Event::Fetched {
        path: path.clone(),
        nar_size: fetched.nar_size,
        file_size: fetched.file_size,
        signer,
    })
}

/// What a download brought, hashed and counted.
struct Fetched {
    nar_digest: [u8; 32],
    nar_size: u64,
    file_digest: [u8; 32],
    file_size: u64,
    /// The hash parts of references seen in the NAR.
    found: HashSet<[u8; 32]>,
}

/// Downloads the NAR of `info` and restores it at `tree` in one pass, hashing the file
/// and the NAR and scanning for `references`. More bytes than the narinfo announces
/// are refused as they come.
fn download(
    backend: &dyn Backend,
    info: &NarInfo,
    references: &[String],
    tree: &std::path::Path,
) -> Result<Fetched, Error> {
    let what = format!("{}/{}", backend.describe(), info.url);
    let object = backend.get(&info.url, None)?.ok_or_else(|| {
        Error::Missing(format!(
            "{what}: the NAR of {} is missing from the cache",
            info.store_path
        ))
    })?;
    let mut compressed = HashingReader::new(
        object.body.into_reader(),
        info.file_size.unwrap_or(u64::MAX),
    );
    let candidates: Vec<[u8; 32]> = references
        .iter()
        .filter_map(|r| cudapkgs_nix::store_path::hash_part(r))
        .collect();
    let bad = |problem: String| Error::untrusted(&what, problem);
    // The decoder borrows the compressed stream until this block ends.
    let (nar_digest, nar_size, found) = {
        let decoder = compress::decoder(info.compression, &mut compressed)?;
        let mut nar = ScanningReader {
            inner: HashingReader::new(decoder, info.nar_size),
            scanner: ReferenceScanner::new(candidates),
        };
        let restored =
            cudapkgs_store::restore::restore(BufReader::with_capacity(1 << 20, &mut nar), tree);
        // Whatever follows the archive still counts: a longer stream is refused.
        let rest = std::io::copy(&mut nar, &mut std::io::sink());
        match (restored, rest) {
            (_, Err(e)) | (Err(cudapkgs_store::Error::Io { source: e, .. }), _) => {
                return Err(bad(format!("reading the NAR failed: {e}")));
            }
            (Err(e), _) => return Err(bad(format!("not a valid NAR: {e}"))),
            (Ok(()), Ok(_)) => {}
        }
        let (digest, size) = nar.inner.finish();
        (digest, size, nar.scanner.into_found())
    };
    let (file_digest, file_size) = compressed.finish();
    Ok(Fetched {
        nar_digest,
        nar_size,
        file_digest,
        file_size,
        found,
    })
}

/// Checks a download against its narinfo: file size and hash (when given), NAR size
/// and hash.
fn check_download(
    what: &str,
    info: &NarInfo,
    expected: &[u8; 32],
    fetched: &Fetched,
) -> Result<(), Error> {
    if let Some(size) = info.file_size {
        if size != fetched.file_size {
            return Err(Error::untrusted(
                what,
                format!("{} bytes, the narinfo says {size}", fetched.file_size),
            ));
        }
    }
    if let Some(hash) = &info.file_hash {
        let got = sha256_field(&fetched.file_digest);
        if &got != hash {
            return Err(Error::untrusted(
                what,
                format!("its hash is {got}, the narinfo says {hash}"),
            ));
        }
    }
    if fetched.nar_size != info.nar_size || &fetched.nar_digest != expected {
        return Err(Error::untrusted(
            what,
            format!(
                "the NAR is {} of {} bytes, the narinfo says {} of {}",
                sha256_field(&fetched.nar_digest),
                fetched.nar_size,
                info.nar_hash,
                info.nar_size
            ),
        ));
    }
    Ok(())
}

fn not_storable(path: &str, why: &str) -> Error {
    Error::Unsupported(format!(
        "{path} cannot be stored: {why}; this store holds only paths named by their contents (nix-store --add, cudapkgs build)"
    ))
}

/// The digest of a `sha256:<base-32>` field (`None` for digits that are no 32 bytes).
fn nar_digest(field: &str) -> Option<[u8; 32]> {
    let digits = field.strip_prefix("sha256:")?;
    cudapkgs_nix::base32::decode(digits, 32)?.try_into().ok()
}

/// A reader that also looks for references in what it reads.
struct ScanningReader<R> {
    inner: R,
    scanner: ReferenceScanner,
}

impl<R: Read> Read for ScanningReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Write as _;
        let n = self.inner.read(buf)?;
        self.scanner.write_all(&buf[..n])?;
        Ok(n)
    }
}
