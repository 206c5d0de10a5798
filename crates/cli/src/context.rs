//! What commands share between the command line and the libraries: the store a
//! `StoreLocation` names (its folders merged in `settings.rs`), the download cache and
//! mirror, the driver folder, the files a closure of plain files starts from, the
//! caches' keys and credentials, and each library's errors as the binary's one error,
//! with hints.

use std::path::{Path, PathBuf};

use cudapkgs_builder::Error as BuildError;
use cudapkgs_cache::backend::Credentials;
use cudapkgs_cache::location::Location;
use cudapkgs_elf::auto::{driver_dir_problem, host_driver_dir};
use cudapkgs_elf::resolve::SearchPaths;
use cudapkgs_nix::signature::PublicKey;
use cudapkgs_redist::fetch::{Fetcher, default_cache_dir};
use cudapkgs_redist::manifest::Manifest;
use cudapkgs_redist::source::{Mirror, NVIDIA_BASE_URL};
use cudapkgs_store::store::{Access, Store};

use crate::cli::{FileTreeArgs, RedistSource, StoreLocation};
use crate::error::{CliError, CliResult};
use crate::output::Output;
use crate::settings::{Source, offline_origin, process_env, store_settings, tell_sources};
use crate::units;

// The store.

/// Opens the store `location` names for adding, creating it on first use.
pub fn open_store(location: &StoreLocation) -> CliResult<Store> {
    open_store_for(location, Access::Create)
}

/// Opens the store `location` names for `access`, with unset flags taken from
/// `CUDAPKGS_STORE_DIR`, `CUDAPKGS_STORE_ROOT` and `CUDAPKGS_STATE_DIR`, then from
/// `cudapkgs.toml`'s `[store]`, then the defaults (`settings::store_settings`).
pub fn open_store_for(location: &StoreLocation, access: Access) -> CliResult<Store> {
    if let Some(uri) = &location.store {
        if access != Access::ReadOnly {
            return Err(CliError::new(format!(
                "--store {uri} names a Nix store, which cudapkgs only reads"
            ))
            .with_hint("use --store-dir, --root and --state-dir for a store of cudapkgs"));
        }
        let nix = cudapkgs_nix::store_uri::parse(uri).map_err(|error| {
            CliError::new(format!("--store {error}"))
                .with_hint("a Nix store is named `nix` or `local?root=DIR`")
        })?;
        return Store::open_with(
            &nix.store_dir,
            nix.root.as_deref(),
            &nix.database_dir,
            access,
        )
        .map_err(|error| store_failure(&error));
    }
    open_folders(&store_folders(location)?, access)
}

/// The folders of the store of cudapkgs that `location` names (told with `-v`): a
/// command resolves them before its long work, so that a bad setting stops it first.
pub fn store_folders(location: &StoreLocation) -> CliResult<crate::settings::StoreSettings> {
    if let Some(uri) = &location.store {
        return Err(CliError::new(format!(
            "--store {uri} names a Nix store, which cudapkgs only reads"
        ))
        .with_hint("use --store-dir, --root and --state-dir for a store of cudapkgs"));
    }
    let (config, output) = crate::settings::loaded();
    let folders = &location.folders;
    let settings = store_settings(
        folders.store_dir.as_deref(),
        folders.root.as_deref(),
        folders.state_dir.as_deref(),
        &process_env,
        config,
    )?;
    tell_sources(output, &settings.sources());
    Ok(settings)
}

/// Opens the store in `folders` for `access`.
pub fn open_folders(folders: &crate::settings::StoreSettings, access: Access) -> CliResult<Store> {
    Store::open_with(
        &folders.dir.value,
        folders.root.as_ref().map(|root| root.value.as_path()),
        &folders.state.value,
        access,
    )
    .map_err(|error| store_failure(&error))
}

/// Store paths as given, and root names replaced by the paths they hold.
pub fn resolve_all(store: &Store, paths: &[String]) -> CliResult<Vec<String>> {
    paths
        .iter()
        .map(|path| store.resolve(path).map_err(|error| store_failure(&error)))
        .collect()
}

/// A store's failure, with what to do about it.
pub fn store_failure(error: &cudapkgs_store::Error) -> CliError {
    let failed = CliError::from_error(error);
    match store_hint(error) {
        Some(hint) => failed.with_hint(hint),
        None => failed,
    }
}

/// What to do about a store error, where the message alone does not say.
fn store_hint(error: &cudapkgs_store::Error) -> Option<&'static str> {
    use cudapkgs_store::Error;
    let cannot_write = "pass --root or --state-dir to use a store this user can write";
    Some(match error {
        Error::NoStore(_) => {
            "check --store-dir and --root (`cudapkgs store add` and `cudapkgs build` create a store)"
        }
        Error::NoDatabase { .. } => "check --state-dir, the folder that holds the store's database",
        Error::UnknownPaths { .. } => {
            "point --store-dir, --root and --state-dir at the store these paths belong to; if nobody needs them, remove them by hand"
        }
        Error::ForeignEntries { .. } => {
            "give --store-dir a new or empty folder (or one that holds only store paths)"
        }
        Error::OtherStore { .. } => {
            "check --store-dir for a typo; a second store beside another needs its own --state-dir"
        }
        Error::NixDatabase(_) => "use nix-store or nix-collect-garbage to change a Nix store",
        Error::NixUnfinished(_) => {
            "run a Nix command on the store (nix-store --verify) to recover it"
        }
        Error::CopiedDatabase { .. } => {
            "use the original (its --state-dir or --root); a second store needs its own folder and database, filled with `cudapkgs copy` from a cache"
        }
        Error::SharedWithNix { .. } => {
            "give cudapkgs a --root of its own; read the Nix store with --store 'local?root=R'"
        }
        Error::OtherDatabase { .. } => {
            "pass the --state-dir of the database this store folder belongs to, or give this store a folder of its own"
        }
        Error::UnmarkedFolder { .. } => {
            "pass the --root the database was made with; if that store's folder is gone for good, remove the database too"
        }
        Error::CorruptDatabase { .. } => {
            "nothing was changed; check --state-dir, or restore the file from a backup"
        }
        Error::Changed(_) => "nothing was stored; try again once nothing writes to it",
        Error::Copying { .. } => {
            "nothing was stored; make room (or get write access) where the store folder lives and try again"
        }
        Error::Interrupted(_) => {
            "run a command that writes the store (such as `cudapkgs store verify --repair`) as its owner"
        }
        Error::NotWritable(_) => cannot_write,
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            cannot_write
        }
        _ => return None,
    })
}

// Downloads.

/// Bounds downloads of unknown size and the sizes an index may declare.
const MAX_DOWNLOAD_VARIABLE: &str = "CUDAPKGS_MAX_DOWNLOAD";

/// How long a server may take to answer a request (whole seconds).
const RESPONSE_TIMEOUT_VARIABLE: &str = "CUDAPKGS_RESPONSE_TIMEOUT";

/// The cache of `source`, online unless `--offline`, `CUDAPKGS_OFFLINE` or `[index]
/// offline` says otherwise.
pub fn fetcher(source: &RedistSource, output: Output) -> CliResult<Fetcher> {
    let mut fetcher = fetcher_at(source.cache.as_ref())?;
    fetcher.offline = offline_setting(source.offline, output)?;
    Ok(fetcher)
}

/// Whether to use the network, from `flag`, `CUDAPKGS_OFFLINE` or `[index] offline`
/// (told with `-v`).
pub fn offline_setting(flag: bool, output: Output) -> CliResult<bool> {
    let (config, _) = crate::settings::loaded();
    let offline = crate::settings::offline(flag, &process_env, config)?;
    crate::settings::tell_sources(output, &[("offline", &offline.source)]);
    Ok(offline.value)
}

/// The cache: `--cache`, `$CUDAPKGS_CACHE`, `$XDG_CACHE_HOME/cudapkgs`, `~/.cache/cudapkgs`.
pub fn fetcher_at(cache: Option<&PathBuf>) -> CliResult<Fetcher> {
    let cache = cache
        .cloned()
        .or_else(|| process_env("CUDAPKGS_CACHE").map(PathBuf::from))
        .or_else(|| {
            default_cache_dir(
                process_env("XDG_CACHE_HOME").as_deref(),
                process_env("HOME").as_deref(),
            )
        })
        .ok_or_else(|| {
            CliError::new("no download cache: neither XDG_CACHE_HOME nor HOME is set")
                .with_hint("pass --cache or set CUDAPKGS_CACHE")
        })?;
    let mut fetcher = Fetcher::new(&cache);
    if let Some(text) = process_env(MAX_DOWNLOAD_VARIABLE) {
        fetcher.max_size = units::parse_bytes(&text).ok_or_else(|| {
            CliError::new(format!(
                "environment variable {MAX_DOWNLOAD_VARIABLE}: `{text}` is not a byte count"
            ))
            .with_hint("write bytes, or a number with K, M, G or T (powers of 1024), like 20G")
        })?;
    }
    if let Some(text) = process_env(RESPONSE_TIMEOUT_VARIABLE) {
        let seconds = text.trim().parse::<u64>().ok().filter(|&s| s > 0);
        let seconds = seconds.ok_or_else(|| {
            CliError::new(format!(
                "environment variable {RESPONSE_TIMEOUT_VARIABLE}: `{text}` is not a number of seconds"
            ))
            .with_hint("write whole seconds above 0, like 120")
        })?;
        fetcher.set_response_timeout(std::time::Duration::from_secs(seconds));
    }
    Ok(fetcher)
}

/// The mirror `source` names (see [`mirror_at`]).
pub fn mirror(source: &RedistSource) -> Mirror {
    mirror_at(source.base_url.as_deref())
}

/// `--base-url`, else `$CUDAPKGS_REDIST_URL`, else NVIDIA's server.
pub fn mirror_at(base_url: Option<&str>) -> Mirror {
    Mirror::new(&mirror_url(base_url))
}

/// The base URL of [`mirror_at`].
pub fn mirror_url(base_url: Option<&str>) -> String {
    base_url
        .map(str::to_owned)
        .or_else(|| process_env("CUDAPKGS_REDIST_URL"))
        .unwrap_or_else(|| NVIDIA_BASE_URL.to_owned())
}

/// The manifest of `source`'s release, through the download cache.
pub fn load_manifest(source: &RedistSource, fetcher: &Fetcher) -> CliResult<Manifest> {
    mirror(source)
        .manifest(fetcher, &source.redist, &source.release)
        .map_err(|error| redist_failure(&error))
}

/// A download's or an archive's failure, with what to do about it.
pub fn redist_failure(error: &cudapkgs_redist::Error) -> CliError {
    let failed = CliError::from_error(error);
    match error {
        cudapkgs_redist::Error::TooLarge { .. } => failed.with_hint(format!(
            "if the file is genuine, raise the limit with {MAX_DOWNLOAD_VARIABLE} (bytes, or with K, M, G or T)"
        )),
        cudapkgs_redist::Error::Offline { .. } => {
            let turned_off = match offline_origin() {
                Some(Source::Flag(flag)) => format!("{flag} turned the network off"),
                Some(Source::Env(name)) => format!("{name} turned the network off"),
                Some(Source::Config(path)) => {
                    format!("`[index] offline` in {} turned the network off", path.display())
                }
                Some(Source::Default) | None => "the network is off".to_owned(),
            };
            failed.with_hint(format!("run once online first ({turned_off})"))
        }
        cudapkgs_redist::Error::NoManifest { .. } => failed.with_hint(
            "check the release, and the mirror (--base-url or CUDAPKGS_REDIST_URL) that should have it",
        ),
        cudapkgs_redist::Error::NoReleaseFolder { .. } => failed.with_hint(
            "check the mirror (--base-url or CUDAPKGS_REDIST_URL): it has no folder of this product",
        ),
        _ => failed,
    }
}

/// A build's failure: the download's or archive's with its hint, else its message.
pub fn build_failure(error: BuildError) -> CliError {
    match error {
        BuildError::Redist(error) => redist_failure(&error),
        BuildError::Targets(_) => CliError::from_error(&error)
            .with_hint("without --strict-targets they are warnings; --gpu and --capabilities name the GPUs checked"),
        other => CliError::from_error(&other),
    }
}

/// A resolution's failure, with its hint.
pub fn resolve_failure(error: BuildError) -> CliError {
    match error {
        BuildError::Resolve { problem, hint } => {
            let failed = CliError::new(problem);
            match hint {
                Some(hint) => failed.with_hint(hint),
                None => failed,
            }
        }
        BuildError::OnlyPrereleases { ref prereleases, .. } => CliError::from_error(&error)
            .with_hint(format!(
                "only pre-releases match ({}); pass --pre to take them",
                prereleases.join(", ")
            )),
        BuildError::NoSuchPackage { ref release, .. } => CliError::from_error(&error)
            .with_hint(format!(
                "`cudapkgs redist list --release {release}` shows the packages"
            )),
        BuildError::ReleaseUnknown { major, .. } => CliError::from_error(&error).with_hint(
            format!(
                "give the major alone (--cuda {major}) for the newest wheels, or pin versions with PACKAGE==VERSION"
            ),
        ),
        other => build_failure(other),
    }
}

// What a build or check is for.

/// `--driver-dir`: a folder, `host` for where this machine's driver library is, or
/// NixOS's driver folder when not given.
pub fn driver_dir(given: Option<&str>) -> CliResult<PathBuf> {
    match given {
        Some("host") => host_driver_dir().ok_or_else(|| {
            CliError::new("no libcuda.so.1 on this machine (outside stub folders)")
                .with_hint("install the NVIDIA driver, or pass --driver-dir DIR")
        }),
        Some(dir) => {
            let dir = PathBuf::from(dir);
            match driver_dir_problem(&dir) {
                Some(problem) => Err(CliError::new(format!(
                    "driver folder `{}` {problem}",
                    dir.display()
                ))
                .with_hint(
                    "--driver-dir takes an absolute folder, like /run/opengl-driver/lib, or `host`",
                )),
                None => Ok(dir),
            }
        }
        None => Ok(PathBuf::from(cudapkgs_elf::auto::DEFAULT_DRIVER_DIR)),
    }
}

// Plain files.

/// The folders and files named (each written with a `/`, and there), how the loader
/// searches (the system folders last: this machine's, or a root's), and the threads to
/// read files with: what a run-time closure of plain files needs.
pub fn file_roots(
    paths: &[String],
    tree: &FileTreeArgs,
    output: Output,
) -> CliResult<(Vec<PathBuf>, SearchPaths, usize)> {
    let mut roots = Vec::new();
    for path in paths {
        if !cudapkgs_check::files::names_a_file(path) {
            return Err(CliError::new(
                "give either store paths and roots, or folders and files, not both",
            ));
        }
        let root = PathBuf::from(path);
        match std::fs::metadata(&root) {
            Err(_) => return Err(CliError::new(format!("{path}: no such file or folder"))),
            Ok(metadata) if !metadata.is_file() && !metadata.is_dir() => {
                return Err(CliError::new(format!(
                    "{path}: neither a file nor a folder (a FIFO, socket or device is never opened)"
                )));
            }
            Ok(_) => {}
        }
        roots.push(root);
    }
    let root_fs = match &tree.root_fs {
        Some(root) => Some(root.clone()),
        None => match roots.as_slice() {
            [only] if cudapkgs_check::files::looks_like_root(only) => {
                output.note(format!(
                    "{} holds etc/ and usr/lib/: searched as a file system root (its own \
                     library folders; --root-fs / searches this machine's)",
                    only.display()
                ));
                Some(only.clone())
            }
            _ => None,
        },
    };
    let search = match root_fs {
        None => SearchPaths {
            system: SearchPaths::system_folders(),
            ..SearchPaths::default()
        },
        Some(root) => {
            let root = std::fs::canonicalize(&root)
                .ok()
                .filter(|root| root.is_dir())
                .ok_or_else(|| {
                    CliError::new(format!("--root-fs {}: no such folder", root.display()))
                })?;
            for given in &roots {
                let inside = std::fs::canonicalize(given).is_ok_and(|g| g.starts_with(&root));
                if !inside {
                    return Err(CliError::new(format!(
                        "{} is not inside the file system root {}",
                        given.display(),
                        root.display()
                    ))
                    .with_hint("name folders and files inside the root, or another --root-fs"));
                }
            }
            SearchPaths {
                system: SearchPaths::system_folders_in(&root),
                root: (root != Path::new("/")).then_some(root),
                ..SearchPaths::default()
            }
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Ok((roots, search, threads))
}

// Binary caches.

/// The cache `url` names, the flag that named it on failure.
pub fn cache_location(url: &str, origin: impl std::fmt::Display) -> CliResult<Location> {
    Location::parse(url).map_err(|e| cache_failure(&e).context(origin))
}

/// Trusted keys, each `name:base64` or a file holding one (the list
/// `settings::trusted_public_keys` resolved); errors name where the list came from.
pub fn trusted_keys(values: &crate::settings::Sourced<Vec<String>>) -> CliResult<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for value in values.value.iter().map(String::as_str) {
        let key = match PublicKey::parse(value) {
            Ok(key) => key,
            Err(_) if Path::new(value).is_file() => {
                PublicKey::parse(&read_key_file(Path::new(value))?).map_err(|e| {
                    CliError::from_error(&e)
                        .context(value)
                        .context(&values.source)
                })?
            }
            Err(error) => {
                return Err(CliError::from_error(&error)
                    .context(format!("`{value}`"))
                    .context(&values.source)
                    .with_hint(
                        "give name:base64 as in Nix's trusted-public-keys, or a file holding it",
                    ));
            }
        };
        keys.push(key);
    }
    Ok(keys)
}

/// Reads a key file, naming it on failure.
pub fn read_key_file(path: &Path) -> CliResult<String> {
    std::fs::read_to_string(path).map_err(|e| {
        CliError::new(format!("cannot read {}", path.display())).caused_by(&e)
            .with_hint("name a key file made by `cudapkgs cache keygen` or `nix-store --generate-binary-cache-key`")
    })
}

/// S3 credentials from AWS's usual variables; anonymous without.
pub fn s3_credentials() -> Option<Credentials> {
    Some(Credentials {
        access_key: process_env("AWS_ACCESS_KEY_ID")?,
        secret_key: process_env("AWS_SECRET_ACCESS_KEY")?,
        session_token: process_env("AWS_SESSION_TOKEN"),
    })
}

/// A cache's failure, with what to do about it.
pub fn cache_failure(error: &cudapkgs_cache::Error) -> CliError {
    use cudapkgs_cache::Error;
    let failed = CliError::from_error(error);
    match error {
        Error::Store(store) => store_failure(store),
        Error::Untrusted { .. } => {
            failed.with_hint("nothing was registered; check the cache and the trusted keys")
        }
        Error::Location(_) => failed.with_hint(
            "name a cache as file:///FOLDER, http(s)://HOST[:PORT] or s3://BUCKET?endpoint=URL&region=REGION",
        ),
        Error::Remote { .. } | Error::Unreachable { .. } => {
            failed.with_hint("check that the cache is running and reachable, then try again")
        }
        Error::Licence(_) => failed.with_hint(
            "nothing was pushed; pass --private for a cache only you read, or --redistributable PACKAGE for each package whose licence allows this cache",
        ),
        _ => failed,
    }
}
