//! `cudapkgs cache keygen`, `push`, `serve` and `copy`: binary caches in Nix's protocol.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use cudapkgs_cache::backend::{self, Access, HttpClient};
use cudapkgs_cache::location::Location;
use cudapkgs_cache::serve::{Config, Logger, Server, Source};
use cudapkgs_cache::{compress, push, substitute};
use cudapkgs_nix::narinfo::Compression;
use cudapkgs_nix::signature::SecretKey;
use cudapkgs_report::{Phase, Task};
use cudapkgs_store::store::Access as StoreAccess;
use serde::Serialize;

use crate::cli::{StoreFolders, StoreLocation};
use crate::context::{
    cache_failure, cache_location, open_store, open_store_for, read_key_file, resolve_all,
    s3_credentials, trusted_keys,
};
use crate::error::{CliError, CliResult, Exit};
use crate::output::{Output, schema_of};
use crate::progress::Bars;
use crate::settings::{self, loaded, process_env};

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Make a signing key pair: NAME is the key's name (such as cache.example.org-1);
    /// the secret key goes to SECRET_FILE (mode 0600), the public one to PUBLIC_FILE, in
    /// the format and order of `nix-store --generate-binary-cache-key`
    Keygen {
        /// The key's name, such as cache.example.org-1
        name: String,
        /// Where the secret key is written (mode 0600; it must not exist)
        #[arg(value_name = "SECRET_FILE")]
        secret_file: PathBuf,
        /// Where the public key is written (it must not exist)
        #[arg(value_name = "PUBLIC_FILE")]
        public_file: PathBuf,
    },
    /// Remove the NAR files of a folder cache that no narinfo names (what killed pushes
    /// leave), once they are older than --older-than
    Gc {
        /// The cache: file:///FOLDER
        #[arg(long, value_name = "URL")]
        cache: String,
        /// Keep unnamed NARs younger than this many seconds (a push in progress uploads
        /// its NAR before its narinfo)
        #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
        older_than: u64,
        /// Only say what would be removed
        #[arg(long)]
        dry_run: bool,
    },
}

/// How NARs are compressed in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PushCompression {
    /// Fast to write and to read
    Zstd,
    /// Nix's own default: smaller, slower
    Xz,
    /// The NAR as it is
    None,
}

#[derive(Debug, Args)]
#[command(after_long_help = PUSH_EXAMPLES)]
pub struct PushArgs {
    /// The cache: file:///FOLDER, http(s)://HOST[:PORT] (one that takes PUT, such as
    /// `cudapkgs serve --push-token-file`), or s3://BUCKET?endpoint=URL&region=REGION
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Sign every narinfo with this key (from `cudapkgs cache keygen` or Nix) [env:
    /// CUDAPKGS_SECRET_KEY_FILE; cudapkgs.toml's [cache] secret-key-file]
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// How NARs are compressed
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: PushCompression,
    /// The compression level [default: zstd 3, xz 6]
    #[arg(long, value_name = "N")]
    pub compression_level: Option<i32>,
    /// Paths compressed and uploaded at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// A file holding the token of an HTTP cache [env: CUDAPKGS_CACHE_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The cache is yours alone (a development cache): outputs of every package may go
    /// there whatever their licence
    #[arg(long)]
    pub private: bool,
    /// A package whose licence you have checked allows it in this cache (NVIDIA's forbid
    /// redistributing some components); repeatable
    #[arg(long, value_name = "PACKAGE")]
    pub redistributable: Vec<String>,
    /// Store paths or root names; their closures are pushed
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    #[command(flatten)]
    pub location: StoreLocation,
}

#[derive(Debug, Args)]
#[command(after_long_help = SERVE_EXAMPLES)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port, printed)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Serve this cache: file:///FOLDER or s3://BUCKET?…
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "store",
        conflicts_with = "store"
    )]
    pub cache: Option<String>,
    /// Serve the valid paths of the store (see --store-dir, --root, --state-dir),
    /// narinfos made and signed on the fly
    #[arg(long)]
    pub store: bool,
    /// Sign every narinfo served with this key [env: CUDAPKGS_SECRET_KEY_FILE;
    /// cudapkgs.toml's [cache] secret-key-file]
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Accept pushes (PUT) from clients that send the token in this file
    #[arg(long, value_name = "FILE")]
    pub push_token_file: Option<PathBuf>,
    /// Connections served at once; more are answered 503
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// The largest NAR a push may upload, in bytes (K, M, G suffixes)
    #[arg(long, default_value = "16G", value_name = "BYTES")]
    pub max_upload: String,
    /// The priority announced in nix-cache-info (lower wins)
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub priority: u32,
    /// The store `--store` serves (its own `--store` is that switch, not a URI)
    #[command(flatten)]
    pub folders: StoreFolders,
}

impl ServeArgs {
    fn location(&self) -> StoreLocation {
        StoreLocation {
            store: None,
            folders: self.folders.clone(),
        }
    }
}

#[derive(Debug, Args)]
#[command(after_long_help = COPY_EXAMPLES)]
pub struct CopyArgs {
    /// The cache: file:///FOLDER, http(s)://HOST[:PORT] or s3://BUCKET?…
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// A key whose signatures are trusted: `name:base64`, or a file holding one
    /// (repeatable) [env: CUDAPKGS_TRUSTED_PUBLIC_KEYS, space-separated; cudapkgs.toml's
    /// [cache] trusted-public-keys]
    #[arg(long = "trusted-public-key", value_name = "KEY")]
    pub trusted_public_keys: Vec<String>,
    /// Give up on a server that sends nothing for this many seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub stall_timeout: u64,
    /// NARs downloaded at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Store paths (or their hash parts); their closures are copied
    #[arg(required = true, value_name = "STORE_PATH")]
    pub paths: Vec<String>,
    #[command(flatten)]
    pub location: StoreLocation,
}

const PUSH_EXAMPLES: &str = "\
Examples:
  cudapkgs push --to file:///srv/cache --secret-key-file cache.sk libcublas-lib
  cudapkgs push --to http://cache.lan:8080 --token-file token --secret-key-file cache.sk libcublas
  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \\
    cudapkgs push --to 's3://cuda-cache?endpoint=https://s3.example.org&region=eu-1' libcublas

Every NAR is written once (compressed, hashed, checked against the store), uploaded as
nar/<file hash>.nar.zst, and only then its narinfo, after those of its references: a
killed push never leaves a narinfo without its NAR or its closure. Paths whose narinfo
is in the cache are skipped. NVIDIA's licences forbid redistributing some components:
push CUDA packages to a public cache only with a licence basis for each.";

const SERVE_EXAMPLES: &str = "\
Examples:
  cudapkgs serve --cache file:///srv/cache
  cudapkgs serve --store --store-dir /nix/store --root /srv/r --secret-key-file cache.sk
  cudapkgs serve --cache file:///srv/cache --push-token-file token --listen 0.0.0.0:8080

Nix uses it as a substituter: `nix copy --from http://127.0.0.1:8080 PATH` with the key in
trusted-public-keys. Every request is logged on stderr (not with -q).";

const COPY_EXAMPLES: &str = "\
Examples:
  cudapkgs copy --from http://cache.lan:8080 --trusted-public-key \"$(cat cache.pk)\" /nix/store/…-libcublas-13.1-lib

Every narinfo must be signed by a trusted key; each NAR is checked (size, hash,
references) before its path is registered, references first. Only paths named by
their contents can be stored (as `nix-store --add` and `cudapkgs build` make them).";

/// The signing key: `--secret-key-file`, else `CUDAPKGS_SECRET_KEY_FILE`, else `[cache]
/// secret-key-file`; `None` to sign nothing.
fn secret_key(flag: Option<&Path>, output: Output) -> CliResult<Option<SecretKey>> {
    let (config, _) = settings::loaded();
    let Some(file) = settings::secret_key_file(flag, &settings::process_env, config)? else {
        return Ok(None);
    };
    settings::tell_sources(output, &[("secret key file", &file.source)]);
    let path = file.value.as_path();
    SecretKey::parse(&read_key_file(path)?)
        .map(Some)
        .map_err(|e| CliError::new(path.display().to_string()).caused_by(&e))
}

/// `cache gc --json`; its keys (and each removed file's) in the order of their names,
/// as they always were.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct CollectReport<'a> {
    dry_run: bool,
    /// Unreferenced NAR files kept because they are younger than the grace period.
    kept_young: &'a [String],
    /// NAR files that narinfos name.
    referenced: usize,
    /// NAR files no narinfo names: removed, or (dry run) to be removed.
    removed: Vec<RemovedNar<'a>>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct RemovedNar<'a> {
    key: &'a str,
    size: u64,
}

/// `cache keygen --json`, its keys in the order of their names, as they always were.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct KeygenReport<'a> {
    name: &'a str,
    public_key: String,
    public_key_file: String,
    secret_key_file: String,
}

/// `cache serve --json`: printed once the server listens, before it serves.
#[derive(Debug, Serialize, schemars::JsonSchema)]
struct ServeReport<'a> {
    /// What is served, as the text names it.
    serving: &'a str,
    store_dir: &'a str,
    url: &'a str,
}

/// The JSON documents of `cache keygen` and `cache gc`, and of `push`, `serve` and `copy`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("cache-keygen", schema_of::<KeygenReport>()),
        ("cache-gc", schema_of::<CollectReport>()),
        ("push", schema_of::<PushReport>()),
        ("serve", schema_of::<ServeReport>()),
        ("copy", schema_of::<CopyReport>()),
    ]
}

pub fn cache(command: &CacheCommand, output: Output) -> CliResult<Exit> {
    match command {
        CacheCommand::Keygen {
            name,
            secret_file,
            public_file,
        } => keygen(name, secret_file, public_file, output),
        CacheCommand::Gc {
            cache,
            older_than,
            dry_run,
        } => collect(cache, *older_than, *dry_run, output),
    }
}

fn collect(url: &str, older_than: u64, dry_run: bool, output: Output) -> CliResult<Exit> {
    let Location::Folder(folder) = cache_location(url, "--cache")? else {
        return Err(
            CliError::new("--cache: only a file:// cache can be collected")
                .with_hint("name the cache's folder as file:///FOLDER"),
        );
    };
    let collection =
        cudapkgs_cache::collect::collect(&folder, Duration::from_secs(older_than), dry_run)
            .map_err(|e| cache_failure(&e))?;
    let bytes: u64 = collection.unreferenced.iter().map(|(_, size)| size).sum();
    if output.json {
        Output::print_json(&CollectReport {
            dry_run,
            kept_young: &collection.young,
            referenced: collection.referenced,
            removed: collection
                .unreferenced
                .iter()
                .map(|(key, size)| RemovedNar { key, size: *size })
                .collect(),
        })?;
    } else {
        for (key, _) in &collection.unreferenced {
            output.detail(format!(
                "{} {key}",
                if dry_run { "would remove" } else { "removed" }
            ));
        }
        Output::print(&format!(
            "{} {} NAR file{} ({}) that no narinfo names; {} younger kept, {} named\n",
            if dry_run { "would remove" } else { "removed" },
            collection.unreferenced.len(),
            if collection.unreferenced.len() == 1 {
                ""
            } else {
                "s"
            },
            crate::units::bytes(bytes),
            collection.young.len(),
            collection.referenced
        ))?;
    }
    Ok(Exit::Success)
}

fn keygen(name: &str, secret_file: &Path, public_file: &Path, output: Output) -> CliResult<Exit> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let key = SecretKey::generate(name).map_err(|e| CliError::from_error(&e))?;
    for path in [secret_file, public_file] {
        if path.symlink_metadata().is_ok() {
            return Err(
                CliError::new(format!("{} exists already", path.display())).with_hint(
                    "keys are never overwritten: name new files, or remove the old ones yourself",
                ),
            );
        }
    }
    let write = |path: &Path, text: &str, mode: u32| -> CliResult<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|e| CliError::new(format!("cannot write {}", path.display())).caused_by(&e))
    };
    write(secret_file, &key.to_text(), 0o600)?;
    if let Err(error) = write(public_file, &key.public().to_text(), 0o644) {
        let _ = std::fs::remove_file(secret_file);
        return Err(error);
    }
    if output.json {
        Output::print_json(&KeygenReport {
            name,
            public_key: key.public().to_text(),
            public_key_file: public_file.display().to_string(),
            secret_key_file: secret_file.display().to_string(),
        })?;
    } else {
        Output::print(&format!("{}\n", key.public().to_text()))?;
    }
    Ok(Exit::Success)
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct PushReport {
    cache: String,
    pushed: Vec<PushedPath>,
    present: Vec<String>,
    /// Keys of the build records pushed (those whose outputs all went).
    records: Vec<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct PushedPath {
    path: String,
    nar_size: u64,
    file_size: u64,
}

pub fn push(args: &PushArgs, output: Output) -> CliResult<Exit> {
    let target = cache_location(&args.to, "--to")?;
    let key = secret_key(args.secret_key_file.as_deref(), output)?;
    if key.is_none() {
        output.warn("pushing without --secret-key-file: clients that check signatures will refuse these paths");
    }
    let token = match &args.token_file {
        Some(path) => Some(read_key_file(path)?.trim().to_owned()),
        None => process_env("CUDAPKGS_CACHE_TOKEN"),
    };
    let compression = match args.compression {
        PushCompression::Zstd => Compression::Zstd,
        PushCompression::Xz => Compression::Xz,
        PushCompression::None => Compression::None,
    };
    let mut settings = compress::Settings::default_zstd();
    settings.compression = compression;
    settings.level = args
        .compression_level
        .unwrap_or_else(|| compress::Settings::default_level(compression));
    let store = open_store_for(&args.location, StoreAccess::ReadOnly)?;
    let roots = resolve_all(&store, &args.paths)?;
    let access = Access {
        token,
        s3: s3_credentials(),
        client: HttpClient::default(),
    };
    let backend = backend::open(&target, &access, true).map_err(|e| cache_failure(&e))?;
    let options = push::Options {
        compression: settings,
        secret_key: key.as_ref(),
        jobs: args.jobs.max(1),
        private: args.private,
        redistributable: &args.redistributable,
    };
    let bars = Bars::new(output);
    let task = Task::start(&bars, Phase::Push, &backend.describe(), None);
    let progress = |event: &push::Event| match event {
        push::Event::Pushed {
            path, file_size, ..
        } => {
            task.advance(1);
            output.detail(format!(
                "pushed {path} ({})",
                crate::units::bytes(*file_size)
            ));
        }
        push::Event::Present(_) => task.advance(1),
        push::Event::Record(_) => {}
    };
    let report = push::push(&store, &roots, backend.as_ref(), &options, &progress)
        .map_err(|e| cache_failure(&e))?;
    drop(task);
    let mut summary = PushReport {
        cache: backend.describe(),
        pushed: Vec::new(),
        present: Vec::new(),
        records: Vec::new(),
    };
    for event in report.events {
        match event {
            push::Event::Present(path) => summary.present.push(path),
            push::Event::Pushed {
                path,
                nar_size,
                file_size,
            } => summary.pushed.push(PushedPath {
                path,
                nar_size,
                file_size,
            }),
            push::Event::Record(key) => summary.records.push(key),
        }
    }
    if output.json {
        Output::print_json(&summary)?;
    } else {
        let nar: u64 = summary.pushed.iter().map(|p| p.nar_size).sum();
        let file: u64 = summary.pushed.iter().map(|p| p.file_size).sum();
        Output::print(&format!(
            "pushed {} path{} to {} ({} of NAR as {}), {} already there; {} build record{}\n",
            summary.pushed.len(),
            if summary.pushed.len() == 1 { "" } else { "s" },
            summary.cache,
            crate::units::bytes(nar),
            crate::units::bytes(file),
            summary.present.len(),
            summary.records.len(),
            if summary.records.len() == 1 { "" } else { "s" },
        ))?;
    }
    Ok(Exit::Success)
}

/// `--max-upload`: `16G`, `512M`, `100K` or plain bytes.
fn parse_size(text: &str) -> CliResult<u64> {
    crate::units::parse_bytes(text).ok_or_else(|| {
        CliError::new(format!("--max-upload: {:?} is not a size", text.trim()))
            .with_hint("give bytes, or a number with K, M, G or T")
    })
}

pub fn serve(args: &ServeArgs, output: Output) -> CliResult<Exit> {
    let secret_key = secret_key(args.secret_key_file.as_deref(), output)?;
    let push_token = match &args.push_token_file {
        Some(path) => {
            let token = read_key_file(path)?.trim().to_owned();
            if token.len() < 16 {
                return Err(CliError::new(format!(
                    "{}: the push token has {} characters; at least 16 are needed",
                    path.display(),
                    token.len()
                )));
            }
            Some(token)
        }
        None => None,
    };
    let (source, store_dir, describe) =
        serve_source(args, secret_key.is_some(), push_token.is_some(), output)?;
    let pushes = push_token.is_some();
    let config = Config {
        source,
        store_dir,
        secret_key,
        push_token,
        max_connections: args.max_connections.max(1),
        max_upload: parse_size(&args.max_upload)?,
        idle_timeout: Duration::from_secs(30),
        priority: args.priority,
    };
    let server = Server::bind(args.listen, config)
        .map_err(|e| cache_failure(&e).with_hint("choose another --listen address or port"))?;
    let address = server.local_addr().map_err(|e| cache_failure(&e))?;
    if pushes && !address.ip().is_loopback() {
        output.warn("pushes are accepted over plain HTTP beyond this machine: the token travels unencrypted; put a TLS proxy in front");
    }
    let url = format!("http://{address}");
    if output.json {
        Output::print_json(&ServeReport {
            serving: &describe,
            store_dir: server.store_dir(),
            url: &url,
        })?;
    } else {
        Output::print(&format!("{url}\n"))?;
        if !output.quiet {
            eprintln!("serving {describe} ({}) on {url}", server.store_dir());
        }
    }
    let log = request_logger(output.quiet);
    server.run(&log).map_err(|e| cache_failure(&e))?;
    Ok(Exit::Success)
}

/// What `serve` serves: the source, its store folder, and how to name it.
fn serve_source(
    args: &ServeArgs,
    signed: bool,
    pushes: bool,
    output: Output,
) -> CliResult<(Source, String, String)> {
    Ok(if args.store {
        let store = open_store_for(&args.location(), StoreAccess::ReadOnly)?;
        if !signed {
            output.warn("serving a store without --secret-key-file: Nix will refuse its unsigned narinfos unless it trusts no signatures");
        }
        let store_dir = store.folder().to_owned();
        let location = args.location();
        // Each connection opens the store for itself (a database handle is not shared).
        let open = move || open_store_for(&location, StoreAccess::ReadOnly).map_err(|e| e.message);
        (
            Source::Store {
                store_dir: store_dir.clone(),
                open: Box::new(open),
            },
            store_dir.clone(),
            format!("the store {store_dir}"),
        )
    } else {
        let url = args.cache.as_deref().unwrap_or_default();
        let target = cache_location(url, "--cache")?;
        if matches!(target, Location::Http(_)) {
            return Err(
                CliError::new("--cache: serving another HTTP cache is not supported")
                    .with_hint("serve a file:// folder or an s3:// bucket"),
            );
        }
        let access = Access {
            token: None,
            s3: s3_credentials(),
            client: HttpClient::default(),
        };
        let backend = backend::open(&target, &access, pushes).map_err(|e| cache_failure(&e))?;
        let describe = backend.describe();
        // A cache's paths are Nix's unless a store folder is set.
        let store_dir =
            settings::store_dir(args.folders.store_dir.as_deref(), &process_env, loaded().0)?
                .map_or_else(|| "/nix/store".to_owned(), |dir| dir.value);
        (Source::Cache(backend), store_dir, describe)
    })
}

/// Writes one line per request on stderr (nothing when quiet).
fn request_logger(quiet: bool) -> Logger {
    Arc::new(move |entry| {
        if !quiet {
            let mut line = String::new();
            let _ = write!(
                line,
                "{} {} {} {} {} {:.1}ms",
                entry.peer.ip(),
                entry.method,
                entry.path,
                entry.status,
                entry.bytes,
                entry.duration.as_secs_f64() * 1e3
            );
            eprintln!("{line}");
        }
    })
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct CopyReport {
    cache: String,
    copied: Vec<CopiedPath>,
    present: Vec<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct CopiedPath {
    path: String,
    nar_size: u64,
    file_size: u64,
    signed_by: String,
}

pub fn copy(args: &CopyArgs, output: Output) -> CliResult<Exit> {
    let source = cache_location(&args.from, "--from")?;
    let (config, _) = settings::loaded();
    let trusted =
        settings::trusted_public_keys(&args.trusted_public_keys, &settings::process_env, config)?;
    settings::tell_sources(output, &[("trusted public keys", &trusted.source)]);
    let trusted = trusted_keys(&trusted)?;
    if trusted.is_empty() {
        return Err(
            CliError::new("no trusted public key: every narinfo must be signed by one")
                .with_hint("pass --trusted-public-key name:base64 (the cache's public key)"),
        );
    }
    let access = Access {
        token: None,
        s3: s3_credentials(),
        client: HttpClient::new(Duration::from_secs(args.stall_timeout.max(1))),
    };
    let backend = backend::open(&source, &access, false).map_err(|e| cache_failure(&e))?;
    let mut store = open_store(&args.location)?;
    let bars = Bars::new(output);
    let task = Task::start(&bars, Phase::Copy, &args.from, None);
    let progress = |event: &substitute::Event| match event {
        substitute::Event::Fetched {
            path, file_size, ..
        } => {
            task.advance(1);
            output.detail(format!(
                "copied {path} ({})",
                crate::units::bytes(*file_size)
            ));
        }
        substitute::Event::Present(_) => task.advance(1),
    };
    let report = substitute::substitute(
        &mut store,
        backend.as_ref(),
        &args.paths,
        &substitute::Options {
            trusted: &trusted,
            jobs: args.jobs.max(1),
        },
        &progress,
    )
    .map_err(|e| cache_failure(&e))?;
    drop(task);
    let mut summary = CopyReport {
        cache: backend.describe(),
        copied: Vec::new(),
        present: Vec::new(),
    };
    for event in report.events {
        match event {
            substitute::Event::Present(path) => summary.present.push(path),
            substitute::Event::Fetched {
                path,
                nar_size,
                file_size,
                signer,
            } => summary.copied.push(CopiedPath {
                path,
                nar_size,
                file_size,
                signed_by: signer,
            }),
        }
    }
    if output.json {
        Output::print_json(&summary)?;
    } else {
        let nar: u64 = summary.copied.iter().map(|p| p.nar_size).sum();
        Output::print(&format!(
            "copied {} path{} from {} ({}), {} already there\n",
            summary.copied.len(),
            if summary.copied.len() == 1 { "" } else { "s" },
            summary.cache,
            crate::units::bytes(nar),
            summary.present.len()
        ))?;
    }
    Ok(Exit::Success)
}
