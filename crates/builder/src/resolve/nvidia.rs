//! Resolution through NVIDIA's manifests: the CUDA release (named in full, or the newest
//! the mirror lists for `12.9` or `13`), packages of the separately released products
//! (cuDNN, cuTENSOR, cuSPARSELt, NCCL, …) from the newest of their manifests with an
//! archive for the system and the CUDA major, and the closure over what the packages'
//! libraries need.

use std::collections::{BTreeMap, VecDeque};

use cudapkgs_redist::fetch::Fetcher;
use cudapkgs_redist::manifest::{Manifest, Package};
use cudapkgs_redist::providers;
use cudapkgs_redist::source::{Mirror, pick_release};
use pep440_rs::{Version, VersionSpecifiers};

use super::{Origin, Request, Requirer, Resolution, Resolved, Why, cuda_major};
use crate::error::Error;

/// Manifests read so far, and the releases each product's folder lists.
struct Manifests<'a> {
    fetcher: &'a Fetcher,
    mirror: Mirror,
    read: BTreeMap<(String, String), Manifest>,
    listed: BTreeMap<String, Vec<String>>,
}

impl Manifests<'_> {
    fn manifest(&mut self, product: &str, release: &str) -> Result<&Manifest, Error> {
        let key = (product.to_owned(), release.to_owned());
        if !self.read.contains_key(&key) {
            let manifest = self.mirror.manifest(self.fetcher, product, release)?;
            self.read.insert(key.clone(), manifest);
        }
        Ok(&self.read[&key])
    }

    fn releases(&mut self, product: &str) -> Result<&[String], Error> {
        if !self.listed.contains_key(product) {
            let releases = self.mirror.releases(self.fetcher, product)?;
            self.listed.insert(product.to_owned(), releases);
        }
        Ok(&self.listed[product])
    }
}

/// A package wanted, and by whom.
struct Want {
    package: String,
    versions: VersionSpecifiers,
    by: Option<Requirer>,
}

pub(super) fn resolve(
    fetcher: &Fetcher,
    request: &Request,
    base: &str,
) -> Result<Resolution, Error> {
    let major = cuda_major(&request.cuda)?;
    let mut manifests = Manifests {
        fetcher,
        mirror: Mirror::new(base),
        read: BTreeMap::new(),
        listed: BTreeMap::new(),
    };
    let release = cuda_release(&mut manifests, request)?;
    let mut resolution = Resolution {
        cuda: release.clone(),
        release_from: Some(manifests.mirror.manifest_url("cuda", &release)),
        packages: Vec::new(),
        notes: Vec::new(),
    };
    let mut wants: VecDeque<Want> = VecDeque::new();
    if request.all {
        let manifest = manifests.manifest("cuda", &release)?;
        for package in manifest.packages.values() {
            if package.archive(&request.system, Some(major)).is_some() {
                wants.push_back(Want {
                    package: package.key.clone(),
                    versions: VersionSpecifiers::empty(),
                    by: None,
                });
            }
        }
    }
    for spec in request.packages.iter().filter(|s| s.file.is_none()) {
        wants.push_back(Want {
            package: spec.name.clone(),
            versions: spec.versions.clone(),
            by: None,
        });
    }
    let local = super::local_packages(request, &mut resolution)?;
    if request.dependencies {
        for (package, _) in &local {
            wants.extend(needs_of(package, major));
        }
    }
    while let Some(want) = wants.pop_front() {
        if let Some(done) = resolution
            .packages
            .iter_mut()
            .find(|r| r.package == want.package)
        {
            if let Some(by) = want.by {
                if !done.required_by.iter().any(|r| r.package == by.package) {
                    done.required_by.push(by);
                }
            }
            continue;
        }
        let found = find(&mut manifests, &release, &want, request, major)?;
        let Some((product, label, package)) = found else {
            // A package the table names that this release does not have: the builder
            // says so if a file really needs it.
            resolution.notes.push(format!(
                "{}: needs {}, which CUDA {release} does not have for {}",
                want.by.as_ref().map_or("", |b| b.package.as_str()),
                want.package,
                request.system
            ));
            continue;
        };
        let archive = package
            .archive(&request.system, Some(major))
            .expect("found with an archive");
        resolution.packages.push(Resolved {
            package: want.package.clone(),
            version: package.version.clone(),
            origin: Origin::Remote(manifests.mirror.request(&product, archive)),
            from: format!("{product} {label}"),
            required_by: want.by.into_iter().collect(),
            licence: package.license.clone(),
        });
        if request.dependencies {
            wants.extend(needs_of(&want.package, major));
        }
    }
    Ok(resolution)
}

fn needs_of(package: &str, major: u32) -> Vec<Want> {
    providers::needs(package, major)
        .into_iter()
        .map(|other| Want {
            package: other.to_owned(),
            versions: VersionSpecifiers::empty(),
            by: Some(Requirer {
                package: package.to_owned(),
                why: Why::Loads,
            }),
        })
        .collect()
}

/// The CUDA release `--cuda` names: itself when given in full (`12.9.1`), else the
/// newest the mirror lists that starts with it; refused with the releases there.
fn cuda_release(manifests: &mut Manifests<'_>, request: &Request) -> Result<String, Error> {
    if request.cuda.split('.').count() >= 3 {
        return Ok(request.cuda.clone());
    }
    let folder = manifests.mirror.folder("cuda");
    let releases = manifests.releases("cuda")?;
    pick_release(releases, &request.cuda, request.prereleases)
        .map(str::to_owned)
        .ok_or_else(|| Error::Resolve {
            problem: format!("CUDA {}: {} lists no such release", request.cuda, folder),
            hint: Some(if releases.is_empty() {
                "the folder lists no manifests; give the release in full, like 12.9.1".to_owned()
            } else {
                format!("releases there: {}", releases.join(", "))
            }),
        })
}

/// The product, manifest label and package record that fill `want`; `None` for a
/// package the table brought that the release does not have.
fn find(
    manifests: &mut Manifests<'_>,
    release: &str,
    want: &Want,
    request: &Request,
    major: u32,
) -> Result<Option<(String, String, Package)>, Error> {
    let system = &request.system;
    let product = providers::product_of(&want.package);
    let allowed = |package: &Package| {
        let Ok(version) = package.version.parse::<Version>() else {
            return want.versions.is_empty();
        };
        want.versions.contains(&version)
            && (!version.any_prerelease()
                || request.prereleases
                || want.versions.iter().any(|s| s.version().any_prerelease()))
    };
    if product == "cuda" {
        let manifest = manifests.manifest("cuda", release)?;
        let Some(package) = manifest.packages.get(&want.package) else {
            if want.by.is_some() {
                return Ok(None);
            }
            return Err(Error::NoSuchPackage {
                release: release.to_owned(),
                package: want.package.clone(),
            });
        };
        if !allowed(package) {
            return Err(Error::Resolve {
                problem: format!(
                    "CUDA {release} has {} {}, not {}",
                    want.package, package.version, want.versions
                ),
                hint: Some(
                    "leave the version out, or name the CUDA release that has it".to_owned(),
                ),
            });
        }
        if package.archive(system, Some(major)).is_none() {
            return Err(no_archive(&want.package, &package.version, system, major));
        }
        return Ok(Some((
            "cuda".to_owned(),
            release.to_owned(),
            package.clone(),
        )));
    }
    // Separate products: their newest manifest with an allowed version for this system
    // and CUDA major.
    let releases: Vec<String> = manifests.releases(product)?.to_vec();
    let mut seen = Vec::new();
    for label in releases.iter().rev() {
        let manifest = manifests.manifest(product, label)?;
        let Some(package) = manifest.packages.get(&want.package) else {
            continue;
        };
        seen.push(package.version.clone());
        if allowed(package) && package.archive(system, Some(major)).is_some() {
            return Ok(Some((product.to_owned(), label.clone(), package.clone())));
        }
    }
    Err(Error::Resolve {
        problem: format!(
            "{}{}: no release of {product} in {} has an archive for {system} and CUDA {major}",
            want.package,
            if want.versions.is_empty() {
                String::new()
            } else {
                want.versions.to_string()
            },
            manifests.mirror.folder(product)
        ),
        hint: Some(if seen.is_empty() {
            format!(
                "the folder lists {} manifests, none with the package",
                releases.len()
            )
        } else {
            format!("versions there: {}", seen.join(", "))
        }),
    })
}

fn no_archive(package: &str, version: &str, system: &str, major: u32) -> Error {
    Error::Resolve {
        problem: format!("{package} {version} has no archive for {system} and CUDA {major}"),
        hint: None,
    }
}
