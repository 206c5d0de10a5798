//! Resolution through a simple index: the CUDA release's component versions from the
//! `cuda-toolkit` metapackage, each wheel chosen by PEP 440 rules within them, and the
//! closure over `Requires-Dist` (from the index's metadata files, else the verified
//! wheel) and the packages' known run-time loads.

use std::collections::{BTreeMap, VecDeque};
use std::io::Cursor;

use cudapkgs_redist::fetch::{Fetcher, Progress};
use cudapkgs_redist::pypi::{self, Constraint, NoWheel, Wheel};
use cudapkgs_redist::requirement::{Environment, Requirement};
use pep440_rs::{Version, VersionSpecifiers};

use super::{Origin, Request, Requirer, Resolution, Resolved, Why, cuda_major};
use crate::error::Error;

/// NVIDIA's metapackage: version `X.Y.Z` is CUDA X.Y.Z, and its extra `all` pins every
/// component wheel of that release (`nvidia-cublas-cu12==12.6.4.1.*`).
pub const TOOLKIT: &str = "cuda-toolkit";

/// The largest metapackage wheel read into memory (they are about 3 kB).
const TOOLKIT_LIMIT: u64 = 1 << 20;

/// A CUDA release's pins: wheel project → the versions of that release.
#[derive(Debug, Clone)]
struct Pins {
    release: String,
    projects: BTreeMap<String, VersionSpecifiers>,
}

/// A wheel wanted, and by whom.
struct Want {
    project: String,
    versions: VersionSpecifiers,
    by: Option<Requirer>,
}

pub(super) fn resolve(
    fetcher: &Fetcher,
    request: &Request,
    index: &str,
    progress: Progress<'_>,
) -> Result<Resolution, Error> {
    let major = cuda_major(&request.cuda)?;
    if request.all {
        return Err(Error::Resolve {
            problem: "every package of a release is known only from NVIDIA's manifests: an index has no list of a release's packages"
                .to_owned(),
            hint: None,
        });
    }
    let mut resolution = Resolution {
        cuda: request.cuda.clone(),
        release_from: None,
        packages: Vec::new(),
        notes: Vec::new(),
    };
    let mut wants: VecDeque<Want> = VecDeque::new();
    for spec in &request.packages {
        if spec.file.is_some() {
            continue;
        }
        let project = project_of(&spec.name, major)?;
        wants.push_back(Want {
            project,
            versions: spec.versions.clone(),
            by: None,
        });
    }
    let local = super::local_packages(request, &mut resolution)?;
    if request.dependencies {
        for (package, requirements) in &local {
            wants.extend(dependencies_of(
                package,
                requirements.as_ref(),
                major,
                &mut resolution,
            ));
        }
    }
    if wants.is_empty() {
        return Ok(resolution);
    }
    let pins = release_pins(fetcher, index, request, major, &mut resolution)?;
    let environment = Environment::linux(&request.system);
    // Breadth first: a round's wheels are chosen, those whose metadata only the wheel
    // has are downloaded together, then their requirements make the next round.
    while !wants.is_empty() {
        let mut chosen: Vec<(usize, Wheel)> = Vec::new();
        for want in wants.drain(..).collect::<Vec<_>>() {
            let package = package_name(&want.project);
            if let Some(done) = resolution
                .packages
                .iter_mut()
                .find(|r| r.package == package)
            {
                accept_again(done, &want, &package)?;
                continue;
            }
            let wheel = choose(fetcher, index, &want, pins.as_ref(), request)?;
            resolution.packages.push(Resolved {
                package,
                version: wheel.version.clone(),
                origin: Origin::Remote(wheel.request()),
                from: wheel.filename.clone(),
                required_by: want.by.into_iter().collect(),
                licence: None,
            });
            chosen.push((resolution.packages.len() - 1, wheel));
        }
        if !request.dependencies {
            break;
        }
        let requirements = metadata_of(fetcher, &chosen, request, progress, &mut resolution)?;
        for ((index_of, _), requirements) in chosen.iter().zip(requirements) {
            let package = resolution.packages[*index_of].package.clone();
            let applying: Option<Vec<Requirement>> = requirements.map(|all| {
                all.into_iter()
                    .filter(|r| r.applies(&environment))
                    .collect()
            });
            wants.extend(dependencies_of(
                &package,
                applying.as_ref(),
                major,
                &mut resolution,
            ));
        }
    }
    Ok(resolution)
}

/// The wheel project of a name given by the user: a redist name through the table, or
/// a project named as such.
fn project_of(name: &str, major: u32) -> Result<String, Error> {
    if let Some(project) = pypi::wheel_name(name, major) {
        return Ok(project);
    }
    let normalized = pypi::normalize(name);
    if pypi::package_of_wheel(&normalized).is_some() || normalized.starts_with("nvidia-") {
        return Ok(normalized);
    }
    Err(Error::Resolve {
        problem: format!("{name}: no wheel is known for this package"),
        hint: Some(
            "use a redist name such as cuda_cudart, libcublas, cuda_nvrtc, cudnn, or a wheel project such as nvidia-cublas-cu12".to_owned(),
        ),
    })
}

/// The redist name of a wheel project, or the project itself when it has none.
fn package_name(project: &str) -> String {
    pypi::package_of_wheel(project).map_or_else(|| pypi::normalize(project), str::to_owned)
}

/// A package wanted again: the version chosen must satisfy this want too.
fn accept_again(done: &mut Resolved, want: &Want, package: &str) -> Result<(), Error> {
    let version = done.version.parse::<Version>().ok();
    if !want.versions.is_empty() && !version.is_some_and(|v| want.versions.contains(&v)) {
        let by = want
            .by
            .as_ref()
            .map_or_else(|| "the request".to_owned(), |r| r.package.clone());
        return Err(Error::Resolve {
            problem: format!(
                "{by} needs {}{}, but {package} {} was chosen{}",
                want.project,
                want.versions,
                done.version,
                done.required_by
                    .first()
                    .map(|r| format!(" for {}", r.package))
                    .unwrap_or_default()
            ),
            hint: Some("pin a version of it that suits both with PACKAGE==VERSION".to_owned()),
        });
    }
    if let Some(by) = &want.by {
        if !done.required_by.iter().any(|r| r.package == by.package) {
            done.required_by.push(by.clone());
        }
    }
    Ok(())
}

/// The newest wheel `want` and the release allow.
fn choose(
    fetcher: &Fetcher,
    index: &str,
    want: &Want,
    pins: Option<&Pins>,
    request: &Request,
) -> Result<Wheel, Error> {
    let wheels = pypi::wheels(fetcher, index, &want.project)?;
    let pin = pins.and_then(|p| p.projects.get(&want.project));
    let versions: VersionSpecifiers = want
        .versions
        .iter()
        .chain(pin.into_iter().flat_map(|p| p.iter()))
        .cloned()
        .collect();
    let constraint = Constraint::new(versions.clone(), request.prereleases);
    match pypi::pick(&wheels, &constraint, &request.system) {
        Ok(wheel) => Ok(wheel.clone()),
        Err(why) => Err(no_wheel(
            &want.project,
            &versions,
            pins,
            why,
            request,
            index,
        )),
    }
}

fn no_wheel(
    project: &str,
    versions: &VersionSpecifiers,
    pins: Option<&Pins>,
    why: NoWheel,
    request: &Request,
    index: &str,
) -> Error {
    let system = &request.system;
    let wanted = match &versions[..] {
        [] => String::new(),
        [only] if *only.operator() == pep440_rs::Operator::Equal => {
            format!(" of version {}", only.version())
        }
        _ => format!(" of {versions}"),
    };
    let release = pins.map_or_else(String::new, |p| format!(" (CUDA {})", p.release));
    match why {
        NoWheel::NoneForSystem => Error::Resolve {
            problem: format!("{project}: no wheel for {system} in {index}"),
            hint: Some("no version has a wheel for this system".to_owned()),
        },
        NoWheel::NoVersion {
            prereleases_matching,
            ..
        } if !prereleases_matching.is_empty() => Error::OnlyPrereleases {
            problem: format!("{project}: no wheel{wanted}{release} for {system} in {index}"),
            prereleases: prereleases_matching,
        },
        NoWheel::NoVersion { available, .. } => Error::Resolve {
            problem: format!("{project}: no wheel{wanted}{release} for {system} in {index}"),
            hint: Some(format!("versions with a wheel: {}", available.join(", "))),
        },
    }
}

/// The release's pins from the `cuda-toolkit` metapackage: the release `--cuda` names
/// (`12.6` → the newest 12.6.x), or for a major alone the newest release whose pins
/// admit every version the user pinned exactly. An index without the metapackage
/// serves for a major alone (the newest wheels, said in a note), not for a release.
fn release_pins(
    fetcher: &Fetcher,
    index: &str,
    request: &Request,
    major: u32,
    resolution: &mut Resolution,
) -> Result<Option<Pins>, Error> {
    let wheels = match pypi::wheels(fetcher, index, TOOLKIT) {
        Ok(wheels) => wheels,
        Err(cudapkgs_redist::Error::NotFound(_)) if !request.cuda.contains('.') => {
            resolution.notes.push(format!(
                "{index} has no {TOOLKIT}, so no release ties the wheels together: the newest wheels for CUDA {major} are taken"
            ));
            return Ok(None);
        }
        Err(cudapkgs_redist::Error::NotFound(_)) => {
            return Err(Error::ReleaseUnknown {
                index: index.to_owned(),
                release: request.cuda.clone(),
                major,
            });
        }
        Err(other) => return Err(other.into()),
    };
    let mut releases: Vec<&Wheel> = wheels
        .iter()
        .filter(|w| release_matches(&w.pep440, &request.cuda))
        .filter(|w| request.prereleases || !w.pep440.any_prerelease())
        .collect();
    releases.sort_by(|a, b| b.pep440.cmp(&a.pep440));
    releases.dedup_by(|a, b| a.pep440 == b.pep440);
    if releases.is_empty() {
        let mut known: Vec<&Wheel> = wheels
            .iter()
            .filter(|w| request.prereleases || !w.pep440.any_prerelease())
            .filter(|w| !w.pep440.release().starts_with(&[0]))
            .collect();
        known.sort_by(|a, b| a.pep440.cmp(&b.pep440));
        known.dedup_by(|a, b| a.pep440 == b.pep440);
        let names: Vec<&str> = known.iter().map(|w| w.version.as_str()).collect();
        return Err(Error::Resolve {
            problem: format!(
                "CUDA {}: {index} has no such release of {TOOLKIT}",
                request.cuda
            ),
            hint: Some(format!("releases there: {}", names.join(", "))),
        });
    }
    let exact: Vec<(String, Version)> = request
        .packages
        .iter()
        .filter(|s| s.file.is_none())
        .filter_map(|s| {
            let project = project_of(&s.name, major).ok()?;
            let only = s.versions.iter().next().filter(|_| s.versions.len() == 1)?;
            (*only.operator() == pep440_rs::Operator::Equal)
                .then(|| (project, only.version().clone()))
        })
        .collect();
    let mut last = None;
    for wheel in &releases {
        let pins = read_pins(fetcher, wheel, &request.system)?;
        let admits = exact.iter().all(|(project, version)| {
            pins.projects
                .get(project)
                .is_none_or(|pin| pin.contains(version))
        });
        // A release named in full is taken as it is: a pin outside it is refused when
        // the wheel is chosen.
        if admits || request.cuda.split('.').count() >= 3 {
            resolution.cuda.clone_from(&pins.release);
            resolution.release_from = Some(format!("{TOOLKIT} {} on {index}", pins.release));
            return Ok(Some(pins));
        }
        last = Some(pins);
    }
    let pins = last.expect("at least one release");
    let (project, version) = &exact[0];
    Err(Error::Resolve {
        problem: format!(
            "no release of CUDA {} has {project} {version}",
            request.cuda
        ),
        hint: Some(format!(
            "CUDA {} pins {project}{}; leave the version out, or name another release",
            pins.release,
            pins.projects
                .get(project)
                .map(ToString::to_string)
                .unwrap_or_default()
        )),
    })
}

/// Whether a `cuda-toolkit` version is the release `cuda` names: itself, or one that
/// starts with it (`12.6` → `12.6.3`, `13` → `13.5.0`).
fn release_matches(version: &Version, cuda: &str) -> bool {
    let wanted: Vec<u64> = cuda.split('.').filter_map(|p| p.parse().ok()).collect();
    !wanted.is_empty() && version.release().starts_with(&wanted)
}

/// Reads one `cuda-toolkit` wheel's pins (its metadata file, else the wheel itself,
/// both verified) for the extra `all` on `system`.
fn read_pins(fetcher: &Fetcher, wheel: &Wheel, system: &str) -> Result<Pins, Error> {
    let metadata = if let Some(request) = wheel.metadata_request() {
        fetcher.get_verified(&request, pypi::METADATA_LIMIT)?
    } else {
        let bytes = fetcher.get_verified(&wheel.request(), TOOLKIT_LIMIT)?;
        pypi::wheel_metadata_from(Cursor::new(bytes), &wheel.url)?.into_bytes()
    };
    let text = String::from_utf8_lossy(&metadata);
    let mut environment = Environment::linux(system);
    environment.extras.push("all".to_owned());
    let mut projects: BTreeMap<String, VersionSpecifiers> = BTreeMap::new();
    for requirement in pypi::requires_dist(&text, &wheel.url)? {
        if requirement.applies(&environment) {
            let entry = projects.entry(requirement.name).or_default();
            *entry = entry
                .iter()
                .chain(requirement.specifiers.iter())
                .cloned()
                .collect();
        }
    }
    Ok(Pins {
        release: wheel.version.clone(),
        projects,
    })
}

/// Each chosen wheel's requirements: from the index's metadata file, from the wheel
/// in the cache, or from the wheel downloaded now (all verified); `None` where none of
/// these is allowed (a dry run with nothing cached).
fn metadata_of(
    fetcher: &Fetcher,
    chosen: &[(usize, Wheel)],
    request: &Request,
    progress: Progress<'_>,
    resolution: &mut Resolution,
) -> Result<Vec<Option<Vec<Requirement>>>, Error> {
    let cached = |wheel: &Wheel| {
        fetcher
            .cached_path(&wheel.sha256)
            .ok()
            .filter(|path| path.is_file())
    };
    let to_download: Vec<cudapkgs_redist::fetch::Request> = chosen
        .iter()
        .filter(|(_, w)| w.metadata_sha256.is_none() && cached(w).is_none())
        .map(|(_, w)| w.request())
        .collect();
    if request.download_for_metadata && !to_download.is_empty() {
        for result in fetcher.fetch_all(&to_download, request.jobs.max(1), progress) {
            result?;
        }
    }
    let mut all = Vec::new();
    for (_, wheel) in chosen {
        let text = if let Some(metadata) = wheel.metadata_request() {
            let bytes = fetcher.get_verified(&metadata, pypi::METADATA_LIMIT)?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        } else if let Some(path) = cached(wheel) {
            Some(pypi::wheel_metadata(&path)?)
        } else {
            resolution.notes.push(format!(
                "{}: the index serves no metadata file, so its requirements are read once the wheel is downloaded",
                wheel.filename
            ));
            None
        };
        all.push(
            text.map(|text| pypi::requires_dist(&text, &wheel.url))
                .transpose()?,
        );
    }
    Ok(all)
}

/// What `package` brings: its applying requirements on NVIDIA's wheels (others are
/// left to the Python environment, with a note) and the packages its libraries load.
fn dependencies_of(
    package: &str,
    requirements: Option<&Vec<Requirement>>,
    major: u32,
    resolution: &mut Resolution,
) -> Vec<Want> {
    let mut wants = Vec::new();
    for requirement in requirements.into_iter().flatten() {
        let nvidia = pypi::package_of_wheel(&requirement.name).is_some()
            || requirement.name.starts_with("nvidia-");
        if !nvidia {
            resolution.notes.push(format!(
                "{package}: requirement `{}` is not one of NVIDIA's components and is not built",
                requirement.name
            ));
            continue;
        }
        wants.push(Want {
            project: requirement.name.clone(),
            versions: requirement.specifiers.clone(),
            by: Some(Requirer {
                package: package.to_owned(),
                why: Why::Declared,
            }),
        });
    }
    for other in cudapkgs_redist::providers::needs(package, major) {
        let Some(project) = pypi::wheel_name(other, major) else {
            continue;
        };
        if wants.iter().any(|w| package_name(&w.project) == other) {
            continue;
        }
        wants.push(Want {
            project,
            versions: VersionSpecifiers::empty(),
            by: Some(Requirer {
                package: package.to_owned(),
                why: Why::Loads,
            }),
        });
    }
    wants
}
