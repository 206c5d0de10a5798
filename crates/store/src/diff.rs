//! What changed between two closures, per package: added, removed, changed in version,
//! and the size delta.
//!
//! Paths are grouped by package name, read from the store path's name as Nix reads a
//! derivation name (the version starts at the first `-` not followed by a letter), with
//! an output suffix (`-lib`, `-dev`, …) taken off the version, so the outputs of one
//! package count together.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::store::Store;

/// One package whose versions or size differ between the two closures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageChange {
    pub name: String,
    /// Versions in the first closure (empty when added).
    pub before: Vec<String>,
    /// Versions in the second closure (empty when removed).
    pub after: Vec<String>,
    pub size_before: u64,
    pub size_after: u64,
}

impl PackageChange {
    /// Bytes gained (negative: saved).
    pub fn delta(&self) -> i128 {
        i128::from(self.size_after) - i128::from(self.size_before)
    }
}

/// The difference between two closures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureDiff {
    /// Biggest size change first, then by name.
    pub changes: Vec<PackageChange>,
    pub size_before: u64,
    pub size_after: u64,
}

impl ClosureDiff {
    /// Bytes gained (negative: saved).
    pub fn delta(&self) -> i128 {
        i128::from(self.size_after) - i128::from(self.size_before)
    }
}

/// Output names that may end a store path's name (Nix's and the split redist packages').
const OUTPUT_NAMES: &[&str] = &[
    "out", "bin", "lib", "dev", "static", "include", "stubs", "doc", "man", "samples", "python",
    "debug", "info",
];

/// Splits a store path's name into package name and version (without output suffix);
/// the version is empty when the name has none.
pub fn package_and_version(name: &str) -> (&str, &str) {
    let bytes = name.as_bytes();
    let split = (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|b| !b.is_ascii_alphabetic()));
    let Some(split) = split else {
        return (name, "");
    };
    let version = &name[split + 1..];
    // `12.9.1-lib`: the output name is not part of the version.
    let version = match version.rsplit_once('-') {
        Some((number, output)) if OUTPUT_NAMES.contains(&output) => number,
        _ => version,
    };
    (&name[..split], version)
}

#[derive(Default)]
struct Side {
    versions: BTreeSet<String>,
    size: u64,
}

/// Groups a closure by package.
fn grouped(store: &Store, roots: &[String]) -> Result<BTreeMap<String, Side>, Error> {
    let mut groups: BTreeMap<String, Side> = BTreeMap::new();
    for info in store.closure(&store.parse_paths(roots)?)? {
        let base = info.path.rsplit('/').next().unwrap_or_default();
        let name = base.split_once('-').map_or(base, |(_, name)| name);
        let (package, version) = package_and_version(name);
        let side = groups.entry(package.to_owned()).or_default();
        if !version.is_empty() {
            side.versions.insert(version.to_owned());
        }
        side.size += info.nar_size;
    }
    Ok(groups)
}

/// What changed from the closure of `before` to the closure of `after`.
pub fn diff(store: &Store, before: &[String], after: &[String]) -> Result<ClosureDiff, Error> {
    let old = grouped(store, before)?;
    let new = grouped(store, after)?;
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let empty = Side::default();
    let mut changes: Vec<PackageChange> = names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (old.get(name), new.get(name));
            let (a_side, b_side) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
            let same = a.is_some() == b.is_some()
                && a_side.versions == b_side.versions
                && a_side.size == b_side.size;
            (!same).then(|| PackageChange {
                name: name.clone(),
                before: a_side.versions.iter().cloned().collect(),
                after: b_side.versions.iter().cloned().collect(),
                size_before: a_side.size,
                size_after: b_side.size,
            })
        })
        .collect();
    changes.sort_by(|x, y| {
        y.delta()
            .unsigned_abs()
            .cmp(&x.delta().unsigned_abs())
            .then_with(|| x.name.cmp(&y.name))
    });
    Ok(ClosureDiff {
        size_before: old.values().map(|side| side.size).sum(),
        size_after: new.values().map(|side| side.size).sum(),
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::package_and_version;

    #[test]
    fn names_split_like_nix_with_outputs_apart() {
        assert_eq!(
            package_and_version("libcublas-12.9.1.4-lib"),
            ("libcublas", "12.9.1.4")
        );
        assert_eq!(
            package_and_version("cuda_cudart-13.0.96"),
            ("cuda_cudart", "13.0.96")
        );
        assert_eq!(
            package_and_version("python3.12-torch-2.11.0"),
            ("python3.12-torch", "2.11.0")
        );
        assert_eq!(package_and_version("source"), ("source", ""));
        assert_eq!(package_and_version("hello-world"), ("hello-world", ""));
        assert_eq!(package_and_version("foo-1.0-rc1"), ("foo", "1.0-rc1"));
        assert_eq!(package_and_version("foo-1.0-beta"), ("foo", "1.0-beta"));
    }
}
