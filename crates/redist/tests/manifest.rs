//! Manifests in the shapes NVIDIA publishes (fixtures written after the copies Nixpkgs
//! keeps), and malformed ones refused with the JSON path of the bad value.

use cudapkgs_redist::manifest::{Manifest, SystemArchives};

fn fixture(name: &str) -> Manifest {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    Manifest::parse(&text, name).expect("parses")
}

#[test]
fn every_shape_parses() {
    let cuda = fixture("redistrib_cuda_12.9.1.json");
    assert_eq!(cuda.release_label.as_deref(), Some("12.9.1"));
    assert_eq!(cuda.packages.len(), 4);
    let cublas = &cuda.packages["libcublas"];
    assert_eq!(cublas.version, "12.9.1.4");
    let archive = cublas
        .archive("linux-x86_64", None)
        .expect("x86-64 archive");
    assert_eq!(archive.size, 870_000_000);
    assert!(
        archive
            .relative_path
            .ends_with("libcublas-linux-x86_64-12.9.1.4-archive.tar.xz")
    );
    let windows = cublas.archive("windows-x86_64", None).expect("zip");
    assert_eq!(
        std::path::Path::new(&windows.relative_path).extension(),
        Some(std::ffi::OsStr::new("zip"))
    );
    assert!(
        cuda.packages["cuda_documentation"]
            .archive("linux-all", None)
            .is_some()
    );

    let cudnn = fixture("redistrib_cudnn_9.13.0.json");
    let package = &cudnn.packages["cudnn"];
    assert_eq!(package.cuda_variants, ["12", "13"]);
    assert!(
        matches!(package.systems["linux-sbsa"], SystemArchives::PerCuda(ref v) if v.len() == 2)
    );
    assert_eq!(
        package
            .archive("linux-x86_64", Some(12))
            .expect("cuda12")
            .size,
        800_000_012
    );
    assert_eq!(
        package.archive("linux-x86_64", None).expect("newest").size,
        800_000_013
    );
    assert!(package.archive("linux-x86_64", Some(11)).is_none());
    assert!(
        cudnn.packages["cudnn_samples"]
            .archive("source", None)
            .is_some()
    );

    let tensorrt = fixture("redistrib_tensorrt_10.14.1.json");
    let package = &tensorrt.packages["tensorrt"];
    assert_eq!(package.license_path, None);
    assert_eq!(
        package
            .archive("linux-x86_64", Some(13))
            .expect("cuda13")
            .size,
        7_004_299_092
    );
}

fn refused(text: &str, expected: &str) {
    let error = Manifest::parse(text, "m.json").expect_err("malformed");
    let message = error.to_string();
    assert!(message.starts_with("m.json: "), "{message}");
    assert!(message.contains(expected), "{message}");
}

#[test]
fn malformed_manifests_name_the_bad_value() {
    let sha = "a".repeat(64);
    let archive = |size: &str| {
        format!(r#"{{"relative_path": "p/a.tar.xz", "sha256": "{sha}", "size": {size}}}"#)
    };
    refused("{", "line 1 column 1: not JSON");
    refused("[]", "$: expected an object of packages");
    refused(
        r#"{"release_label": 12}"#,
        "$.release_label: expected a string, got a number",
    );
    refused(r#"{"p": {"name": "x"}}"#, "$.p: no `version`");
    let bad_size = format!(
        r#"{{"p": {{"version": "1", "linux-x86_64": {}}}}}"#,
        archive(r#""12MB""#)
    );
    refused(&bad_size, "$.p.linux-x86_64.size: expected a byte count");
    let variant = format!(
        r#"{{"p": {{"version": "1", "linux-sbsa": {{"cuda12": {}, "x": {{}}}}}}}}"#,
        archive(r#""1""#)
    );
    refused(
        &variant,
        "$.p.linux-sbsa.x: expected `relative_path` or CUDA variants",
    );
    refused(
        r#"{"p": {"version": "1", "linux-x86_64": {"relative_path": "a", "sha256": "zz", "size": "1"}}}"#,
        "$.p.linux-x86_64.sha256: `zz` is not 64 hex digits",
    );
    let escape = format!(
        r#"{{"p": {{"version": "1", "source": {{"relative_path": "../../x", "sha256": "{sha}", "size": "1"}}}}}}"#
    );
    refused(
        &escape,
        "$.p.source.relative_path: `../../x` leaves the manifest's folder",
    );
    refused(
        r#"{"p": {"version": "1", "cuda_variant": "12"}}"#,
        "$.p.cuda_variant: expected a list of strings",
    );
    // A size given as a number is accepted.
    let number = format!(
        r#"{{"p": {{"version": "1", "linux-x86_64": {}}}}}"#,
        archive("42")
    );
    let manifest = Manifest::parse(&number, "m.json").expect("a number is a size too");
    assert_eq!(
        manifest.packages["p"]
            .archive("linux-x86_64", None)
            .expect("archive")
            .size,
        42
    );
}
