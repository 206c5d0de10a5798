//! Nix's names for a local store (`--store` in Nix's syntax): `local`, `local?root=R`,
//! with `store=` and `state=` as Nix takes them, and `nix` for the system's store.

use std::path::{Path, PathBuf};

use crate::Error;

/// Where a local Nix store and its database are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStore {
    /// The logical store folder (`/nix/store`), part of every path's hash.
    pub store_dir: String,
    /// The folder the store lives under on this machine, if any.
    pub root: Option<PathBuf>,
    /// The folder of `db.sqlite`, on this machine (under `root`).
    pub database_dir: PathBuf,
}

/// Reads a store URI. Only local stores are stores on this machine with a database
/// to read; a daemon, SSH or binary cache URI is refused, naming what is taken.
pub fn parse(uri: &str) -> Result<LocalStore, Error> {
    let (scheme, query) = uri.split_once('?').unwrap_or((uri, ""));
    if !matches!(scheme, "nix" | "local" | "auto") {
        return Err(Error::Invalid(format!(
            "`{uri}`: only a local store is read (`nix`, `local`, `local?root=DIR`)"
        )));
    }
    let mut store_dir = "/nix/store".to_owned();
    let mut state = "/nix/var/nix".to_owned();
    let mut root = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let absolute = || {
            if value.starts_with('/') {
                // `/` itself stays `/` (the system's store), not the empty path.
                let trimmed = value.trim_end_matches('/');
                Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
            } else {
                Err(Error::Invalid(format!(
                    "`{uri}`: {key} must be an absolute folder, not `{value}`"
                )))
            }
        };
        match key {
            "root" => root = Some(PathBuf::from(absolute()?)),
            "store" => store_dir = absolute()?,
            "state" => state = absolute()?,
            other => {
                return Err(Error::Invalid(format!(
                    "`{uri}`: unknown setting `{other}` (root, store and state are taken)"
                )));
            }
        }
    }
    let database = Path::new(&state).join("db");
    let database_dir = match &root {
        Some(root) => root.join(database.strip_prefix("/").unwrap_or(&database)),
        None => database,
    };
    Ok(LocalStore {
        store_dir,
        root,
        database_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_stores_in_nix_syntax() {
        let system = parse("nix").expect("parses");
        assert_eq!(system.store_dir, "/nix/store");
        assert_eq!(system.root, None);
        assert_eq!(system.database_dir, Path::new("/nix/var/nix/db"));
        assert_eq!(parse("local").expect("parses"), system);
        let slash = parse("local?root=/").expect("parses");
        assert_eq!(slash.database_dir, Path::new("/nix/var/nix/db"));
        let chroot = parse("local?root=/tmp/r/").expect("parses");
        assert_eq!(chroot.root.as_deref(), Some(Path::new("/tmp/r")));
        assert_eq!(chroot.database_dir, Path::new("/tmp/r/nix/var/nix/db"));
        let moved = parse("local?store=/gnu/store&state=/var/gnu").expect("parses");
        assert_eq!(
            (moved.store_dir.as_str(), moved.database_dir.as_path()),
            ("/gnu/store", Path::new("/var/gnu/db"))
        );
        for refused in [
            "daemon",
            "ssh://host",
            "https://cache.nixos.org",
            "local?root=r",
            "local?x=1",
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }
}
