//! Names in the store folder: temporaries (named by their open's owner), owner locks,
//! entries of the folder, and where a logical path lives on this machine.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Store;

pub(crate) const TEMP_PREFIX: &str = ".cudapkgs-add-";

/// The end of an owner lock's name (`<TEMP_PREFIX><owner>.owner.lock`).
pub(super) const OWNER_LOCK: &str = ".owner.lock";

impl Store {
    /// A fresh temporary name in the store folder: the prefix, this open's owner name (so
    /// that another open can tell whether its owner is alive), a unique part, `suffix`.
    pub(crate) fn temporary(&self, suffix: &str) -> PathBuf {
        let owner = self.owner.as_ref().map_or("", |(owner, _)| owner.as_str());
        self.physical(self.folder.as_str())
            .join(format!("{TEMP_PREFIX}{owner}-{}{suffix}", unique()))
    }

    pub(super) fn owner_lock(&self, owner: &str) -> PathBuf {
        self.physical_folder()
            .join(format!("{TEMP_PREFIX}{owner}{OWNER_LOCK}"))
    }

    /// The physical path of `path` if it names an entry of the store folder (and so is
    /// safe to remove), `None` for anything else.
    pub(crate) fn entry(&self, path: &str) -> Option<PathBuf> {
        let name = path.strip_prefix(self.folder.as_str())?.strip_prefix('/')?;
        let plain = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
        plain.then(|| self.physical(path))
    }
}

/// Where the logical `path` lives under the physical `root`, if any.
pub(super) fn physical_of(root: Option<&Path>, logical: &str) -> PathBuf {
    match root {
        Some(root) => root.join(logical.trim_start_matches('/')),
        None => PathBuf::from(logical),
    }
}

/// A name no other add uses: this process and a counter.
pub(crate) fn unique() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos}-{count}")
}
