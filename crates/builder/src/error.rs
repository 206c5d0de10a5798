//! The one error type of this crate.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Redist(#[from] cudapkgs_redist::Error),
    #[error(transparent)]
    Store(#[from] cudapkgs_store::Error),
    #[error("{path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Needed libraries that no package of the set provides and the system does not
    /// have: every one of the set, found at once.
    #[error("{}", unresolved(.0))]
    Unresolved(Vec<Missing>),
    /// A request that cannot be resolved to packages (an unknown package or release, no
    /// wheel or archive for the system, conflicting versions); `hint` says what to do.
    #[error("{problem}")]
    Resolve {
        problem: String,
        hint: Option<String>,
    },
    /// Wheels that match the request, all of them pre-releases, which it does not take.
    #[error("{problem}")]
    OnlyPrereleases {
        problem: String,
        /// The pre-releases that would match, newest first.
        prereleases: Vec<String>,
    },
    /// A full release (`12.6`) asked of an index that has no `cuda-toolkit`, whose pins
    /// are what tie a release's wheels together.
    #[error("{index} has no cuda-toolkit, so the wheels of CUDA {release} are not known")]
    ReleaseUnknown {
        index: String,
        release: String,
        /// The release's major, which such an index still serves (its newest wheels).
        major: u32,
    },
    /// A package that a CUDA release's manifest does not list.
    #[error("CUDA {release} has no package `{package}`")]
    NoSuchPackage { release: String, package: String },
    /// A `DT_NEEDED` entry that is a path (`/etc/hostname`, `../libx.so`), not a library
    /// file name: the loader would take it from outside every runpath.
    #[error(
        "{package}: {file} needs `{entry}`, which is not a library file name (a name without `/`); nothing was added"
    )]
    NeededNotAFileName {
        package: String,
        file: String,
        entry: String,
    },
    /// A package name or version that cannot name a folder or a store path.
    #[error("package `{package}`: {problem}")]
    BadInput { package: String, problem: String },
    /// A driver folder that cannot be a runpath entry.
    #[error("driver folder `{dir}` {problem}")]
    DriverDir { dir: String, problem: &'static str },
    #[error("the packages need each other in a cycle: {0}")]
    Cycle(String),
    /// `--strict-targets` and a kernel with no usable image.
    #[error("{0}")]
    Targets(String),
    /// A library or executable of a package that the ELF reader or patcher refuses.
    #[error("{path}")]
    Elf {
        path: std::path::PathBuf,
        #[source]
        source: cudapkgs_elf::Error,
    },
}

/// A library a file needs that no package of the set provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub package: String,
    /// `<output>/<path in the output>`.
    pub file: String,
    pub library: String,
}

fn unresolved(missing: &[Missing]) -> String {
    let lines: Vec<String> = missing
        .iter()
        .map(|m| {
            format!(
                "{}: {} needs {}, which no package of the set provides",
                m.package, m.file, m.library
            )
        })
        .collect();
    lines.join("\n")
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}
