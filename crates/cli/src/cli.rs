//! The command line: global options and one subcommand per capability.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cudapkgs_caps::{CudaVersion, HostCompiler, HostPlatform};

#[derive(Debug, Parser)]
#[command(
    name = "cudapkgs",
    version,
    about = "Small, correct and fast CUDA packages",
    long_about = "Small, correct and fast CUDA packages.\n\n\
        Settings come from command-line flags, then CUDAPKGS_* environment variables, \
        then cudapkgs.toml (./cudapkgs.toml or ~/.config/cudapkgs/cudapkgs.toml): [cuda] \
        reaches flags, targets, build, prune and inspect, [store] every store command, \
        [index] build and redist wheel, [cache] build, push, serve and copy; \
        -v says where each value came from.\n\n\
        Exit codes: 0 success, 1 a check found problems, 2 bad usage or unreadable input.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print one JSON document on stdout instead of text for people
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing on stderr but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Explain more on stderr (where each setting came from, …)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Sizes in text as exact byte counts, not `1.5 MiB` (JSON always has bytes)
    #[arg(long, global = true)]
    pub bytes: bool,
    /// Read settings from this file instead of cudapkgs.toml [env: CUDAPKGS_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Whether raw arguments ask for JSON (`--json`, `--format json`): what a usage error
/// answers in when the parse itself failed.
pub fn asks_for_json(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let mut previous_was_format = false;
    for arg in args {
        if arg == "--" {
            break;
        }
        if arg == "--json" || arg == "--format=json" || (previous_was_format && arg == "json") {
            return true;
        }
        previous_was_format = arg == "--format";
    }
    false
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Standard CUDA options (CUDA version, capabilities, forward compatibility),
    /// validated against the GPU table and written for nvcc, CMake, PyTorch,
    /// TensorFlow, Nix or a shell
    #[command(after_long_help = FLAGS_EXAMPLES)]
    Flags(FlagsArgs),
    /// The GPU table: capabilities, architectures, supported CUDA releases, defaults
    /// and product names
    #[command(after_long_help = GPUS_EXAMPLES)]
    Gpus(GpusArgs),
    /// The device code inside ELF files, archives, wheels and whole trees: SASS and
    /// PTX per architecture, sizes, compression; with --gpu, a verdict per kernel
    #[command(after_long_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// The dynamic-linking view of ELF files: type, interpreter, SONAME, needed
    /// libraries, RPATH and RUNPATH; with --resolve, where each needed library is found
    #[command(after_long_help = ELF_EXAMPLES)]
    Elf(ElfArgs),
    /// Rewrite runpaths, needed libraries and sonames of ELF files, one by one or
    /// automatically over a whole tree
    #[command(after_long_help = PATCH_EXAMPLES)]
    Patch(PatchArgs),
    /// Shrink prebuilt CUDA binaries to the GPUs you have: drop the device code no
    /// requested capability can use
    #[command(after_long_help = PRUNE_EXAMPLES)]
    Prune(PruneArgs),
    /// Build CUDA packages into the store: fetch, split into outputs, resolve the
    /// libraries they need from each other, set runpaths, check GPU targets, add
    #[command(after_long_help = BUILD_EXAMPLES)]
    Build(BuildArgs),
    /// NVIDIA's redistributables: list a release's packages, fetch their archives
    #[command(subcommand)]
    Redist(RedistCommand),
    /// Unpack an archive (or copy a folder), apply the fix-ups, and split it into outputs
    /// (bin, dev, include, lib, static, stubs, doc, samples, python, out)
    Split(SplitArgs),
    /// Per package and system of a release: outputs, GPU architectures, provided and
    /// needed libraries (the cuda-redist-find-features shape, plus more)
    Features(FeaturesArgs),
    /// NAR, Nix's serialisation of a file tree: write it or hash it
    #[command(subcommand)]
    Nar(NarCommand),
    /// The store: Nix-compatible store paths
    #[command(subcommand)]
    Store(StoreCommand),
    /// What the store knows of each STORE_PATH (the same as `cudapkgs store info`)
    PathInfo(PathInfoArgs),
    /// Every path STORE_PATH… needs at run time (the references, followed), biggest first,
    /// with the total size
    Closure {
        /// Store paths or names of roots; or folders and files written with a `/`
        /// (`./venv`): their run-time closure through the ELF graph, by distribution
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
        /// Also write a treemap of the closure to FILE: one self-contained HTML page of
        /// store paths (or distributions), their files and each file's device code per
        /// GPU architecture
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        #[command(flatten)]
        tree: FileTreeArgs,
        #[command(flatten)]
        location: StoreLocation,
    },
    /// What changed from the closure of BEFORE to that of AFTER: packages added, removed,
    /// changed in version, and the size deltas
    Diff {
        /// The store path (or root name) of the old closure
        #[arg(value_name = "BEFORE")]
        before: String,
        /// The store path (or root name) of the new closure
        #[arg(value_name = "AFTER")]
        after: String,
        #[command(flatten)]
        location: StoreLocation,
    },
    /// Remove every store path no garbage-collector root needs (see `cudapkgs store root`),
    /// and whatever else in the store folder is not registered
    Gc {
        /// Only say what would be removed
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        location: StoreLocation,
    },
    /// Binary caches in Nix's protocol: signing keys, collecting a folder cache's garbage
    #[command(subcommand)]
    Cache(crate::commands::cache::CacheCommand),
    /// Push the closures of store paths to a binary cache (a folder, an HTTP cache, S3):
    /// compressed NARs and signed narinfos
    Push(crate::commands::cache::PushArgs),
    /// Serve a binary cache (a folder, S3) or a store over HTTP in Nix's protocol
    Serve(crate::commands::cache::ServeArgs),
    /// Copy store paths with their closures from a binary cache into the store, checking
    /// signatures, hashes and sizes
    Copy(crate::commands::cache::CopyArgs),
    /// Hard-coded GPU architecture lists in source trees and sdists: find them, rewrite
    /// them to the requested targets; PyTorch's extension allow-list
    #[command(subcommand)]
    Targets(crate::commands::targets::TargetsCommand),
    /// Why PATH needs DEP: the shortest chain of references, and for every hop the file and
    /// byte offset where the reference sits (exit 1 if DEP is not in PATH's closure)
    Why {
        /// A store path or root name; or a file or folder written with a `/` (`./venv`),
        /// searched through its ELF graph
        #[arg(value_name = "PATH")]
        path: String,
        /// The store path or root name that PATH needs; for a file or folder, the library
        /// file
        #[arg(value_name = "DEP")]
        dependency: String,
        #[command(flatten)]
        tree: FileTreeArgs,
        #[command(flatten)]
        location: StoreLocation,
    },
    /// Check the runtime closures of STORE_PATH… (or folders) against a policy: no denied
    /// package, no whole CUDA toolkit, static library, header or stub library, no runpath
    /// into a stubs folder, no library found nowhere, every driver user finds the driver,
    /// and with --capabilities/--gpu device code for exactly those GPUs; each violation
    /// with the chain that pulls it in (exit 1 if any)
    Check(crate::commands::check::CheckArgs),
    /// On the local GPUs: load every container of PATH… the driver would load and look
    /// up its kernels (every difference from `inspect --gpu native`'s verdict is
    /// reported), and run the smoke test of each CUDA library found (cuBLAS's SGEMM,
    /// cuDNN's convolution, …) in a process with an empty environment, proving where
    /// each library came from (exit 1 on any failure)
    #[command(after_long_help = GPU_CHECK_EXAMPLES)]
    GpuCheck(crate::commands::gpu_check::GpuCheckArgs),
    /// The child processes of gpu-check
    #[command(subcommand, hide = true, name = "gpu-child")]
    GpuChild(crate::commands::gpu_check::GpuChildCommand),
    /// Scheduled builds of the package set in cudapkgs.toml's [upkeep] table: the jobs,
    /// runs with a results database, regressions, one issue per distinct failure, CI
    /// matrices and a dashboard
    #[command(subcommand)]
    Upkeep(crate::commands::upkeep::UpkeepCommand),
    /// The completion script for a shell, on stdout: e.g. `cudapkgs completions bash >
    /// ~/.local/share/bash-completion/completions/cudapkgs`
    Completions {
        /// The shell the script is for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual, on stdout: a roff page of every command (`cudapkgs man > cudapkgs.1`),
    /// or the Markdown command reference of docs/commands.md
    Man {
        /// roff for man(1), or Markdown
        #[arg(long, value_enum, default_value_t = ManualFormat::Roff)]
        format: ManualFormat,
    },
    /// The JSON Schema of a document `--json` prints (as in docs/schema/), or the list of
    /// documents that have one
    Schema {
        /// A document: path-info, closure, store-verify, error
        #[arg(value_name = "DOCUMENT")]
        document: Option<String>,
    },
}

/// The forms of the manual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManualFormat {
    /// A man page
    Roff,
    /// The command reference, a section per command
    Markdown,
}

const GPU_CHECK_EXAMPLES: &str = "\
Examples:
  cudapkgs gpu-check libcublas-lib cudnn-lib       store paths built by `cudapkgs build`
  cudapkgs gpu-check ./.venv/lib/python3.12/site-packages
  cudapkgs gpu-check --smoke cublas --smoke cudnn ./.venv
  cudapkgs gpu-check --nix-hook                    what a sandboxed build needs exposed";

#[derive(Debug, Subcommand)]
pub enum NarCommand {
    /// Write the NAR of PATH to standard output (byte-identical to `nix-store --dump`)
    Dump {
        /// The file, folder or symbolic link to serialise
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
    /// Read a NAR from standard input into TARGET (which must not exist); a malformed
    /// archive leaves nothing behind
    Restore {
        /// Where the tree is created (a path that does not exist yet)
        #[arg(value_name = "TARGET")]
        target: PathBuf,
    },
    /// The NAR hash (`sha256:<base-32>`, as Nix writes it) and size of each PATH
    Hash {
        /// The files, folders or symbolic links to hash
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// The store path `nix-store --add PATH` would create, without creating it
    Path {
        /// The file or folder whose store path is computed
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The name part [default: PATH's file name]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The store folder (part of the hash) [default: $CUDAPKGS_STORE_DIR, else
        /// cudapkgs.toml's [store] dir, else $XDG_DATA_HOME/cudapkgs/store, as for `store
        /// add`; /nix/store for the path Nix gives]
        #[arg(long, value_name = "DIR")]
        store_dir: Option<String>,
    },
    /// Add PATH to a store and register it; print its store path (the one `nix-store
    /// --add` gives, unless --scan-references)
    Add {
        /// The file or folder to copy into the store
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The name part [default: PATH's file name]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Record every valid store path the tree mentions as a reference (part of the hash)
        #[arg(long)]
        scan_references: bool,
        /// A declared input: the paths of its closure that the tree mentions become
        /// references (instead of searching for every valid path); repeatable
        #[arg(long, value_name = "STORE_PATH", conflicts_with = "scan_references")]
        input: Vec<String>,
        /// Also make the new path this garbage-collector root (before any collection
        /// can remove it)
        #[arg(long, value_name = "NAME")]
        gc_root: Option<String>,
        #[command(flatten)]
        location: StoreLocation,
    },
    /// Check every valid path against its registered NAR hash, and the store folder against
    /// the database (exit 1 on problems)
    Verify {
        /// Remove entries of the store folder that are not registered
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        location: StoreLocation,
    },
    /// What the store knows of each STORE_PATH: NAR hash and size, references
    Info(PathInfoArgs),
    /// Garbage-collector roots: named paths whose closures `cudapkgs gc` keeps
    #[command(subcommand)]
    Root(RootCommand),
}

/// The paths `path-info` (and `store info`) describes, and what it adds.
#[derive(Debug, Args)]
pub struct PathInfoArgs {
    /// Store paths, or names of garbage-collector roots
    #[arg(required = true, value_name = "STORE_PATH")]
    pub paths: Vec<String>,
    /// Also the NAR size of each path's closure, as `nix path-info -S`
    #[arg(short = 'S', long)]
    pub closure_size: bool,
    /// Every path of the closures, not only those named, as `nix path-info -r`
    #[arg(short = 'r', long)]
    pub recursive: bool,
    #[command(flatten)]
    pub location: StoreLocation,
}

#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Make NAME a root for STORE_PATH (replacing what NAME held)
    Add {
        /// The root's name
        #[arg(value_name = "NAME")]
        name: String,
        /// The store path the root keeps, with its closure
        #[arg(value_name = "STORE_PATH")]
        path: String,
        #[command(flatten)]
        location: StoreLocation,
    },
    /// Remove the root NAME (the paths stay until the next `cudapkgs gc`)
    Remove {
        /// The root's name
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        location: StoreLocation,
    },
    /// Every root and the path it holds
    List {
        #[command(flatten)]
        location: StoreLocation,
    },
}

/// Where a release's manifest and archives come from.
#[derive(Debug, Args)]
pub struct RedistSource {
    /// The product: cuda, cudnn, cutensor, cusparselt, nccl, cudss, tensorrt, …
    #[arg(long, value_name = "NAME", default_value = "cuda")]
    pub redist: String,
    /// The product's release (`12.9.1` for cuda, `9.10.2` for cudnn; the manifest's
    /// version)
    #[arg(long, value_name = "VERSION")]
    pub release: String,
    /// A mirror in NVIDIA's layout, `http(s)://` or `file://` [default:
    /// $CUDAPKGS_REDIST_URL, else https://developer.download.nvidia.com/compute]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The download cache [default: $CUDAPKGS_CACHE, else $XDG_CACHE_HOME/cudapkgs]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Use no network: manifests and index pages from the copies the last online run
    /// kept, archives from the download cache (anything not there is an error) [env:
    /// CUDAPKGS_OFFLINE; cudapkgs.toml's [index] offline]
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum RedistCommand {
    /// The packages of a release: versions and archive sizes for a system
    List {
        #[command(flatten)]
        source: RedistSource,
        /// linux-x86_64, linux-sbsa, linux-aarch64, windows-x86_64, source, … [default: this machine's]
        #[arg(long, value_name = "SYSTEM")]
        system: Option<String>,
    },
    /// Download and verify archives into the cache (once); print their paths
    Fetch {
        #[command(flatten)]
        source: RedistSource,
        /// NVIDIA's name of the system whose archives are meant: linux-x86_64, linux-sbsa,
        /// linux-aarch64, windows-x86_64, … [default: this machine's]
        #[arg(long, value_name = "SYSTEM")]
        system: Option<String>,
        /// For packages built per CUDA major version: the CUDA release whose major picks
        /// the archives (`12`, `12.9`) [default: $CUDAPKGS_CUDA, else cudapkgs.toml's
        /// [cuda] version, else the newest]
        #[arg(long, value_name = "X.Y")]
        cuda: Option<crate::settings::Release>,
        /// Downloads at once
        #[arg(long, value_name = "N", default_value_t = 4)]
        jobs: usize,
        /// Packages (manifest keys, like cuda_cudart); all of the release's when none
        #[arg(value_name = "PACKAGE")]
        packages: Vec<String>,
    },
    /// The same components from PyPI: resolve each package to NVIDIA's wheel through a
    /// simple index, download and verify it; print the wheels' paths
    Wheel {
        /// A redist package (cuda_cudart, libcublas, cudnn, …) or a wheel project, with
        /// `==VERSION` for one version [default: the newest]
        #[arg(required = true, value_name = "PACKAGE[==VERSION]")]
        packages: Vec<String>,
        /// The CUDA release whose major the wheels are for (`12` → nvidia-cuda-runtime-cu12)
        /// [default: $CUDAPKGS_CUDA, else cudapkgs.toml's [cuda] version, else 13]
        #[arg(long, value_name = "X.Y")]
        cuda: Option<crate::settings::Release>,
        /// The simple index [default: $CUDAPKGS_INDEX_URL, else cudapkgs.toml's [index] url,
        /// else $PIP_INDEX_URL, pip's configuration, https://pypi.org/simple]
        #[arg(long, value_name = "URL")]
        index_url: Option<String>,
        /// NVIDIA's name of the system whose archives are meant: linux-x86_64, linux-sbsa,
        /// linux-aarch64, windows-x86_64, … [default: this machine's]
        #[arg(long, value_name = "SYSTEM")]
        system: Option<String>,
        /// The download cache [default: $CUDAPKGS_CACHE, else $XDG_CACHE_HOME/cudapkgs]
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// Downloads at once
        #[arg(long, value_name = "N", default_value_t = 4)]
        jobs: usize,
        /// Pre-releases may be chosen (PEP 440: `rc`, `.dev`, …)
        #[arg(long)]
        pre: bool,
        /// Use no network: manifests and index pages from the copies the last online run
        /// kept, archives from the download cache (anything not there is an error) [env:
        /// CUDAPKGS_OFFLINE; cudapkgs.toml's [index] offline]
        #[arg(long)]
        offline: bool,
    },
}

/// Where `cudapkgs build` takes packages from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuildSource {
    /// NVIDIA's redistributable archives (a manifest of release --cuda X.Y.Z)
    Nvidia,
    /// NVIDIA's wheels on PyPI (or the index pip uses)
    Pypi,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools, reason = "each is a command-line flag")]
pub struct BuildArgs {
    /// Redist packages (cuda_cudart, libcublas, cuda_nvrtc, cudnn, …), with `==VERSION`
    /// (or other PEP 440 specifiers) to pin a version, or `PACKAGE=FILE` for an archive
    /// or wheel already here; what they require is built too
    #[arg(value_name = "PACKAGE", required_unless_present = "all")]
    pub packages: Vec<String>,
    /// Every package of the release (NVIDIA source)
    #[arg(long, conflicts_with = "packages")]
    pub all: bool,
    /// Where the packages come from: PyPI's wheels, or NVIDIA's manifests and archives
    #[arg(long, value_enum, default_value_t = BuildSource::Pypi)]
    pub source: BuildSource,
    /// The CUDA release: `12.9.1`, or `12.6` or `13` for the newest such release (NVIDIA's
    /// manifests, or PyPI's cuda-toolkit pins); its major picks the wheels (`12` →
    /// nvidia-cuda-runtime-cu12) [default: $CUDAPKGS_CUDA, else cudapkgs.toml's [cuda]
    /// version, else 13]
    #[arg(long, value_name = "X.Y.Z")]
    pub cuda: Option<crate::settings::Release>,
    /// Pre-releases may be chosen (PEP 440: `rc`, `.dev`, …); else only when named
    #[arg(long)]
    pub pre: bool,
    /// Build only the packages named, not what they require
    #[arg(long)]
    pub no_deps: bool,
    /// NVIDIA's manifests and archives [default: $CUDAPKGS_REDIST_URL, else NVIDIA's server]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The simple index [default: $CUDAPKGS_INDEX_URL, else cudapkgs.toml's [index] url, else
    /// $PIP_INDEX_URL, pip's configuration, PyPI]
    #[arg(long, value_name = "URL")]
    pub index_url: Option<String>,
    /// The download cache [default: $CUDAPKGS_CACHE, else $XDG_CACHE_HOME/cudapkgs]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// NVIDIA's name of the system whose archives are meant: linux-x86_64, linux-sbsa,
    /// linux-aarch64, windows-x86_64, … [default: this machine's]
    #[arg(long, value_name = "SYSTEM")]
    pub system: Option<String>,
    /// Capabilities whose kernels are checked, like 8.6,9.0 [env: CUDAPKGS_CAPABILITIES]
    #[arg(long, value_name = "LIST", conflicts_with = "gpus")]
    pub capabilities: Option<String>,
    /// A GPU whose kernels are checked, by name or capability, or `native` (this
    /// machine's GPUs), resolved with the release built; repeatable [env: CUDAPKGS_GPU;
    /// default: cudapkgs.toml's [cuda] gpus or capabilities]
    #[arg(long = "gpu", value_name = "NAME")]
    pub gpus: Vec<String>,
    /// Fail when a kernel has no image for a requested GPU (default: warn)
    #[arg(long)]
    pub strict_targets: bool,
    /// Prune the outputs' device code to the requested GPUs (--gpu or --capabilities):
    /// pruned outputs are store paths of their own, named `…-lib-sm90`
    #[arg(long)]
    pub prune: bool,
    /// The driver's library folder, put in the runpath of files that use the driver
    /// (`host`: where this machine's libcuda.so.1 is)
    #[arg(
        long,
        value_name = "DIR|host",
        default_value = cudapkgs_elf::auto::DEFAULT_DRIVER_DIR
    )]
    pub driver_dir: String,
    /// Show what would be fetched and built, and do nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Packages downloaded and prepared at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Do not make the outputs garbage-collector roots (`<package>-<output>`)
    #[arg(long)]
    pub no_gc_roots: bool,
    /// Build again even when the store records a build of the same inputs
    #[arg(long)]
    pub rebuild: bool,
    /// Use no network: index pages and manifests from the copies the last online run
    /// kept, archives from the download cache (anything not there is an error) [env:
    /// CUDAPKGS_OFFLINE; cudapkgs.toml's [index] offline]
    #[arg(long)]
    pub offline: bool,
    /// A binary cache to take the set's outputs from when it holds a signed record of a
    /// build of the same inputs (file://, http(s)://, s3://); repeatable
    /// [env: CUDAPKGS_SUBSTITUTERS, space-separated; cudapkgs.toml's [cache] substituters]
    #[arg(long = "substituter", value_name = "URL")]
    pub substituters: Vec<String>,
    /// A key whose signatures records and narinfos of the substituters must carry
    /// (name:base64, or a file holding it); repeatable [env: CUDAPKGS_TRUSTED_PUBLIC_KEYS;
    /// cudapkgs.toml's [cache] trusted-public-keys]
    #[arg(long = "trusted-public-key", value_name = "KEY")]
    pub trusted_public_keys: Vec<String>,
    #[command(flatten)]
    pub location: StoreLocation,
}

const BUILD_EXAMPLES: &str = "\
Examples:
  cudapkgs build cuda_cudart libcublas cuda_nvrtc
  cudapkgs build --source nvidia --cuda 12.9.1 cuda_cudart libcublas --gpu H100
  cudapkgs build --store-dir /nix/store --root /tmp/r cudnn libcublas --dry-run

Each package is fetched (cached, verified), unpacked, fixed up and split into outputs;
the libraries its files need are found in the lib outputs of the other packages named
(a library no package provides fails the build, unless the driver or the system has
it); runpaths get $ORIGIN, the dependencies' lib folders and, for driver users, the
driver folder; every output is added with its references (lib, static, include, stubs,
bin, dev, doc, samples, python), then out as links to all of them. The last line per
package is its out path; --json gives every output.";

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// A tar.xz, tar.gz or zip archive, or an unpacked package folder
    #[arg(value_name = "ARCHIVE|DIR")]
    pub source: PathBuf,
    /// Where the outputs go, one folder each (must not exist)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Accept `/usr/` in pkg-config and CMake files
    #[arg(long)]
    pub allow_usr: bool,
}

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub source: RedistSource,
    /// Only this system [default: every Linux system of the manifest]
    #[arg(long, value_name = "SYSTEM")]
    pub system: Option<String>,
    /// Only these packages
    #[arg(long = "package", value_name = "PACKAGE")]
    pub packages: Vec<String>,
    /// Archives processed at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
}

/// Where a store is: a Nix store by its URI, or the folders of a store.
#[derive(Debug, Clone, Args)]
pub struct StoreLocation {
    /// A Nix store, read only, in Nix's syntax: `nix` (the system's), `local?root=DIR`
    #[arg(long, value_name = "URI", conflicts_with_all = ["store_dir", "root", "state_dir"])]
    pub store: Option<String>,
    #[command(flatten)]
    pub folders: StoreFolders,
}

/// How the run-time closure of folders and files is searched.
#[derive(Debug, Clone, Args)]
pub struct FileTreeArgs {
    /// The files live in the file system whose root is DIR (a container's, unpacked):
    /// its own etc/ld.so.conf and library folders are searched, absolute runpaths and
    /// links are taken inside it, and this machine's folders never are. A single folder
    /// given that holds etc/ and usr/lib/ is taken as a root by itself; `--root-fs /`
    /// searches this machine's folders instead
    #[arg(long, value_name = "DIR")]
    pub root_fs: Option<PathBuf>,
}

/// The folders of a store.
#[derive(Debug, Clone, Args)]
pub struct StoreFolders {
    /// The store folder, part of every path's hash [default: $CUDAPKGS_STORE_DIR, else
    /// $XDG_DATA_HOME/cudapkgs/store; /nix/store for paths Nix can use]
    #[arg(long, value_name = "DIR")]
    pub store_dir: Option<String>,
    /// A folder the store lives under on this machine, like Nix's `local?root=`
    /// [default: $CUDAPKGS_STORE_ROOT]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The folder of the store's database [default: $CUDAPKGS_STATE_DIR, else <store
    /// dir>/../var/cudapkgs, under --root]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

const PRUNE_EXAMPLES: &str = "\
Examples:
  cudapkgs prune --gpu H100 --dry-run .venv/lib/python3.12/site-packages
  cudapkgs prune --capabilities 8.6,9.0 libtorch_cuda.so
  cudapkgs prune --gpu \"RTX 4090\" --keep-ptx all --compressed-size lib/

For every kernel and requested capability, the image the driver would choose is kept
(PTX only where that is the choice, unless --keep-ptx all); relocatable SASS is kept for
the requested architectures, LTO-IR is left alone. Nothing is written if a kernel would
lose its only image for a requested capability (exit 1). Each container is rewritten in
place (kept entries first, size reduced, tail zeroed), so every pointer to it stays
valid; each file is replaced atomically and the zeroed ranges become holes where the
file system supports them. A file without write permission (a store path's) is refused,
even for root: prune a copy with --out. Pruning twice to the same capabilities
changes nothing.";

const PATCH_EXAMPLES: &str = "\
Examples:
  cudapkgs patch --set-runpath '$ORIGIN:/run/opengl-driver/lib' lib/libcudnn.so.9
  cudapkgs patch --add-runpath /opt/cuda/lib64 --prepend bin/app
  cudapkgs patch --shrink-runpath lib/*.so
  cudapkgs patch --replace-needed libcudart.so.12 libcudart.so.13 libk.so
  cudapkgs patch --auto pkg/ --lib-root /nix/store/…-cuda_cudart-12.9/lib --dry-run
  cudapkgs patch --auto .venv/lib/python3.12/site-packages --driver-dir host

Each file is rewritten atomically (a copy beside it, flushed, renamed over it) with its
permissions kept; symbolic links are followed. A file without write permission (a store
path's) is refused, even for root. A file's DT_RPATH stays DT_RPATH and its DT_RUNPATH
stays DT_RUNPATH (a file with neither gets DT_RUNPATH) unless --force-rpath. Rewriting
the same way twice changes nothing, and repeated rewrites do not grow the file beyond
the strings they add.
--auto gives every ELF file with a dynamic section the runpath: $ORIGIN when a sibling
provides a needed library, then the folders (in the tree or under --lib-root) providing
the others, then the entries it already had that still find one, then the driver
folder if it loads the NVIDIA driver (needs it, or dlopens libcuda.so.1). Stub folders
never appear. Libraries found nowhere (nor in the system folders, unless --no-system)
stop the run before anything is written (exit 1), unless named with --allow-unresolved.";

const ELF_EXAMPLES: &str = "\
Examples:
  cudapkgs elf libcublas.so.12                       soname, needed libraries, runpath
  cudapkgs elf --resolve lib/libcudnn.so.9           where each needed library is found
  cudapkgs elf --resolve --no-system --ld-library-path /opt/cuda/lib64 pkg/
  cudapkgs elf --json .venv/lib/python3.12/site-packages/nvidia

Resolution follows glibc's loader: DT_RPATH (only without DT_RUNPATH), LD_LIBRARY_PATH,
DT_RUNPATH, then the system folders (/etc/ld.so.conf and the defaults). $ORIGIN, $LIB
and $PLATFORM are expanded. NVIDIA driver libraries (libcuda.so.1, libnvidia-*.so) are
marked: they come from the host driver. A driver library found in a stub folder is a
problem: programs would load NVIDIA's stub instead of the driver.
Exit 1 when a needed library (other than a driver library) is not found or a driver
library resolves to a stub.";

const INSPECT_EXAMPLES: &str = "\
Examples:
  cudapkgs inspect libcublasLt.so.12                 every entry of one library
  cudapkgs inspect .venv/lib/python3.12/site-packages  a tree: bytes per architecture, heaviest files
  cudapkgs inspect --gpu H100 --driver-cuda 12.8 libtorch_cuda.so
                                                     exit 1 if a kernel has no image the H100 can use
  cudapkgs inspect --out out/ libk.so                write cubins and PTX, decompressed
  cudapkgs inspect --json torch-2.11.0-cp312-manylinux_2_28_x86_64.whl

Reads ELF executables, shared objects, .o files, ar archives (each member), .fatbin
files, cubins, and wheels or zip files; folders are searched recursively. Files without
device code are skipped quietly in folders and reported when named.";

const FLAGS_EXAMPLES: &str = "\
Examples:
  cudapkgs flags                                   default set for CUDA 12.9, all formats
  cudapkgs flags --cuda 13.0 --gpu H100 --gpu \"RTX 4090\" --format nvcc
  cudapkgs flags --capabilities 7.5,8.6 --format cmake
  cudapkgs flags --capabilities \"8.0;9.0a\" --no-forward-compat --format torch
  cudapkgs flags --platform aarch64-jetson --cuda 12.6 --format nix
  eval \"$(cudapkgs flags --gpu L40S --format env)\"   export for nvcc, CMake, PyTorch, TensorFlow
  cudapkgs flags --host-compiler gcc-14 --cuda 12.6   exit 1: nvcc 12.6 refuses gcc 14

Environment: CUDAPKGS_CUDA, CUDAPKGS_CAPABILITIES, CUDAPKGS_GPU (comma-separated),
CUDAPKGS_FORWARD_COMPAT, CUDAPKGS_PLATFORM, CUDAPKGS_HOST_COMPILER.
cudapkgs.toml: a [cuda] table with version, capabilities, gpus, forward-compat,
platform, host-compiler.";

const GPUS_EXAMPLES: &str = "\
Examples:
  cudapkgs gpus                  every capability cudapkgs knows
  cudapkgs gpus --cuda 12.9      only what CUDA 12.9 supports; * marks its default set
  cudapkgs gpus --json";

#[derive(Debug, Args)]
pub struct FlagsArgs {
    /// CUDA release, like 12.9 (or 12 for its newest release) [env: CUDAPKGS_CUDA]
    /// [default: 12.9]
    #[arg(long, value_name = "X.Y", value_parser = CudaVersion::parse_release)]
    pub cuda: Option<CudaVersion>,
    /// Capabilities, like 7.5,8.6,9.0a (also sm_90a, compute_90, 90a; separated by
    /// commas, semicolons or spaces) [env: CUDAPKGS_CAPABILITIES] [default: the
    /// default set of the CUDA release]
    #[arg(long, value_name = "LIST", conflicts_with = "gpus")]
    pub capabilities: Option<String>,
    /// A GPU by product name (H100, "RTX 4090", "Jetson Orin") or capability, or
    /// `native` (this machine's GPUs); repeatable [env: CUDAPKGS_GPU]
    #[arg(long = "gpu", value_name = "NAME")]
    pub gpus: Vec<String>,
    /// Embed PTX for the highest capability so newer GPUs can run it (the default)
    /// [env: CUDAPKGS_FORWARD_COMPAT]
    #[arg(long, overrides_with = "no_forward_compat")]
    pub forward_compat: bool,
    /// Embed SASS only
    #[arg(long, overrides_with = "forward_compat")]
    pub no_forward_compat: bool,
    /// Host platform: x86_64, aarch64-server or aarch64-jetson [env:
    /// CUDAPKGS_PLATFORM] [default: this machine's]
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<HostPlatform>,
    /// Check that nvcc accepts this host compiler, like gcc-14 or clang-19 (exit 1 if
    /// not) [env: CUDAPKGS_HOST_COMPILER]
    #[arg(long, value_name = "COMPILER")]
    pub host_compiler: Option<HostCompiler>,
    /// What to print
    #[arg(long, value_enum, default_value_t = FlagsFormat::Human)]
    pub format: FlagsFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlagsFormat {
    /// A summary with every rendering
    Human,
    /// nvcc -gencode flags, space-separated
    Nvcc,
    /// CMAKE_CUDA_ARCHITECTURES value
    Cmake,
    /// TORCH_CUDA_ARCH_LIST value
    Torch,
    /// TF_CUDA_COMPUTE_CAPABILITIES value
    Tensorflow,
    /// A Nixpkgs config attribute set
    Nix,
    /// Shell export lines for all of them
    Env,
    /// Everything as JSON
    Json,
}

#[derive(Debug, Args)]
pub struct GpusArgs {
    /// Show only what this CUDA release supports (12.9, or 12 for its newest release),
    /// and mark its default set
    #[arg(long, value_name = "X.Y", value_parser = CudaVersion::parse_release)]
    pub cuda: Option<CudaVersion>,
    /// What to print
    #[arg(long, value_enum, default_value_t = TextOrJson::Human)]
    pub format: TextOrJson,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files or folders to inspect
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Judge every kernel for this GPU: a product name (H100), a capability (9.0), or
    /// `native` (this machine's GPUs, with their driver's CUDA version as
    /// --driver-cuda); repeatable [env: CUDAPKGS_GPU; default: $CUDAPKGS_CAPABILITIES,
    /// else cudapkgs.toml's [cuda] gpus or capabilities]
    #[arg(long = "gpu", value_name = "GPU", group = "judged")]
    pub gpus: Vec<String>,
    /// Judge every kernel for each of these capabilities, like 8.6,9.0 [env:
    /// CUDAPKGS_CAPABILITIES]
    #[arg(long, value_name = "LIST", conflicts_with = "gpus", group = "judged")]
    pub capabilities: Option<String>,
    /// With --gpu or --capabilities: the CUDA version the driver supports (nvidia-smi's
    /// "CUDA Version"); without it, any PTX ISA is assumed to be understood
    #[arg(long, value_name = "X.Y", requires = "judged")]
    pub driver_cuda: Option<CudaVersion>,
    /// Write every entry, decompressed, into this folder (like cuobjdump -xelf/-xptx)
    #[arg(long, value_name = "DIR", alias = "extract")]
    pub out: Option<PathBuf>,
    /// List every entry, even when many files have device code
    #[arg(long)]
    pub entries: bool,
    /// How many of the heaviest files the summary shows
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Exit 1 unless every file with device code holds SASS for exactly these
    /// capabilities (like 9.0 or 8.6,9.0a) and PTX only for forward compatibility (the
    /// highest capability's baseline)
    #[arg(long, value_name = "LIST")]
    pub expect_capabilities: Option<String>,
    /// With --expect-capabilities: expect SASS only, no PTX [default: $CUDAPKGS_FORWARD_COMPAT,
    /// else cudapkgs.toml's [cuda] forward-compat, else PTX expected]
    #[arg(long, requires = "expect_capabilities")]
    pub no_forward_compat: bool,
    /// What to print
    #[arg(long, value_enum, default_value_t = TextOrJson::Human)]
    pub format: TextOrJson,
}

#[derive(Debug, Args)]
pub struct ElfArgs {
    /// ELF files or folders
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Say where each needed library is found
    #[arg(long)]
    pub resolve: bool,
    /// With --resolve: search this LD_LIBRARY_PATH (colon-separated) [default: none]
    #[arg(long, value_name = "PATHS", requires = "resolve")]
    pub ld_library_path: Option<String>,
    /// With --resolve: do not search this machine's system folders (the view a
    /// package has in a sandbox)
    #[arg(long, requires = "resolve")]
    pub no_system: bool,
    /// What to print
    #[arg(long, value_enum, default_value_t = TextOrJson::Human)]
    pub format: TextOrJson,
}

#[derive(Debug, Args)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one switch per command-line flag"
)]
pub struct PatchArgs {
    /// ELF files to rewrite; with --auto, the trees
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Replace the search path
    #[arg(long, value_name = "RUNPATH", group = "search")]
    pub set_runpath: Option<String>,
    /// Add folders to the search path (after the current ones, or before with --prepend)
    #[arg(long, value_name = "RUNPATH", group = "search")]
    pub add_runpath: Option<String>,
    /// With --add-runpath: put the new folders first
    #[arg(long, requires = "add_runpath")]
    pub prepend: bool,
    /// Remove DT_RUNPATH and DT_RPATH
    #[arg(long, group = "search")]
    pub remove_runpath: bool,
    /// Keep only the search path entries that provide a needed library
    #[arg(long, group = "search")]
    pub shrink_runpath: bool,
    /// Store the search path as DT_RPATH (searched before LD_LIBRARY_PATH, and for the
    /// libraries' own dependencies); without it, edits keep the file's kind (DT_RUNPATH
    /// for a file with neither)
    #[arg(long)]
    pub force_rpath: bool,
    /// Rename a needed library (and its version dependencies); repeatable
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    pub replace_needed: Vec<String>,
    /// Set DT_SONAME
    #[arg(long, value_name = "SONAME")]
    pub set_soname: Option<String>,
    /// Compute every runpath of a tree (see below)
    #[arg(long, group = "search")]
    pub auto: bool,
    /// With --auto: a folder whose libraries may be used (repeatable)
    #[arg(long = "lib-root", value_name = "DIR", requires = "auto")]
    pub lib_roots: Vec<PathBuf>,
    /// With --auto: the driver's library folder, or `host` for this machine's
    /// [default: /run/opengl-driver/lib]
    #[arg(long, value_name = "DIR|host", requires = "auto")]
    pub driver_dir: Option<String>,
    /// With --auto: a needed library that may stay unresolved (repeatable)
    #[arg(long = "allow-unresolved", value_name = "NAME", requires = "auto")]
    pub allow_unresolved: Vec<String>,
    /// With --auto: do not accept libraries from this machine's system folders
    #[arg(long, requires = "auto")]
    pub no_system: bool,
    /// Show what would change, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// What to print
    #[arg(long, value_enum, default_value_t = TextOrJson::Human)]
    pub format: TextOrJson,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Files or folders to prune
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Capabilities to keep, like 8.6,9.0 [default: $CUDAPKGS_CAPABILITIES or
    /// $CUDAPKGS_GPU, else cudapkgs.toml's [cuda] capabilities or gpus]
    #[arg(long, value_name = "LIST", conflicts_with = "gpus")]
    pub capabilities: Option<String>,
    /// A GPU to keep code for, by product name or capability, or `native` (this
    /// machine's GPUs, with their driver's CUDA version as --driver-cuda); repeatable
    /// [env: CUDAPKGS_GPU; names resolve with --driver-cuda, else $CUDAPKGS_CUDA, else
    /// cudapkgs.toml's [cuda] version, else 12.9]
    #[arg(long = "gpu", value_name = "NAME")]
    pub gpus: Vec<String>,
    /// Which PTX to keep
    #[arg(long, value_enum, default_value_t = KeepPtxArg::Auto)]
    pub keep_ptx: KeepPtxArg,
    /// The CUDA version the driver supports, for PTX ISA checks [default: any]
    #[arg(long, value_name = "X.Y")]
    pub driver_cuda: Option<CudaVersion>,
    /// Also measure each file's zstd-compressed size before and after (what a cache or
    /// container layer ships); reads every file twice
    #[arg(long)]
    pub compressed_size: bool,
    /// Leave PATH alone and prune a copy of it written to DIR (for read-only trees such
    /// as store outputs); needs exactly one PATH
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run", alias = "output")]
    pub out: Option<PathBuf>,
    /// Show what would be removed, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// What to print
    #[arg(long, value_enum, default_value_t = TextOrJson::Human)]
    pub format: TextOrJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeepPtxArg {
    /// Only where a kernel needs it for a requested capability
    Auto,
    /// Every PTX entry
    All,
    /// No PTX (refused where a kernel would lose its only image)
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Human,
    Json,
}
