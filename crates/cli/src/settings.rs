//! Settings from three places, in order of precedence: command-line flags, then
//! `CUDAPKGS_*` environment variables, then `cudapkgs.toml`. Every resolved value
//! remembers where it came from, for `-v` and for error messages.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cudapkgs_caps::{
    Capability, CudaOptions, CudaVersion, DEFAULT_CUDA, HostCompiler, HostPlatform, check_known,
    gpu_capability, parse_capability_list,
};
use serde::Deserialize;

use crate::cli::FlagsArgs;
use crate::error::{CliError, CliResult};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    Config(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "{flag}"),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Config(path) => write!(f, "{}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// The `[cuda]` table of `cudapkgs.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CudaSection {
    pub version: Option<Release>,
    pub capabilities: Option<Vec<Capability>>,
    pub gpus: Option<Vec<String>>,
    pub forward_compat: Option<bool>,
    pub platform: Option<HostPlatform>,
    pub host_compiler: Option<String>,
}

/// The `[store]` table of `cudapkgs.toml`: the folders of the store every store
/// command opens.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StoreSection {
    /// The logical store folder (`--store-dir`).
    pub dir: Option<String>,
    /// Where that folder lives on this machine (`--root`).
    pub root: Option<PathBuf>,
    /// The folder of the store's database (`--state-dir`).
    pub state: Option<PathBuf>,
}

/// The `[index]` table of `cudapkgs.toml`: where PyPI-style wheels are resolved.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IndexSection {
    /// The simple index (`--index-url`).
    pub url: Option<String>,
    /// Resolve and fetch from what the download cache kept (`--offline`).
    pub offline: Option<bool>,
}

/// The `[cache]` table of `cudapkgs.toml`: the binary caches builds substitute from and
/// the keys that sign and check them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheSection {
    /// Caches a build takes outputs from (`--substituter`).
    pub substituters: Option<Vec<String>>,
    /// Keys whose signatures are trusted, `name:base64` or files (`--trusted-public-key`).
    pub trusted_public_keys: Option<Vec<String>>,
    /// The key `push` and `serve` sign with (`--secret-key-file`).
    pub secret_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigDocument {
    #[serde(default)]
    cuda: CudaSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    index: IndexSection,
    #[serde(default)]
    cache: CacheSection,
    /// The package set `cudapkgs upkeep` builds (its own crate reads the table).
    upkeep: Option<cudapkgs_upkeep::SetConfig>,
}

/// A loaded `cudapkgs.toml` (or none).
#[derive(Debug, Default, Clone)]
pub struct Config {
    pub path: Option<PathBuf>,
    pub cuda: CudaSection,
    pub store: StoreSection,
    pub index: IndexSection,
    pub cache: CacheSection,
    pub upkeep: Option<cudapkgs_upkeep::SetConfig>,
}

/// Reads the environment; a function so that tests can supply their own.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, ignoring unset and empty variables.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

impl Config {
    /// Finds and reads the configuration: `--config` or `CUDAPKGS_CONFIG` when given
    /// (then it must exist), else `./cudapkgs.toml`, else
    /// `$XDG_CONFIG_HOME/cudapkgs/cudapkgs.toml` (`~/.config/…`).
    pub fn load(explicit: Option<&Path>, env: EnvLookup<'_>) -> CliResult<Config> {
        if let Some(path) = explicit {
            return Self::read(path);
        }
        if let Some(path) = env("CUDAPKGS_CONFIG") {
            return Self::read(Path::new(&path))
                .map_err(|error| error.context("environment variable CUDAPKGS_CONFIG"));
        }
        let mut candidates = vec![PathBuf::from("cudapkgs.toml")];
        let config_home = env("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|home| Path::new(&home).join(".config")));
        if let Some(dir) = config_home {
            candidates.push(dir.join("cudapkgs").join("cudapkgs.toml"));
        }
        match candidates.into_iter().find(|path| path.is_file()) {
            Some(path) => Self::read(&path),
            None => Ok(Config::default()),
        }
    }

    fn read(path: &Path) -> CliResult<Config> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            CliError::new(format!("cannot read configuration file {}", path.display()))
                .caused_by(&error)
                .with_hint("pass an existing file to --config, or remove the setting")
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> CliResult<Config> {
        let document: ConfigDocument = toml::from_str(text).map_err(|error| {
            CliError::new(format!(
                "invalid configuration file {}: {}",
                path.display(),
                error.to_string().trim_end()
            ))
            .with_hint("see the Configuration section of README.md for the accepted keys")
        })?;
        Ok(Config {
            path: Some(path.to_owned()),
            cuda: document.cuda,
            store: document.store,
            index: document.index,
            cache: document.cache,
            upkeep: document.upkeep,
        })
    }

    fn source(&self) -> Source {
        self.path.clone().map_or(Source::Default, Source::Config)
    }
}

/// Picks the first value present among flag, environment variable and config file;
/// `None` when none sets it. Environment values are parsed here, so their errors name
/// the variable.
pub fn layered<T: FromStr>(
    flag: Option<(T, &'static str)>,
    env_name: &'static str,
    env: EnvLookup<'_>,
    from_config: Option<T>,
    config: &Config,
) -> CliResult<Option<Sourced<T>>>
where
    T::Err: fmt::Display,
{
    if let Some((value, name)) = flag {
        return Ok(Some(Sourced {
            value,
            source: Source::Flag(name),
        }));
    }
    if let Some(text) = env(env_name) {
        let value = text.parse::<T>().map_err(|error| {
            CliError::new(error.to_string()).context(format!("environment variable {env_name}"))
        })?;
        return Ok(Some(Sourced {
            value,
            source: Source::Env(env_name),
        }));
    }
    Ok(from_config.map(|value| Sourced {
        value,
        source: config.source(),
    }))
}

impl<T> Sourced<T> {
    /// A built-in default.
    pub fn default(value: T) -> Self {
        Sourced {
            value,
            source: Source::Default,
        }
    }
}

/// What the user said the targets are: capabilities, or GPUs to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    Capabilities(Vec<Capability>),
    Gpus(Vec<String>),
    Default,
}

/// Targets come as a pair at each level (capabilities or GPUs, not both): the first
/// level that sets either one wins.
pub fn targets(
    flag_capabilities: Option<&str>,
    flag_gpus: &[String],
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Sourced<Targets>> {
    if let Some(text) = flag_capabilities {
        let list = parse_capability_list(text)
            .map_err(|error| CliError::from_error(&error).context("--capabilities"))?;
        return Ok(Sourced {
            value: Targets::Capabilities(list),
            source: Source::Flag("--capabilities"),
        });
    }
    if !flag_gpus.is_empty() {
        return Ok(Sourced {
            value: Targets::Gpus(flag_gpus.to_vec()),
            source: Source::Flag("--gpu"),
        });
    }

    match (env("CUDAPKGS_CAPABILITIES"), env("CUDAPKGS_GPU")) {
        (Some(_), Some(_)) => {
            return Err(
                CliError::new("both CUDAPKGS_CAPABILITIES and CUDAPKGS_GPU are set")
                    .with_hint("unset one of them"),
            );
        }
        (Some(text), None) => {
            let list = parse_capability_list(&text).map_err(|error| {
                CliError::from_error(&error).context("environment variable CUDAPKGS_CAPABILITIES")
            })?;
            return Ok(Sourced {
                value: Targets::Capabilities(list),
                source: Source::Env("CUDAPKGS_CAPABILITIES"),
            });
        }
        (None, Some(text)) => {
            // Product names contain spaces, so the list is comma-separated.
            let names = text
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect();
            return Ok(Sourced {
                value: Targets::Gpus(names),
                source: Source::Env("CUDAPKGS_GPU"),
            });
        }
        (None, None) => {}
    }

    let value = match (&config.cuda.capabilities, &config.cuda.gpus) {
        (Some(_), Some(_)) => {
            return Err(CliError::new(format!(
                "{}: [cuda] sets both `capabilities` and `gpus`",
                config.source()
            ))
            .with_hint("keep one of them"));
        }
        (Some(list), None) => Targets::Capabilities(list.clone()),
        (None, Some(names)) => Targets::Gpus(names.clone()),
        (None, None) => {
            return Ok(Sourced {
                value: Targets::Default,
                source: Source::Default,
            });
        }
    };
    Ok(Sourced {
        value,
        source: config.source(),
    })
}

impl Targets {
    /// The GPU names asked for (none when capabilities are).
    pub fn names(&self) -> &[String] {
        match self {
            Targets::Gpus(names) => names,
            Targets::Capabilities(_) | Targets::Default => &[],
        }
    }
}

/// Where targets came from, with the key for the config file: errors name it.
fn targets_origin(targets: &Sourced<Targets>) -> String {
    match (&targets.source, &targets.value) {
        (Source::Config(path), Targets::Capabilities(_)) => {
            format!("{} [cuda] capabilities", path.display())
        }
        (Source::Config(path), _) => format!("{} [cuda] gpus", path.display()),
        (source, _) => source.to_string(),
    }
}

/// The capabilities `targets` ask for, GPU names resolved with `cuda` (`native`: this
/// machine's GPUs); sorted, without repeats, empty when nothing asks for any. Errors
/// name the flag, variable or key the targets came from.
pub fn capabilities_of(
    targets: &Sourced<Targets>,
    cuda: CudaVersion,
) -> CliResult<Vec<Capability>> {
    let origin = || targets_origin(targets);
    let mut capabilities = match &targets.value {
        Targets::Capabilities(list) => list.clone(),
        Targets::Gpus(names) => crate::native::expand(names)
            .map_err(|error| error.context(origin()))?
            .iter()
            .map(|name| gpu_capability(name, cuda))
            .collect::<Result<_, _>>()
            .map_err(|error| CliError::from(error).context(origin()))?,
        Targets::Default => Vec::new(),
    };
    capabilities.sort();
    capabilities.dedup();
    // A capability no GPU has would match no image and so strip every kernel.
    check_known(&capabilities).map_err(|error| CliError::from(error).context(origin()))?;
    Ok(capabilities)
}

/// The CUDA release GPU names are resolved with, for a command without a `--cuda` of
/// its own: `flag` (the driver's release, when given), else `CUDAPKGS_CUDA`, else
/// `[cuda] version`, else the default release.
pub fn names_release(
    flag: Option<(CudaVersion, &'static str)>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Sourced<CudaVersion>> {
    Ok(cuda_version(flag, env, config)?.unwrap_or_else(|| Sourced::default(DEFAULT_CUDA)))
}

/// The driver's CUDA version a judgement is for (`--driver-cuda`, else the driver of
/// a `native` target) and the release GPU names resolve with (that version when known,
/// else the configured release).
pub fn driver_release(
    flag: Option<CudaVersion>,
    targets: &Sourced<Targets>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<(Option<CudaVersion>, Sourced<CudaVersion>)> {
    let driver_cuda = match flag {
        Some(cuda) => Some(cuda),
        None => crate::native::driver_cuda(targets.value.names())?,
    };
    let release = names_release(driver_cuda.map(|cuda| (cuda, "--driver-cuda")), env, config)?;
    Ok((driver_cuda, release))
}

/// A CUDA release as `build` takes it: a major (`13`), a release (`12.9`) or a full
/// version (`12.9.1`); a major or a release stands for its newest release.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Release(String);

impl TryFrom<String> for Release {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// The CUDA version (major and minor) of the commands that need one: `flag`, else
/// `CUDAPKGS_CUDA`, else `[cuda] version`, where a major alone (`13`) is its newest
/// release; `None` when none sets it. The file is read only when it is the one used.
fn cuda_version(
    flag: Option<(CudaVersion, &'static str)>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Option<Sourced<CudaVersion>>> {
    let parse = |text: &str, origin: String| {
        CudaVersion::parse_release(text)
            .map_err(|error| CliError::from_error(&error).context(origin))
    };
    if let Some((value, name)) = flag {
        return Ok(Some(Sourced {
            value,
            source: Source::Flag(name),
        }));
    }
    if let Some(text) = env("CUDAPKGS_CUDA") {
        return Ok(Some(Sourced {
            value: parse(&text, "environment variable CUDAPKGS_CUDA".to_owned())?,
            source: Source::Env("CUDAPKGS_CUDA"),
        }));
    }
    let Some(release) = &config.cuda.version else {
        return Ok(None);
    };
    Ok(Some(Sourced {
        value: parse(
            release.as_str(),
            format!("{} [cuda] version", config.source()),
        )?,
        source: config.source(),
    }))
}

/// The release `build` uses when none is set.
pub const BUILD_DEFAULT_RELEASE: &str = "13";

impl Release {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The major and minor (0 for a major alone), for what depends on the release.
    pub fn version(&self) -> CudaVersion {
        let mut parts = self
            .0
            .split('.')
            .map(|part| part.parse::<u8>().unwrap_or(0));
        let major = parts.next().unwrap_or(0);
        CudaVersion::new(major, parts.next().unwrap_or(0))
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Release {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let parts: Vec<&str> = text.split('.').collect();
        let number = |part: &&str| {
            !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit())
        };
        let major_fits = parts
            .first()
            .is_some_and(|major| major.parse::<u8>().is_ok());
        if parts.len() > 3 || !parts.iter().all(number) || !major_fits {
            return Err(format!(
                "invalid CUDA release `{text}`: expected a release like 12.9.1, 12.9 or 13"
            ));
        }
        Ok(Release(text.to_owned()))
    }
}

/// `build`'s release: [`release_setting`], else 13.
pub fn build_release(
    flag: Option<&Release>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Sourced<Release>> {
    Ok(release_setting(flag, env, config)?
        .unwrap_or_else(|| Sourced::default(Release(BUILD_DEFAULT_RELEASE.to_owned()))))
}

/// The CUDA release asked for: `--cuda`, else `CUDAPKGS_CUDA`, else `[cuda] version`;
/// `None` when nothing sets one.
pub fn release_setting(
    flag: Option<&Release>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Option<Sourced<Release>>> {
    layered(
        flag.map(|release| (release.clone(), "--cuda")),
        "CUDAPKGS_CUDA",
        env,
        config.cuda.version.clone(),
        config,
    )
}

/// Prints where each setting came from, for `-v`.
pub fn tell_sources(output: crate::output::Output, sources: &[(&str, &Source)]) {
    for (setting, source) in sources {
        output.detail(format!("{setting}: from {source}"));
    }
}

// The store.

/// The store folders as the store commands open them, with where each came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub dir: Sourced<String>,
    pub root: Option<Sourced<PathBuf>>,
    pub state: Sourced<PathBuf>,
}

impl StoreSettings {
    /// Each folder and where it came from, for `-v`.
    pub fn sources(&self) -> Vec<(&'static str, &Source)> {
        let mut sources = vec![("store dir", &self.dir.source)];
        if let Some(root) = &self.root {
            sources.push(("store root", &root.source));
        }
        sources.push(("state dir", &self.state.source));
        sources
    }
}

/// A folder the config file names, taken relative to the file's own folder.
fn beside_config(config: &Config, path: &Path) -> PathBuf {
    match config.path.as_deref().and_then(Path::parent) {
        Some(folder) if path.is_relative() => folder.join(path),
        _ => path.to_owned(),
    }
}

/// The store folder: `flag`, else `CUDAPKGS_STORE_DIR`, else `[store] dir`; `None` when
/// none of them sets it (each command has its default).
pub fn store_dir(
    flag: Option<&str>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Option<Sourced<String>>> {
    let dir = layered(
        flag.map(|dir| (dir.to_owned(), "--store-dir")),
        "CUDAPKGS_STORE_DIR",
        env,
        config.store.dir.clone(),
        config,
    )?;
    let Some(dir) = dir else {
        return Ok(None);
    };
    let value = dir.value.trim_end_matches('/').to_owned();
    cudapkgs_nix::StoreDir::new(&value).map_err(|error| {
        CliError::new(error.to_string())
            .context(&dir.source)
            .with_hint("name the store folder from the root, like /nix/store")
    })?;
    Ok(Some(Sourced {
        value,
        source: dir.source,
    }))
}

/// The store folder when nothing sets one: `$XDG_DATA_HOME/cudapkgs/store`, else
/// `~/.local/share/cudapkgs/store`, or why there is none.
fn default_store_dir(env: EnvLookup<'_>) -> CliResult<String> {
    cudapkgs_store::location::default_store_dir(
        env("XDG_DATA_HOME").as_deref(),
        env("HOME").as_deref(),
    )
    .ok_or_else(|| {
        CliError::new("no store folder: neither XDG_DATA_HOME nor HOME is set").with_hint(
            "pass --store-dir, set CUDAPKGS_STORE_DIR, or write [store] dir in cudapkgs.toml",
        )
    })
}

/// The store folder of every store command: [`store_dir`], else the default one.
pub fn store_folder(
    flag: Option<&str>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Sourced<String>> {
    match store_dir(flag, env, config)? {
        Some(dir) => Ok(dir),
        None => Ok(Sourced::default(default_store_dir(env)?)),
    }
}

/// The folders of the store: each from its flag, else `CUDAPKGS_STORE_DIR`,
/// `CUDAPKGS_STORE_ROOT` and `CUDAPKGS_STATE_DIR`, else `[store]`'s `dir`, `root` and
/// `state`, else the defaults.
pub fn store_settings(
    dir: Option<&str>,
    root: Option<&Path>,
    state: Option<&Path>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<StoreSettings> {
    let dir = store_folder(dir, env, config)?;
    let root = layered(
        root.map(|root| (root.to_owned(), "--root")),
        "CUDAPKGS_STORE_ROOT",
        env,
        config
            .store
            .root
            .as_deref()
            .map(|root| beside_config(config, root)),
        config,
    )?;
    let state = layered(
        state.map(|state| (state.to_owned(), "--state-dir")),
        "CUDAPKGS_STATE_DIR",
        env,
        config
            .store
            .state
            .as_deref()
            .map(|state| beside_config(config, state)),
        config,
    )?
    .unwrap_or_else(|| {
        Sourced::default(cudapkgs_store::location::default_state_dir(
            &dir.value,
            root.as_ref().map(|root| root.value.as_path()),
        ))
    });
    Ok(StoreSettings { dir, root, state })
}

// The package index and the binary caches.

/// Words separated by white space, as list variables write them
/// (`CUDAPKGS_SUBSTITUTERS="file:///a https://b"`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Words(Vec<String>);

impl FromStr for Words {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Words(text.split_whitespace().map(str::to_owned).collect()))
    }
}

/// A list setting: the repeated flag when given, else the variable, else the file's
/// list, else empty.
fn layered_list(
    flags: &[String],
    flag_name: &'static str,
    env_name: &'static str,
    env: EnvLookup<'_>,
    from_config: Option<&[String]>,
    config: &Config,
) -> CliResult<Sourced<Vec<String>>> {
    let flag = (!flags.is_empty()).then(|| (Words(flags.to_vec()), flag_name));
    let set = layered(
        flag,
        env_name,
        env,
        from_config.map(|list| Words(list.to_vec())),
        config,
    )?;
    Ok(set.map_or_else(
        || Sourced::default(Vec::new()),
        |set| Sourced {
            value: set.value.0,
            source: set.source,
        },
    ))
}

/// The simple index: `flag`, else `CUDAPKGS_INDEX_URL`, else `[index] url`, else what
/// pip would use (`$PIP_INDEX_URL`, pip's configuration, PyPI).
pub fn index_url(
    flag: Option<&str>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Sourced<String>> {
    let set = layered(
        flag.map(|url| (url.to_owned(), "--index-url")),
        "CUDAPKGS_INDEX_URL",
        env,
        config.index.url.clone(),
        config,
    )?;
    if let Some(set) = &set {
        let scheme = set.value.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("http" | "https" | "file")) {
            return Err(CliError::new(format!(
                "`{}` is not an http://, https:// or file:// URL of a simple index",
                set.value
            ))
            .context(&set.source));
        }
    }
    Ok(set.unwrap_or_else(|| Sourced::default(cudapkgs_builder::resolve::pip_index_url(env))))
}

/// Whether to use no network: `--offline`, else `CUDAPKGS_OFFLINE`, else `[index]
/// offline`, else online.
pub fn offline(flag: bool, env: EnvLookup<'_>, config: &Config) -> CliResult<Sourced<bool>> {
    let set = layered(
        flag.then_some((Switch(true), "--offline")),
        "CUDAPKGS_OFFLINE",
        env,
        config.index.offline.map(Switch),
        config,
    )?;
    let offline = set.map_or_else(
        || Sourced::default(false),
        |set| Sourced {
            value: set.value.0,
            source: set.source,
        },
    );
    if offline.value {
        let _ = OFFLINE_ORIGIN.set(offline.source.clone());
    }
    Ok(offline)
}

/// What turned the network off in this run, for the hint of an offline miss (the
/// libraries' errors do not name settings).
static OFFLINE_ORIGIN: std::sync::OnceLock<Source> = std::sync::OnceLock::new();

/// Where the setting that turned the network off came from, once [`offline`] said so.
pub fn offline_origin() -> Option<&'static Source> {
    OFFLINE_ORIGIN.get()
}

/// The caches a build substitutes from: the `--substituter` flags, else
/// `CUDAPKGS_SUBSTITUTERS`, else `[cache] substituters`.
pub fn substituters(
    flags: &[String],
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Sourced<Vec<String>>> {
    layered_list(
        flags,
        "--substituter",
        "CUDAPKGS_SUBSTITUTERS",
        env,
        config.cache.substituters.as_deref(),
        config,
    )
}

/// The trusted keys (text or files): the flags, else `CUDAPKGS_TRUSTED_PUBLIC_KEYS`,
/// else `[cache] trusted-public-keys` (key files there taken beside the file).
pub fn trusted_public_keys(
    flags: &[String],
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Sourced<Vec<String>>> {
    let from_config: Option<Vec<String>> = config.cache.trusted_public_keys.as_ref().map(|keys| {
        keys.iter()
            .map(|key| {
                if key.contains(':') {
                    key.clone()
                } else {
                    beside_config(config, Path::new(key)).display().to_string()
                }
            })
            .collect()
    });
    layered_list(
        flags,
        "--trusted-public-key",
        "CUDAPKGS_TRUSTED_PUBLIC_KEYS",
        env,
        from_config.as_deref(),
        config,
    )
}

/// The signing key's file: `flag`, else `CUDAPKGS_SECRET_KEY_FILE`, else `[cache]
/// secret-key-file` (taken beside the file); `None` to sign nothing.
pub fn secret_key_file(
    flag: Option<&Path>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Option<Sourced<PathBuf>>> {
    layered(
        flag.map(|path| (path.to_owned(), "--secret-key-file")),
        "CUDAPKGS_SECRET_KEY_FILE",
        env,
        config
            .cache
            .secret_key_file
            .as_deref()
            .map(|path| beside_config(config, path)),
        config,
    )
}

// The settings the whole run shares.

/// The configuration this run loaded and its output, for the plumbing that opens what
/// every command shares (the store) without each command passing them along.
static LOADED: std::sync::OnceLock<(Config, crate::output::Output)> = std::sync::OnceLock::new();

/// Remembers this run's configuration and output (once, before any command runs).
pub fn install(config: Config, output: crate::output::Output) {
    let _ = LOADED.set((config, output));
}

/// This run's configuration and output; no configuration and silent output before
/// [`install`].
pub fn loaded() -> (&'static Config, crate::output::Output) {
    static NONE: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    match LOADED.get() {
        Some((config, output)) => (config, *output),
        None => (
            NONE.get_or_init(Config::default),
            crate::output::Output {
                json: false,
                quiet: true,
                verbose: 0,
                bytes: false,
                width: None,
            },
        ),
    }
}

/// A yes/no setting as environment variables write it: `true`/`false`, `1`/`0`,
/// `yes`/`no`, `on`/`off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

impl FromStr for Switch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Switch(true)),
            "false" | "0" | "no" | "off" => Ok(Switch(false)),
            _ => Err(format!("expected true or false, found `{text}`")),
        }
    }
}

/// Forward compatibility (PTX for newer GPUs): `flag`, else `CUDAPKGS_FORWARD_COMPAT`,
/// else `[cuda] forward-compat`, else on.
pub fn forward_compat(
    flag: Option<(bool, &'static str)>,
    env: EnvLookup<'_>,
    config: &Config,
) -> CliResult<Sourced<bool>> {
    let set = layered(
        flag.map(|(on, name)| (Switch(on), name)),
        "CUDAPKGS_FORWARD_COMPAT",
        env,
        config.cuda.forward_compat.map(Switch),
        config,
    )?;
    Ok(set.map_or_else(
        || Sourced::default(true),
        |set| Sourced {
            value: set.value.0,
            source: set.source,
        },
    ))
}

/// The platform of this machine: Jetson boards carry `/etc/nv_tegra_release`.
pub fn this_machine_platform() -> CliResult<HostPlatform> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(HostPlatform::X86_64),
        "aarch64" if Path::new("/etc/nv_tegra_release").exists() => Ok(HostPlatform::Aarch64Jetson),
        "aarch64" => Ok(HostPlatform::Aarch64Server),
        other => Err(CliError::new(format!(
            "this machine's architecture ({other}) is not a CUDA host platform"
        ))
        .with_hint("pass --platform x86_64, aarch64-server or aarch64-jetson")),
    }
}

/// Parses a host compiler given in the config file, naming the file on error.
pub fn config_host_compiler(config: &Config) -> CliResult<Option<HostCompiler>> {
    config
        .cuda
        .host_compiler
        .as_deref()
        .map(|text| {
            text.parse::<HostCompiler>()
                .map_err(|error| CliError::from_error(&error).context(config.source()))
        })
        .transpose()
}

/// The CUDA options of `flags` and `targets` once their flags, the environment and
/// `cudapkgs.toml` are merged, with where each came from.
pub struct CudaSettings {
    pub options: CudaOptions,
    pub host_compiler: Option<HostCompiler>,
    pub sources: Vec<(&'static str, Source)>,
}

/// Merges the CUDA settings of `args` with the environment's and `config`'s.
pub fn cuda_settings(
    args: &FlagsArgs,
    config: &Config,
    env: EnvLookup<'_>,
) -> CliResult<CudaSettings> {
    let cuda = cuda_version(args.cuda.map(|v| (v, "--cuda")), env, config)?
        .unwrap_or_else(|| Sourced::default(DEFAULT_CUDA));
    let flag_fc = match (args.forward_compat, args.no_forward_compat) {
        (true, _) => Some((true, "--forward-compat")),
        (_, true) => Some((false, "--no-forward-compat")),
        _ => None,
    };
    let forward_compat = forward_compat(flag_fc, env, config)?;
    let platform = match layered(
        args.platform.map(|p| (p, "--platform")),
        "CUDAPKGS_PLATFORM",
        env,
        config.cuda.platform,
        config,
    )? {
        Some(platform) => platform,
        None => Sourced::default(this_machine_platform()?),
    };
    let host_compiler = layered(
        args.host_compiler.map(|c| (c, "--host-compiler")),
        "CUDAPKGS_HOST_COMPILER",
        env,
        config_host_compiler(config)?,
        config,
    )?;
    let targets = targets(args.capabilities.as_deref(), &args.gpus, env, config)?;
    let capabilities = match &targets.value {
        Targets::Capabilities(list) => Some(list.clone()),
        Targets::Gpus(names) => Some(
            crate::native::expand(names)
                .map_err(|error| error.context(&targets.source))?
                .iter()
                .map(|name| gpu_capability(name, cuda.value))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| CliError::from(error).context(&targets.source))?,
        ),
        Targets::Default => None,
    };

    Ok(CudaSettings {
        options: CudaOptions {
            cuda: cuda.value,
            capabilities,
            forward_compat: forward_compat.value,
            platform: platform.value,
        },
        host_compiler: host_compiler.as_ref().map(|compiler| compiler.value),
        sources: vec![
            ("cuda", cuda.source),
            ("capabilities", targets.source),
            ("forward compatibility", forward_compat.source),
            ("platform", platform.source),
            (
                "host compiler",
                host_compiler.map_or(Source::Default, |compiler| compiler.source),
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("/etc/cudapkgs.toml")).expect("valid config")
    }

    fn cuda(flag: Option<&str>, env: &[(&str, &str)], config_text: &str) -> Sourced<CudaVersion> {
        let config = config(config_text);
        let env = env_of(env);
        cuda_version(
            flag.map(|v| (v.parse().expect("flag"), "--cuda")),
            &env,
            &config,
        )
        .expect("valid")
        .unwrap_or_else(|| Sourced::default(CudaVersion::new(12, 9)))
    }

    #[test]
    fn flag_beats_env_beats_config_beats_default() {
        let file = "[cuda]\nversion = \"12.6\"\n";
        let all = cuda(Some("13.0"), &[("CUDAPKGS_CUDA", "12.8")], file);
        assert_eq!(
            (all.value.to_string(), all.source),
            ("13.0".into(), Source::Flag("--cuda"))
        );
        let env = cuda(None, &[("CUDAPKGS_CUDA", "12.8")], file);
        assert_eq!(
            (env.value.to_string(), env.source),
            ("12.8".into(), Source::Env("CUDAPKGS_CUDA"))
        );
        let file_only = cuda(None, &[], file);
        assert_eq!(file_only.value.to_string(), "12.6");
        assert_eq!(
            file_only.source,
            Source::Config("/etc/cudapkgs.toml".into())
        );
        let none = cuda(None, &[], "");
        assert_eq!(
            (none.value.to_string(), none.source),
            ("12.9".into(), Source::Default)
        );
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let config = Config::default();
        let env = env_of(&[("CUDAPKGS_CUDA", "twelve")]);
        let err = layered::<CudaVersion>(None, "CUDAPKGS_CUDA", &env, None, &config)
            .expect_err("invalid");
        assert!(
            err.message
                .starts_with("environment variable CUDAPKGS_CUDA: invalid CUDA version `twelve`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn config_errors_name_the_file_and_unknown_keys() {
        let err = Config::parse("[cuda]\nversoin = \"12.9\"\n", Path::new("x/cudapkgs.toml"))
            .expect_err("typo");
        assert!(err.message.contains("x/cudapkgs.toml"), "{}", err.message);
        assert!(err.message.contains("versoin"), "{}", err.message);
        let err = Config::parse("[cuda]\ncapabilities = [\"9.9z\"]\n", Path::new("c.toml"))
            .expect_err("bad cap");
        assert!(
            err.message.contains("invalid capability `9.9z`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn targets_take_the_first_level_that_sets_either() {
        let file = config("[cuda]\ngpus = [\"H100\"]\n");
        let env = env_of(&[("CUDAPKGS_CAPABILITIES", "8.6;9.0")]);
        let from_env = targets(None, &[], &env, &file).expect("valid");
        assert_eq!(from_env.source, Source::Env("CUDAPKGS_CAPABILITIES"));
        assert_eq!(
            from_env.value,
            Targets::Capabilities(parse_capability_list("8.6 9.0").expect("list"))
        );
        let from_flag = targets(None, &["RTX 4090".to_owned()], &env, &file).expect("valid");
        assert_eq!(from_flag.value, Targets::Gpus(vec!["RTX 4090".to_owned()]));
        let from_file = targets(None, &[], &env_of(&[]), &file).expect("valid");
        assert_eq!(from_file.value, Targets::Gpus(vec!["H100".to_owned()]));
        let gpu_env = targets(
            None,
            &[],
            &env_of(&[("CUDAPKGS_GPU", "RTX 4090, H100")]),
            &file,
        )
        .expect("valid");
        assert_eq!(
            gpu_env.value,
            Targets::Gpus(vec!["RTX 4090".to_owned(), "H100".to_owned()])
        );
    }

    #[test]
    fn targets_refuse_both_kinds_at_one_level() {
        let env = env_of(&[("CUDAPKGS_CAPABILITIES", "8.6"), ("CUDAPKGS_GPU", "H100")]);
        assert!(targets(None, &[], &env, &Config::default()).is_err());
        let file = config("[cuda]\ngpus = [\"H100\"]\ncapabilities = [\"8.6\"]\n");
        let err = targets(None, &[], &env_of(&[]), &file).expect_err("both");
        assert!(
            err.message.contains("both `capabilities` and `gpus`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_upkeep_table_sits_beside_cuda_and_is_read_whole() {
        let file = config(
            "[cuda]\nversion = \"12.6\"\n\n[upkeep]\npackages = [\"libcublas\"]\ncuda = [\"12.9\", \"13\"]\n\n[upkeep.cache]\nto = \"file:///srv/cache\"\nprivate = true\n",
        );
        assert_eq!(
            file.cuda.version.map(|v| v.to_string()).as_deref(),
            Some("12.6")
        );
        let upkeep = file.upkeep.expect("the table");
        assert_eq!(upkeep.cuda, ["12.9", "13"]);
        assert!(upkeep.cache.expect("cache").private);
        assert!(config("[cuda]\nversion = \"12.6\"\n").upkeep.is_none());
        let err = Config::parse(
            "[upkeep]\npackages = [\"a\"]\nshards = 2\n",
            Path::new("c.toml"),
        )
        .expect_err("unknown key");
        assert!(err.message.contains("shards"), "{}", err.message);
    }

    #[test]
    fn explicit_config_must_exist() {
        let err = Config::load(Some(Path::new("/nonexistent/cudapkgs.toml")), &env_of(&[]))
            .expect_err("missing");
        assert!(
            err.message.contains("/nonexistent/cudapkgs.toml"),
            "{}",
            err.message
        );
        let err = Config::load(None, &env_of(&[("CUDAPKGS_CONFIG", "/nonexistent/c.toml")]))
            .expect_err("missing");
        assert!(
            err.message
                .starts_with("environment variable CUDAPKGS_CONFIG"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_build_release_is_a_major_a_release_or_a_version() {
        for good in ["13", "12.9", "12.9.1"] {
            assert_eq!(good.parse::<Release>().expect(good).as_str(), good);
        }
        for bad in ["", "banana", "12.x", "12.9.1.2", "300", "12..1"] {
            assert!(bad.parse::<Release>().is_err(), "{bad}");
        }
        let version = |text: &str| text.parse::<Release>().expect("valid").version();
        assert_eq!(version("13"), CudaVersion::new(13, 0));
        assert_eq!(version("12.9.1"), CudaVersion::new(12, 9));
    }

    #[test]
    fn the_build_release_takes_the_first_level_that_sets_it() {
        let file = config("[cuda]\nversion = \"12.6\"\n");
        let env = env_of(&[("CUDAPKGS_CUDA", "12.8.1")]);
        let flag: Release = "13".parse().expect("valid");
        let from = |flag: Option<&Release>, env: EnvLookup<'_>, config: &Config| {
            let release = build_release(flag, env, config).expect("valid");
            (release.value.to_string(), release.source)
        };
        assert_eq!(
            from(Some(&flag), &env, &file),
            ("13".into(), Source::Flag("--cuda"))
        );
        assert_eq!(
            from(None, &env, &file),
            ("12.8.1".into(), Source::Env("CUDAPKGS_CUDA"))
        );
        assert_eq!(
            from(None, &env_of(&[]), &file),
            ("12.6".into(), Source::Config("/etc/cudapkgs.toml".into()))
        );
        assert_eq!(
            from(None, &env_of(&[]), &Config::default()),
            (BUILD_DEFAULT_RELEASE.into(), Source::Default)
        );
        let err =
            build_release(None, &env_of(&[("CUDAPKGS_CUDA", "x")]), &file).expect_err("invalid");
        assert!(
            err.message
                .starts_with("environment variable CUDAPKGS_CUDA"),
            "{}",
            err.message
        );
    }

    #[test]
    fn store_folders_come_from_flags_variables_the_file_then_defaults() {
        let file = config("[store]\ndir = \"/nix/store/\"\nroot = \"r\"\n");
        let none = env_of(&[]);
        let from_file = store_settings(None, None, None, &none, &file).expect("valid");
        assert_eq!(from_file.dir.value, "/nix/store");
        assert_eq!(
            from_file.dir.source,
            Source::Config("/etc/cudapkgs.toml".into())
        );
        let root = from_file.root.expect("a root");
        assert_eq!(root.value, Path::new("/etc/r"), "beside the file");
        assert_eq!(from_file.state.value, Path::new("/etc/r/nix/var/cudapkgs"));
        assert_eq!(from_file.state.source, Source::Default);

        let env = env_of(&[
            ("CUDAPKGS_STORE_DIR", "/opt/store"),
            ("CUDAPKGS_STATE_DIR", "/var/s"),
        ]);
        let from_env =
            store_settings(None, Some(Path::new("/x")), None, &env, &file).expect("valid");
        assert_eq!(from_env.dir.source, Source::Env("CUDAPKGS_STORE_DIR"));
        assert_eq!(from_env.root.expect("root").source, Source::Flag("--root"));
        assert_eq!(from_env.state.value, Path::new("/var/s"));

        let defaults = store_settings(
            None,
            None,
            None,
            &env_of(&[("HOME", "/home/u")]),
            &Config::default(),
        )
        .expect("valid");
        assert_eq!(defaults.dir.value, "/home/u/.local/share/cudapkgs/store");
        assert_eq!(defaults.dir.source, Source::Default);
        assert!(defaults.root.is_none());
        assert!(store_settings(None, None, None, &none, &Config::default()).is_err());
    }

    #[test]
    fn the_index_comes_from_the_flag_the_variable_the_file_then_pip() {
        let file = config("[index]\nurl = \"https://mirror/simple\"\noffline = true\n");
        let none = env_of(&[]);
        let from_file = index_url(None, &none, &file).expect("valid");
        assert_eq!(from_file.value, "https://mirror/simple");
        assert_eq!(
            from_file.source,
            Source::Config("/etc/cudapkgs.toml".into())
        );
        let env = env_of(&[
            ("CUDAPKGS_INDEX_URL", "http://127.0.0.1:1/simple"),
            ("PIP_INDEX_URL", "http://pip/simple"),
        ]);
        assert_eq!(
            index_url(None, &env, &file).expect("valid").value,
            "http://127.0.0.1:1/simple"
        );
        let flag = index_url(Some("http://flag/simple"), &env, &file).expect("valid");
        assert_eq!(flag.source, Source::Flag("--index-url"));
        let pip = index_url(
            None,
            &env_of(&[("PIP_INDEX_URL", "http://pip/simple")]),
            &Config::default(),
        )
        .expect("valid");
        assert_eq!(
            (pip.value.as_str(), &pip.source),
            ("http://pip/simple", &Source::Default)
        );

        assert!(offline(false, &none, &file).expect("valid").value);
        let online = offline(false, &env_of(&[("CUDAPKGS_OFFLINE", "no")]), &file).expect("valid");
        assert!(!online.value);
        assert_eq!(online.source, Source::Env("CUDAPKGS_OFFLINE"));
        let refused = offline(false, &env_of(&[("CUDAPKGS_OFFLINE", "sometimes")]), &file)
            .expect_err("not a switch");
        assert!(
            refused.message.contains("CUDAPKGS_OFFLINE"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn caches_and_keys_come_from_the_flags_the_variables_then_the_file() {
        let file = config(
            "[cache]\nsubstituters = [\"file:///srv/a\", \"https://b\"]\n\
             trusted-public-keys = [\"a-1:AAAA\", \"keys/b.pub\"]\n\
             secret-key-file = \"keys/cache.sk\"\n",
        );
        let none = env_of(&[]);
        let from_file = substituters(&[], &none, &file).expect("valid");
        assert_eq!(from_file.value, ["file:///srv/a", "https://b"]);
        let keys = trusted_public_keys(&[], &none, &file).expect("valid");
        assert_eq!(
            keys.value,
            ["a-1:AAAA", "/etc/keys/b.pub"],
            "files beside the config"
        );
        let secret = secret_key_file(None, &none, &file)
            .expect("valid")
            .expect("set");
        assert_eq!(secret.value, Path::new("/etc/keys/cache.sk"));

        let env = env_of(&[
            ("CUDAPKGS_SUBSTITUTERS", " s3://c  file:///d "),
            ("CUDAPKGS_SECRET_KEY_FILE", "/run/key"),
        ]);
        let from_env = substituters(&[], &env, &file).expect("valid");
        assert_eq!(from_env.value, ["s3://c", "file:///d"]);
        assert_eq!(from_env.source, Source::Env("CUDAPKGS_SUBSTITUTERS"));
        let flags = substituters(&["file:///e".to_owned()], &env, &file).expect("valid");
        assert_eq!(
            (flags.value.len(), &flags.source),
            (1, &Source::Flag("--substituter"))
        );
        assert_eq!(
            secret_key_file(None, &env, &file)
                .expect("valid")
                .expect("set")
                .value,
            Path::new("/run/key")
        );
        assert!(
            substituters(&[], &none, &Config::default())
                .expect("valid")
                .value
                .is_empty()
        );
        assert!(
            secret_key_file(None, &none, &Config::default())
                .expect("valid")
                .is_none()
        );
        let unknown = Config::parse("[cache]\nsubstituter = []\n", Path::new("/c.toml"))
            .expect_err("an unknown key");
        assert!(
            unknown.message.contains("substituter"),
            "{}",
            unknown.message
        );
    }
}
