//! Inputs the build refuses before it unpacks or creates anything: a driver folder that
//! cannot be a runpath entry, package names and versions that are paths.

use std::path::{Path, PathBuf};

use cudapkgs_builder::Error;
use cudapkgs_builder::prepare::Input;
use cudapkgs_builder::realise::{Options, build};
use cudapkgs_store::store::Store;

fn options(driver_dir: &str) -> Options {
    Options {
        driver_dir: driver_dir.to_owned(),
        gpus: Vec::new(),
        strict_targets: false,
        jobs: 1,
        gc_roots: false,
        rebuild: false,
        prune: None,
    }
}

fn input(package: &str, version: &str, archive: &Path) -> Input {
    Input {
        package: package.to_owned(),
        version: version.to_owned(),
        archive: archive.to_owned(),
        sha256: None,
        licence: None,
    }
}

/// Every path under `dir`.
fn paths(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        found.push(path.clone());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(paths(&path));
        }
    }
    found
}

#[test]
fn refused_inputs_create_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    let store_dir = dir.path().join("store");
    let mut store = Store::open(
        store_dir.to_str().expect("utf-8"),
        None,
        &dir.path().join("state"),
    )
    .expect("store");
    // An archive that would fail to unpack: only the checks before it may answer.
    let archive = dir.path().join("missing.tar.xz");
    let before = paths(dir.path());

    for driver_dir in ["relative/lib", "", "/opt/a:/opt/b"] {
        let error = build(
            &mut store,
            &[input("libx", "1.0", &archive)],
            &options(driver_dir),
            &cudapkgs_report::Silent,
        )
        .expect_err("refused");
        assert!(
            matches!(error, Error::DriverDir { .. }),
            "{driver_dir}: {error}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("driver folder `{driver_dir}` ")),
            "{error}"
        );
    }
    for (package, version) in [
        ("../../escaped", "1.0"),
        ("lib/x", "1.0"),
        ("libx", "../1.0"),
        ("libx", ".."),
        ("", "1.0"),
    ] {
        let error = build(
            &mut store,
            &[input(package, version, &archive)],
            &options("/run/opengl-driver/lib"),
            &cudapkgs_report::Silent,
        )
        .expect_err("refused");
        assert!(
            matches!(error, Error::BadInput { .. }),
            "{package} {version}: {error}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("package `{package}`: ")),
            "{error}"
        );
    }
    assert_eq!(paths(dir.path()), before, "something was created");
}
