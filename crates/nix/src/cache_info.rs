//! `nix-cache-info`: the store folder a cache serves, whether clients may ask for many
//! narinfos at once, and its priority (lower wins).

use std::fmt::Write as _;

use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheInfo {
    pub store_dir: String,
    pub want_mass_query: bool,
    pub priority: u32,
}

impl CacheInfo {
    /// What a cache of `store_dir` announces by default (Nix's own caches use 40).
    pub fn new(store_dir: &str) -> CacheInfo {
        CacheInfo {
            store_dir: store_dir.to_owned(),
            want_mass_query: true,
            priority: 40,
        }
    }

    /// Reads the file; `StoreDir` is required, unknown fields are ignored as Nix does.
    pub fn parse(text: &str) -> Result<CacheInfo, Error> {
        let mut store_dir = None;
        let mut want_mass_query = false;
        let mut priority = 50;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let bad = |problem: String| Error::Malformed {
                line: index + 1,
                problem,
            };
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("{line:?} is not a `Key: value` line")))?;
            let value = value.trim();
            match key {
                "StoreDir" => {
                    let folder = value.trim_end_matches('/');
                    let plain = folder.trim() == folder && !folder.contains(char::is_control);
                    if !value.starts_with('/') || folder.is_empty() || !plain {
                        return Err(bad(format!(
                            "StoreDir {value:?} is not an absolute path below /"
                        )));
                    }
                    store_dir = Some(folder.to_owned());
                }
                "WantMassQuery" => want_mass_query = value == "1",
                "Priority" => {
                    priority = value
                        .parse()
                        .map_err(|_| bad(format!("Priority {value:?} is not a number")))?;
                }
                _ => {}
            }
        }
        Ok(CacheInfo {
            store_dir: store_dir
                .ok_or_else(|| Error::Invalid("nix-cache-info has no StoreDir".to_owned()))?,
            want_mass_query,
            priority,
        })
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "StoreDir: {}", self.store_dir);
        let _ = writeln!(text, "WantMassQuery: {}", u8::from(self.want_mass_query));
        let _ = writeln!(text, "Priority: {}", self.priority);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_nix_files() {
        let info = CacheInfo::new("/nix/store");
        assert_eq!(
            info.render(),
            "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"
        );
        assert_eq!(CacheInfo::parse(&info.render()).expect("parses"), info);
        // What `nix copy --to file://` writes.
        let nix = CacheInfo::parse("StoreDir: /nix/store\n").expect("parses");
        assert_eq!(nix.priority, 50);
        assert!(!nix.want_mass_query);
        assert!(CacheInfo::parse("WantMassQuery: 1\n").is_err());
        assert!(CacheInfo::parse("StoreDir: relative\n").is_err());
        // The root is no store folder: trimmed, it would render as an empty one (found
        // by the narinfo fuzz target).
        assert!(CacheInfo::parse("StoreDir: /\n").is_err());
        assert!(CacheInfo::parse("StoreDir: //\n").is_err());
        assert!(CacheInfo::parse("StoreDir: /nix/store /\n").is_err());
        assert!(CacheInfo::parse("StoreDir: /nix\u{0}/store\n").is_err());
        assert!(CacheInfo::parse("garbage\n").is_err());
    }
}
