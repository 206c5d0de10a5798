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

#[test]
fn archives_that_name_no_file_are_refused() {
    let sha = "a".repeat(64);
    for (relative_path, expected) in [
        ("", "`` does not name a file"),
        ("p/", "`p/` does not name a file"),
        ("p/a\\u0000.tar.xz", "`p/a\\0.tar.xz` does not name a file"),
    ] {
        let text = format!(
            r#"{{"p": {{"version": "1", "linux-x86_64": {{"relative_path": "{relative_path}", "sha256": "{sha}", "size": "1"}}}}}}"#
        );
        refused(
            &text,
            &format!("$.p.linux-x86_64.relative_path: {expected}"),
        );
    }
    // 64 characters, not 64 hex digits.
    let path_like = format!("../../victim/{}", "a".repeat(51));
    assert_eq!(path_like.len(), 64);
    refused(
        &format!(
            r#"{{"p": {{"version": "1", "linux-x86_64": {{"relative_path": "a", "sha256": "{path_like}", "size": "1"}}}}}}"#
        ),
        "$.p.linux-x86_64.sha256: `../../victim/",
    );
}

mod index_pages {
    use cudapkgs_redist::pypi::parse_project_page;

    const PAGE: &str = "http://127.0.0.1:8000/simple/nvidia-cuda-runtime/";
    const NAME: &str = "nvidia_cuda_runtime-13.0.96-py3-none-manylinux_2_27_x86_64.whl";

    /// A page of one wheel: `name`, `url` and `sha256` as JSON values, and `extra` fields.
    fn page(name: &str, url: &str, sha256: &str, extra: &str) -> String {
        format!(
            r#"{{"meta": {{"api-version": "1.1"}}, "files": [{{"filename": {name}, "url": {url}, "hashes": {{"sha256": {sha256}}}{extra}}}]}}"#
        )
    }

    fn refused(text: &str, page_url: &str, expected: &str) {
        let error = parse_project_page(text, page_url).expect_err("hostile");
        let message = error.to_string();
        assert!(message.starts_with(page_url), "{message}");
        assert!(message.contains(expected), "{message}");
    }

    #[test]
    fn hashes_that_are_paths_are_refused() {
        let name = format!("\"{NAME}\"");
        for (sha256, shown) in [
            ("\"../../victim/target.whl\"", "`../../victim/target.whl`"),
            ("\"aa\"", "`aa`"),
            (&format!("\"{}/\"", "a".repeat(63)), "is not 64 hex digits"),
        ] {
            let text = page(&name, "\"../../files/x.whl\"", sha256, "");
            refused(&text, PAGE, "$.files[0].hashes.sha256: ");
            refused(&text, PAGE, shown);
        }
        let text = page(&name, "\"x.whl\"", "17", "");
        refused(&text, PAGE, "$.files[0].hashes: no sha256");
    }

    #[test]
    fn names_that_are_not_file_names_are_refused() {
        let sha = format!("\"{}\"", "b".repeat(64));
        for name in [
            format!("\"../../{NAME}\""),
            format!("\"nvidia/{NAME}\""),
            format!("\"nvidia\\u0000{NAME}\""),
        ] {
            let text = page(&name, "\"x.whl\"", &sha, "");
            refused(&text, PAGE, "$.files[0].filename: ");
            refused(&text, PAGE, "is not a plain file name");
        }
    }

    #[test]
    fn only_http_files_come_from_an_index() {
        let name = format!("\"{NAME}\"");
        let sha = format!("\"{}\"", "c".repeat(64));
        for url in [
            "file:///etc/passwd",
            "FILE:///etc/passwd",
            "file:/etc/passwd",
            "ftp://files.example/x.whl",
        ] {
            let text = page(&name, &format!("\"{url}\""), &sha, "");
            refused(
                &text,
                PAGE,
                &format!(
                    "$.files[0].url: `{url}`: an index may point only at http:// or https:// files"
                ),
            );
            // Not even from a page the user keeps in a folder.
            refused(&text, "file:///srv/index/simple/p/", "$.files[0].url: ");
        }
        let wheels = parse_project_page(
            &page(&name, "\"../../files/x.whl\"", &sha, ""),
            "file:///srv/index/simple/p/",
        )
        .expect("a relative file in the user's own folder index");
        assert_eq!(wheels[0].url, "file:///srv/index/files/x.whl");
    }

    #[test]
    fn sizes_are_byte_counts() {
        let name = format!("\"{NAME}\"");
        let sha = format!("\"{}\"", "d".repeat(64));
        for size in ["\"12\"", "-1", "1.5", "true"] {
            let text = page(&name, "\"x.whl\"", &sha, &format!(r#", "size": {size}"#));
            refused(&text, PAGE, "$.files[0].size: expected a byte count");
        }
        let wheels = parse_project_page(&page(&name, "\"x.whl\"", &sha, r#", "size": 12"#), PAGE)
            .expect("parses");
        assert_eq!(wheels[0].size, Some(12));
        let wheels = parse_project_page(&page(&name, "\"x.whl\"", &sha, ""), PAGE).expect("parses");
        assert_eq!(wheels[0].size, None);
    }
}
