//! Where a store lives when the user names only part of it: the store folder's default
//! and the state folder (the database's) that goes with a store folder.

use std::path::{Path, PathBuf};

/// The default store folder, `$XDG_DATA_HOME/cudapkgs/store`, with XDG's fallback
/// `~/.local/share` (a relative `XDG_DATA_HOME` is ignored, as XDG says). `None` when
/// neither is known.
pub fn default_store_dir(xdg_data_home: Option<&str>, home: Option<&str>) -> Option<String> {
    let data_home = xdg_data_home
        .filter(|dir| dir.starts_with('/'))
        .map(str::to_owned)
        .or_else(|| home.map(|home| format!("{}/.local/share", home.trim_end_matches('/'))))?;
    Some(format!("{data_home}/cudapkgs/store"))
}

/// The state folder of the store folder `store_dir`: `var/cudapkgs` beside it, as Nix keeps
/// `/nix/var/nix` beside `/nix/store`; inside `root` when the store is reached through one.
pub fn default_state_dir(store_dir: &str, root: Option<&Path>) -> PathBuf {
    let logical = Path::new(store_dir)
        .parent()
        .unwrap_or(Path::new("/"))
        .join("var/cudapkgs");
    match root {
        Some(root) => root.join(logical.strip_prefix("/").unwrap_or(&logical)),
        None => logical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_folder_follows_xdg() {
        assert_eq!(
            default_store_dir(Some("/data"), Some("/home/u")).as_deref(),
            Some("/data/cudapkgs/store")
        );
        assert_eq!(
            default_store_dir(Some("relative"), Some("/home/u/")).as_deref(),
            Some("/home/u/.local/share/cudapkgs/store")
        );
        assert_eq!(
            default_store_dir(None, Some("/home/u")).as_deref(),
            Some("/home/u/.local/share/cudapkgs/store")
        );
        assert_eq!(default_store_dir(None, None), None);
    }

    #[test]
    fn the_state_folder_is_beside_the_store_folder() {
        assert_eq!(
            default_state_dir("/nix/store", None),
            PathBuf::from("/nix/var/cudapkgs")
        );
        assert_eq!(
            default_state_dir("/nix/store", Some(Path::new("/tmp/r"))),
            PathBuf::from("/tmp/r/nix/var/cudapkgs")
        );
        assert_eq!(
            default_state_dir("/store", None),
            PathBuf::from("/var/cudapkgs")
        );
    }
}
