//! Pushing closures into a cache: each path's NAR is written once, compressed, hashed
//! and checked against the store on the way, uploaded under its file hash, and only then
//! its narinfo, signed. A narinfo is written only after the narinfos of its references,
//! so a cache never announces a path whose closure it lacks, and a killed push leaves at
//! most NARs no narinfo points to. Paths whose narinfo is there already are skipped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use cudapkgs_nix::narinfo::NarInfo;
use cudapkgs_nix::signature::SecretKey;
use cudapkgs_store::store::{PathInfo, Store};

use crate::backend::Backend;
use crate::compress::{Encoder, Settings};
use crate::verify::{HashingWriter, sha256_field};
use crate::{CACHE_INFO_KEY, Error, narinfo_key};

/// How to push.
#[derive(Debug)]
pub struct Options<'a> {
    pub compression: Settings,
    /// Signs every narinfo when given.
    pub secret_key: Option<&'a SecretKey>,
    /// Paths compressed and uploaded at once.
    pub jobs: usize,
    /// The cache is the pusher's own (a development cache nobody else reads): every
    /// licence allows that.
    pub private: bool,
    /// Packages whose licence the pusher has checked allows them in this cache.
    pub redistributable: &'a [String],
}

/// What happened to one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Its narinfo was there already.
    Present(String),
    /// Its NAR and narinfo were written.
    Pushed {
        path: String,
        nar_size: u64,
        file_size: u64,
    },
    /// A build record whose outputs were all pushed, written signed.
    Record(String),
}

/// What a push did, in the order it happened.
#[derive(Debug, Default)]
pub struct Report {
    pub events: Vec<Event>,
}

/// A NAR uploaded, waiting for its narinfo.
#[derive(Debug)]
struct Uploaded {
    info: NarInfo,
    file_size: u64,
}

/// Pushes the closures of `roots` (valid paths of `store`) to `backend`. `progress` is
/// told of each path as it is done.
pub fn push(
    store: &Store,
    roots: &[String],
    backend: &dyn Backend,
    options: &Options<'_>,
    progress: &(dyn Fn(&Event) + Sync),
) -> Result<Report, Error> {
    let store_dir = store.folder().to_owned();
    let closure = store.closure(&store.parse_paths(roots)?)?;
    let infos: HashMap<String, PathInfo> = closure
        .into_iter()
        .map(|info| (info.path.clone(), info))
        .collect();
    if !options.private {
        refuse_unlicensed(store, &infos, options.redistributable)?;
    }
    check_cache_info(backend, &store_dir)?;
    // The biggest first, so that the last to finish is not a big one started late.
    let mut queue: Vec<(&PathInfo, PathBuf)> = infos
        .values()
        .map(|info| (info, store.physical(&info.path)))
        .collect();
    queue.sort_by(|a, b| {
        b.0.nar_size
            .cmp(&a.0.nar_size)
            .then(a.0.path.cmp(&b.0.path))
    });
    let queue = Mutex::new(queue.into_iter().collect::<VecDeque<_>>());
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<Result<(String, Option<Uploaded>), Error>>();
    let mut report = Report::default();
    let mut first_error = None;
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            let sender = sender.clone();
            let (queue, stop) = (&queue, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let next = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop_front();
                    let Some((info, physical)) = next else { break };
                    let done = upload_unless_present(backend, info, &physical, options)
                        .map(|uploaded| (info.path.clone(), uploaded));
                    if done.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if sender.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        // Narinfos are written here, one at a time, each once its references' are.
        let mut published: HashSet<String> = HashSet::new();
        let mut waiting: BTreeMap<String, Uploaded> = BTreeMap::new();
        for done in receiver {
            match done {
                Err(error) => {
                    first_error.get_or_insert(error);
                }
                Ok((path, None)) => {
                    published.insert(path.clone());
                    let event = Event::Present(path);
                    progress(&event);
                    report.events.push(event);
                }
                Ok((path, Some(uploaded))) => {
                    waiting.insert(path, uploaded);
                }
            }
            if first_error.is_some() {
                continue;
            }
            if let Err(error) = publish_ready(
                backend,
                &store_dir,
                &infos,
                &mut waiting,
                &mut published,
                options.secret_key,
                &mut |event| {
                    progress(&event);
                    report.events.push(event);
                },
            ) {
                stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(error);
            }
        }
    });
    if let Some(error) = first_error {
        return Err(error);
    }
    // Last: a record never names a path the cache lacks.
    if let Some(secret) = options.secret_key {
        push_records(store, &infos, backend, secret, &mut |event| {
            progress(&event);
            report.events.push(event);
        })?;
    }
    Ok(report)
}

/// Pushes, signed, the build records of `store` whose outputs were all pushed.
fn push_records(
    store: &Store,
    pushed: &HashMap<String, PathInfo>,
    backend: &dyn Backend,
    secret: &SecretKey,
    done: &mut dyn FnMut(Event),
) -> Result<(), Error> {
    for (key, text) in store.build_records()? {
        let Some(paths) = crate::records::outputs(&text) else {
            continue;
        };
        if !paths.is_empty() && paths.iter().all(|path| pushed.contains_key(path)) {
            crate::records::push(backend, &key, &text, secret)?;
            done(Event::Record(key));
        }
    }
    Ok(())
}

/// Refuses, before anything is written, paths that builds made of packages nobody said
/// may go to this cache: NVIDIA's licences forbid redistributing some components, so a
/// cache others read needs a licence basis per package (`redistributable`). Paths no
/// build record names (added by hand) are the pusher's own.
fn refuse_unlicensed(
    store: &Store,
    pushed: &HashMap<String, PathInfo>,
    redistributable: &[String],
) -> Result<(), Error> {
    let mut refused = std::collections::BTreeSet::new();
    for (_, text) in store.build_records()? {
        let Ok(packages) = serde_json::from_str::<Vec<serde_json::Value>>(&text) else {
            continue;
        };
        for package in &packages {
            let name = package["package"].as_str().unwrap_or_default();
            let outputs = package["outputs"].as_array().cloned().unwrap_or_default();
            let in_push = outputs.iter().any(|pair| {
                pair.get(1)
                    .and_then(|p| p.as_str())
                    .is_some_and(|path| pushed.contains_key(path))
            });
            if in_push && !redistributable.iter().any(|allowed| allowed == name) {
                let licence = package["licence"].as_str().unwrap_or("no licence named");
                refused.insert(format!("{name} ({licence})"));
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::Licence(format!(
        "may not go to a cache others read without a licence basis: {}",
        refused.into_iter().collect::<Vec<_>>().join(", ")
    )))
}

/// Writes `nix-cache-info` if the cache has none; refuses a cache of another store folder.
fn check_cache_info(backend: &dyn Backend, store_dir: &str) -> Result<(), Error> {
    match backend.get_small(CACHE_INFO_KEY, 64 << 10)? {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let info = cudapkgs_nix::cache_info::CacheInfo::parse(&text).map_err(|e| {
                Error::untrusted(
                    format!("{}/{CACHE_INFO_KEY}", backend.describe()),
                    e.to_string(),
                )
            })?;
            if info.store_dir != store_dir {
                return Err(Error::Location(format!(
                    "{} holds paths of the store folder {}, not {store_dir}",
                    backend.describe(),
                    info.store_dir
                )));
            }
            Ok(())
        }
        None => backend.put_bytes(
            CACHE_INFO_KEY,
            cudapkgs_nix::cache_info::CacheInfo::new(store_dir)
                .render()
                .as_bytes(),
            "text/x-nix-cache-info",
        ),
    }
}

/// Uploads the NAR of `info` unless its narinfo is in the cache; returns the narinfo
/// to write (unsigned), or `None` when present.
fn upload_unless_present(
    backend: &dyn Backend,
    info: &PathInfo,
    physical: &std::path::Path,
    options: &Options<'_>,
) -> Result<Option<Uploaded>, Error> {
    let hash_part = cudapkgs_nix::store_path::hash_part_of(&info.path);
    if backend.size(&narinfo_key(hash_part))?.is_some() {
        return Ok(None);
    }
    let temporary = crate::backend::temporary_file(backend)?;
    let (file, temporary) = temporary.into_parts();
    let written = |e: std::io::Error| Error::io(&*temporary, e);
    let compressed = compress_nar(physical, file, options.compression);
    let Compressed {
        nar_hash,
        nar_size,
        file_hash,
        file_size,
    } = compressed.map_err(|e| match e {
        Stage::Nar(error) => error,
        Stage::Io(error) => written(error),
    })?;
    let nar_hash = sha256_field(&nar_hash);
    if nar_hash != info.nar_hash || nar_size != info.nar_size {
        return Err(Error::untrusted(
            info.path.clone(),
            format!(
                "its tree has changed since it was added (the store registered {} of {} bytes, the tree is {nar_hash} of {nar_size}); run `cudapkgs store verify`",
                info.nar_hash, info.nar_size
            ),
        ));
    }
    let file_hash = sha256_field(&file_hash);
    let digits = file_hash.trim_start_matches("sha256:");
    let url = format!(
        "nar/{digits}{}",
        options.compression.compression.extension()
    );
    backend.put_temporary(&url, temporary, "application/x-nix-nar")?;
    let references = info
        .references
        .iter()
        .filter_map(|r| r.rsplit('/').next().map(str::to_owned))
        .collect();
    Ok(Some(Uploaded {
        info: NarInfo {
            store_path: info.path.clone(),
            url,
            compression: options.compression.compression,
            file_hash: Some(file_hash),
            file_size: Some(file_size),
            nar_hash,
            nar_size,
            references,
            deriver: None,
            sigs: Vec::new(),
            ca: None,
            other: Vec::new(),
        },
        file_size,
    }))
}

/// What compressing a NAR gave.
struct Compressed {
    nar_hash: [u8; 32],
    nar_size: u64,
    file_hash: [u8; 32],
    file_size: u64,
}

/// Where compressing failed: reading the tree, or compressing and writing.
enum Stage {
    Nar(Error),
    Io(std::io::Error),
}

/// Writes the NAR of the tree at `physical` compressed into `file`,
/// hashing the NAR and the file on the way. One pass on this thread, zstd's workers
/// beside it: handing the stages to threads of their own measured slower on two cores
/// (more system time, no less wall time; `bench/cache_push_vs_zstd.py`).
fn compress_nar(
    physical: &std::path::Path,
    file: std::fs::File,
    settings: Settings,
) -> Result<Compressed, Stage> {
    let compressed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let encoder = Encoder::new(settings, compressed)
        .map_err(|e| Stage::Io(std::io::Error::other(e.to_string())))?;
    let mut nar = HashingWriter::new(encoder);
    cudapkgs_nix::nar::dump(physical, &mut nar).map_err(|e| Stage::Nar(e.into()))?;
    let (encoder, nar_hash, nar_size) = nar.finish();
    let (buffered, file_hash, file_size) = encoder.finish().map_err(Stage::Io)?.finish();
    // A folder cache flushes it to disk as it takes it (`put_temporary`); a file that is
    // only uploaded need not be.
    buffered
        .into_inner()
        .map_err(|e| Stage::Io(e.into_error()))?;
    Ok(Compressed {
        nar_hash,
        nar_size,
        file_hash,
        file_size,
    })
}

/// Writes the narinfo of every waiting path whose references are all published, until
/// none is left that can be.
fn publish_ready(
    backend: &dyn Backend,
    store_dir: &str,
    infos: &HashMap<String, PathInfo>,
    waiting: &mut BTreeMap<String, Uploaded>,
    published: &mut HashSet<String>,
    secret_key: Option<&SecretKey>,
    report: &mut dyn FnMut(Event),
) -> Result<(), Error> {
    loop {
        let ready: Vec<String> = waiting
            .keys()
            .filter(|path| {
                infos[*path]
                    .references
                    .iter()
                    .all(|r| r == *path || published.contains(r))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        for path in ready {
            let Uploaded {
                mut info,
                file_size,
            } = waiting.remove(&path).expect("waiting");
            if let Some(key) = secret_key {
                key.sign_narinfo(&mut info, store_dir);
            }
            backend.put_bytes(
                &narinfo_key(info.hash_part()),
                info.render().as_bytes(),
                "text/x-nix-narinfo",
            )?;
            published.insert(path.clone());
            report(Event::Pushed {
                path,
                nar_size: info.nar_size,
                file_size,
            });
        }
    }
}
