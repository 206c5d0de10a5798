//! End-to-end tests of what `cudapkgs build` resolves: a PyPI-shaped simple index on
//! 127.0.0.1 with NVIDIA's real `cuda-toolkit` wheels and the real core metadata of
//! cuDNN, cuSOLVER, cuSPARSE and cuBLAS wheels (`crates/redist/tests/data/pypi`), a
//! mirror in NVIDIA's layout with a separate cuDNN product folder, and a real build
//! from real wheels whose index serves no metadata files.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Server, repo, run, s};

/// The real files of PyPI this test serves.
fn pypi_data(name: &str) -> PathBuf {
    repo().join("crates/redist/tests/data/pypi").join(name)
}

fn sha256(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("f");
    std::fs::write(&path, bytes).expect("write");
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .expect("sha256sum");
    let mut text = String::new();
    let _ = write!(
        text,
        "{}",
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .expect("digest")
    );
    text
}

/// One file of a project page.
struct File {
    filename: String,
    /// The core metadata the index offers beside it (PEP 658), if any.
    metadata: Option<String>,
    /// The wheel's bytes, when the test serves it; else its page entry points at a
    /// file that is not there (a dry run never downloads it).
    bytes: Option<Vec<u8>>,
}

/// A wheel listed with its real core metadata file.
fn with_metadata(filename: &str) -> File {
    let metadata = std::fs::read_to_string(pypi_data(&format!("{filename}.METADATA")))
        .expect("recorded metadata");
    File {
        filename: filename.to_owned(),
        metadata: Some(metadata),
        bytes: None,
    }
}

/// A wheel that requires nothing (as NVIDIA's runtime, NVRTC and nvJitLink wheels),
/// its metadata written with name and version.
fn leaf(project: &str, version: &str) -> File {
    let stem = project.replace('-', "_");
    File {
        filename: format!("{stem}-{version}-py3-none-manylinux_2_27_x86_64.whl"),
        metadata: Some(format!(
            "Metadata-Version: 2.4\nName: {project}\nVersion: {version}\n"
        )),
        bytes: None,
    }
}

/// A served wheel, with no metadata file (as the index this machine reaches serves).
fn served(path: &Path) -> File {
    File {
        filename: path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned(),
        metadata: None,
        bytes: Some(std::fs::read(path).expect("wheel")),
    }
}

/// Writes `project`'s page and files under the index at `root`.
fn project(root: &Path, name: &str, files: Vec<File>) {
    let page_dir = root.join("simple").join(name);
    std::fs::create_dir_all(&page_dir).expect("mkdir");
    std::fs::create_dir_all(root.join("files")).expect("mkdir");
    let mut entries = Vec::new();
    for file in files {
        let digest = match &file.bytes {
            Some(bytes) => {
                std::fs::write(root.join("files").join(&file.filename), bytes).expect("write");
                sha256(bytes)
            }
            None => sha256(file.filename.as_bytes()),
        };
        let mut entry = serde_json::json!({
            "filename": file.filename,
            "url": format!("../../files/{}", file.filename),
            "hashes": {"sha256": digest},
        });
        if let Some(metadata) = &file.metadata {
            std::fs::write(
                root.join("files")
                    .join(format!("{}.metadata", file.filename)),
                metadata,
            )
            .expect("write");
            entry["core-metadata"] = serde_json::json!({"sha256": sha256(metadata.as_bytes())});
        }
        entries.push(entry);
    }
    let page = serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": entries});
    std::fs::write(page_dir.join("index.json"), page.to_string()).expect("write");
}

/// An index of CUDA 12 wheels: two real cuda-toolkit releases, cuSOLVER, cuSPARSE,
/// cuBLAS and cuDNN with their real metadata, newer and pre-release versions beside.
fn cuda12_index(root: &Path) {
    project(
        root,
        "cuda-toolkit",
        vec![
            served(&pypi_data("cuda_toolkit-12.6.3-py2.py3-none-any.whl")),
            served(&pypi_data("cuda_toolkit-13.0.2-py2.py3-none-any.whl")),
        ],
    );
    project(
        root,
        "nvidia-cusolver-cu12",
        vec![
            with_metadata("nvidia_cusolver_cu12-11.7.1.2-py3-none-manylinux2014_x86_64.whl"),
            with_metadata("nvidia_cusolver_cu12-11.7.5.82-py3-none-manylinux_2_27_x86_64.whl"),
        ],
    );
    project(
        root,
        "nvidia-cusparse-cu12",
        vec![with_metadata(
            "nvidia_cusparse_cu12-12.5.4.2-py3-none-manylinux2014_x86_64.whl",
        )],
    );
    project(
        root,
        "nvidia-cublas-cu12",
        vec![
            with_metadata(
                "nvidia_cublas_cu12-12.6.4.1-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            ),
            leaf("nvidia-cublas-cu12", "12.9.1.4"),
        ],
    );
    project(
        root,
        "nvidia-cudnn-cu12",
        vec![
            with_metadata("nvidia_cudnn_cu12-9.28.0.42-py3-none-manylinux_2_27_x86_64.whl"),
            leaf("nvidia-cudnn-cu12", "9.28.0.42.dev76646929"),
            leaf("nvidia-cudnn-cu12", "9.29.0.1rc1"),
        ],
    );
    for project_name in ["nvidia-nvjitlink-cu12", "nvidia-cuda-nvrtc-cu12"] {
        project(
            root,
            project_name,
            vec![leaf(project_name, "12.6.85"), leaf(project_name, "12.9.86")],
        );
    }
}

/// `cudapkgs -v build --dry-run --index-url …/simple --cache CACHE` and `args`.
fn plan(server: &Server, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let index = format!("{}/simple", server.url());
    let mut all = vec!["-v", "build", "--dry-run"];
    all.extend(common::index_args(&index, cache));
    all.extend_from_slice(args);
    run(&all)
}

/// The `PACKAGE VERSION` of each plan line, and the reason it gives.
fn planned(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| !line.starts_with("then:"))
        .map(|line| {
            let mut words = line.split_whitespace();
            let name = format!(
                "{} {}",
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default()
            );
            let why = line
                .rsplit_once("  (")
                .filter(|(_, why)| *why != "cached)")
                .map(|(_, why)| why.trim_end_matches(')').to_owned())
                .unwrap_or_default();
            (name, why)
        })
        .collect()
}

#[test]
fn a_release_gives_its_own_wheels_and_what_they_require() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("index");
    cuda12_index(&root);
    let server = Server::serve_dir(&root);
    let cache = dir.path().join("cache");

    // cuSOLVER of CUDA 12.6 brings cuBLAS, cuSPARSE and nvJitLink (its Requires-Dist),
    // and NVRTC, which cuBLASLt loads; each at the version cuda-toolkit 12.6.3 pins,
    // although newer ones are on the index.
    let (code, text, stderr) = plan(&server, &cache, &["--cuda", "12.6", "libcusolver"]);
    assert_eq!(code, 0, "{stderr}");
    let expected = [
        ("libcusolver 11.7.1.2", ""),
        ("libcublas 12.6.4.1", "required by libcusolver"),
        (
            "libnvjitlink 12.6.85",
            "required by libcusolver, required by libcusparse",
        ),
        ("libcusparse 12.5.4.2", "required by libcusolver"),
        ("cuda_nvrtc 12.6.85", "needed by libcublas's libraries"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(planned(&text), expected, "{text}");
    assert!(
        stderr.contains("CUDA 12.6.3 from cuda-toolkit 12.6.3 on"),
        "{stderr}"
    );
    // The plan read metadata files and the tiny toolkit wheel, never a component wheel.
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.contains("/files/") && r.contains(".whl "))
            .all(|r| r.contains("cuda_toolkit-12.6.3")),
        "{requests:?}"
    );

    // A major alone takes its newest release whose pins admit an exact pin.
    let (code, text, stderr) = plan(&server, &cache, &["--cuda", "12", "--no-deps", "libcublas"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.starts_with("libcublas 12.6.4.1 "), "{text}");
    let (code, _, stderr) = plan(&server, &cache, &["--cuda", "12", "libcublas==12.9.1.4"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no release of CUDA 12 has nvidia-cublas-cu12 12.9.1.4")
            && stderr.contains("CUDA 12.6.3 pins nvidia-cublas-cu12==12.6.4.1.*"),
        "{stderr}"
    );
    // A release the index does not have is refused, naming those it has.
    let (code, _, stderr) = plan(&server, &cache, &["--cuda", "12.7", "libcublas"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("CUDA 12.7: ") && stderr.contains("has no such release of cuda-toolkit"),
        "{stderr}"
    );
    assert!(
        stderr.contains("releases there: 12.6.3, 13.0.2"),
        "{stderr}"
    );
    // A version outside the release is refused, with the release named.
    let (code, _, stderr) = plan(
        &server,
        &cache,
        &["--cuda", "12.6.3", "libcublas==12.9.1.4"],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("nvidia-cublas-cu12: no wheel of") && stderr.contains("(CUDA 12.6.3)"),
        "{stderr}"
    );
}

#[test]
fn pre_releases_only_when_asked_and_metadata_files_verified() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("index");
    cuda12_index(&root);
    let server = Server::serve_dir(&root);
    let cache = dir.path().join("cache");

    // cuDNN brings cuBLAS (declared) and NVRTC (loaded by its sub-libraries); its
    // development builds and release candidates are left out unless asked for.
    let (code, text, stderr) = plan(&server, &cache, &["--cuda", "12.6", "cudnn"]);
    assert_eq!(code, 0, "{stderr}");
    let names: Vec<String> = planned(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "cudnn 9.28.0.42",
            "libcublas 12.6.4.1",
            "cuda_nvrtc 12.6.85"
        ],
        "{text}"
    );
    let (code, text, stderr) = plan(&server, &cache, &["--cuda", "12.6", "--pre", "cudnn"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.starts_with("cudnn 9.29.0.1rc1 "), "{text}");
    let (code, text, stderr) = plan(
        &server,
        &cache,
        &[
            "--cuda",
            "12.6",
            "--no-deps",
            "cudnn==9.28.0.42.dev76646929",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned(&text).len(), 1, "{text}");
    assert!(text.starts_with("cudnn 9.28.0.42.dev76646929 "), "{text}");

    // A metadata file that is not the one the index's hash names is refused.
    let metadata =
        root.join("files/nvidia_cusolver_cu12-11.7.1.2-py3-none-manylinux2014_x86_64.whl.metadata");
    let text = std::fs::read_to_string(&metadata).expect("metadata");
    std::fs::write(
        &metadata,
        text.replace("Requires-Dist: nvidia-cublas-cu12\n", ""),
    )
    .expect("write");
    let (code, _, stderr) = plan(&server, &cache, &["--cuda", "12.6", "libcusolver"]);
    common::assert_refused(code, &stderr, "sha256 mismatch");
}

#[test]
fn refusals_that_a_flag_would_lift_name_the_flag_in_their_hint() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("index");
    cuda12_index(&root);
    let server = Server::serve_dir(&root);
    let cache = dir.path().join("cache");

    // Only a release candidate is new enough: `--pre` would take it.
    let (code, _, stderr) = plan(&server, &cache, &["--cuda", "12.6", "cudnn>=9.29"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: nvidia-cudnn-cu12: no wheel"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: only pre-releases match (9.29.0.1rc1); pass --pre to take them"),
        "{stderr}"
    );

    // An index without cuda-toolkit knows no release's wheels: `--cuda 12` would do.
    let bare = dir.path().join("bare");
    project(
        &bare,
        "nvidia-cudnn-cu12",
        vec![leaf("nvidia-cudnn-cu12", "9.28.0.42")],
    );
    let server = Server::serve_dir(&bare);
    let (code, _, stderr) = plan(&server, &cache, &["--cuda", "12.6", "cudnn"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("has no cuda-toolkit, so the wheels of CUDA 12.6 are not known"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: give the major alone (--cuda 12) for the newest wheels"),
        "{stderr}"
    );
}

/// The mirror of NVIDIA's layout under `root`: a CUDA 12.9.1 manifest (NVIDIA's record
/// of cudart, cuBLAS and NVRTC, with cuSOLVER, cuSPARSE and nvJitLink at the versions of
/// that release), and cuDNN's folder with NVIDIA's 9.13.0 manifest and a newer one
/// without a CUDA 12 archive. Nothing is downloaded: archive records are never fetched.
fn nvidia_mirror(root: &Path) {
    let data = repo().join("crates/redist/tests/data");
    let cuda = root.join("cuda/redist");
    std::fs::create_dir_all(&cuda).expect("mkdir");
    let mut manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("redistrib_cuda_12.9.1.json")).expect("manifest"),
    )
    .expect("json");
    for (key, version) in [
        ("libcusolver", "11.7.5.82"),
        ("libcusparse", "12.5.10.65"),
        ("libnvjitlink", "12.9.86"),
    ] {
        let relative = format!("{key}/linux-x86_64/{key}-linux-x86_64-{version}-archive.tar.xz");
        manifest[key] = serde_json::json!({
            "name": key, "version": version,
            "linux-x86_64": {"relative_path": relative, "sha256": sha256(key.as_bytes()), "size": "1000"},
        });
    }
    std::fs::write(cuda.join("redistrib_12.9.1.json"), manifest.to_string()).expect("write");
    std::fs::write(cuda.join("redistrib_12.8.1.json"), "{}").expect("write");
    let cudnn = root.join("cudnn/redist");
    std::fs::create_dir_all(&cudnn).expect("mkdir");
    std::fs::copy(
        data.join("redistrib_cudnn_9.13.0.json"),
        cudnn.join("redistrib_9.13.0.json"),
    )
    .expect("copy");
    let mut newer: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("redistrib_cudnn_9.13.0.json")).expect("manifest"),
    )
    .expect("json");
    newer["cudnn"]["version"] = serde_json::json!("9.14.0.1");
    newer["cudnn"]["cuda_variant"] = serde_json::json!(["13"]);
    let only_13 = newer["cudnn"]["linux-x86_64"]["cuda13"].clone();
    newer["cudnn"]["linux-x86_64"] = serde_json::json!({ "cuda13": only_13 });
    std::fs::write(cudnn.join("redistrib_9.14.0.json"), newer.to_string()).expect("write");
}

#[test]
fn nvidia_releases_reach_separate_products_and_bring_what_libraries_need() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("mirror");
    nvidia_mirror(&root);
    let server = Server::serve_dir(&root);
    let cache = dir.path().join("cache");
    let url = server.url();
    let nvidia = |args: &[&str]| run(&[&common::dry_run_args(&url, &cache)[..], args].concat());
    // `--cuda 12.9` is the newest 12.9 release the mirror lists; cuSOLVER brings cuBLAS,
    // cuSPARSE and nvJitLink, cuBLAS brings NVRTC; cuDNN comes from its own folder, the
    // newest manifest with a CUDA 12 archive (9.14.0 has only CUDA 13's).
    let (code, text, stderr) = nvidia(&["--cuda", "12.9", "libcusolver", "cudnn"]);
    assert_eq!(code, 0, "{stderr}");
    let names: Vec<String> = planned(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "libcusolver 11.7.5.82",
            "cudnn 9.13.0.50",
            "libcublas 12.9.1.4",
            "libcusparse 12.5.10.65",
            "libnvjitlink 12.9.86",
            "cuda_nvrtc 12.9.86",
        ],
        "{text}"
    );
    // With --json, the same plan as one document, each package with what needs it.
    let (code, plan, stderr) = nvidia(&["--json", "--cuda", "12.9", "libcusolver", "cudnn"]);
    assert_eq!(code, 0, "{stderr}");
    common::schema::assert_fits("build-plan", &plan);
    let plan: serde_json::Value = serde_json::from_str(&plan).expect("json");
    let listed: Vec<String> = plan
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["package"].as_str().expect("package"),
                p["version"].as_str().expect("version")
            )
        })
        .collect();
    assert_eq!(listed, names, "{plan:#}");
    assert_eq!(
        plan[2]["required_by"],
        serde_json::json!(["libcusolver", "cudnn"]),
        "{plan:#}"
    );
    let cudnn_line = text
        .lines()
        .find(|l| l.starts_with("cudnn "))
        .expect("cudnn");
    assert!(
        cudnn_line.contains(
            "/cudnn/redist/cudnn/linux-x86_64/cudnn-linux-x86_64-9.13.0.50_cuda12-archive.tar.xz"
        ),
        "{cudnn_line}"
    );
    let cublas = planned(&text)
        .into_iter()
        .find(|(n, _)| n.starts_with("libcublas"))
        .expect("cuBLAS");
    assert_eq!(
        cublas.1,
        "needed by libcusolver's libraries, needed by cudnn's libraries"
    );
    // For CUDA 13, the newer cuDNN manifest serves.
    let (code, text, stderr) = nvidia(&["--cuda", "12.9.1", "--no-deps", "cudnn"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.starts_with("cudnn 9.13.0.50 "), "{text}");
    // A release the mirror does not list is refused with those it lists.
    let (code, _, stderr) = nvidia(&["--cuda", "12.6", "libcublas"]);
    common::assert_refused(code, &stderr, "CUDA 12.6: ");
    assert!(
        stderr.contains("releases there: 12.8.1, 12.9.1"),
        "{stderr}"
    );
    // A package of no release is refused by name.
    let (code, _, stderr) = nvidia(&["--cuda", "12.9.1", "libnothing"]);
    common::assert_refused(code, &stderr, "CUDA 12.9.1 has no package `libnothing`");
    assert!(
        stderr.contains("hint: `cudapkgs redist list --release 12.9.1` shows the packages"),
        "{stderr}"
    );
}

#[test]
fn a_build_from_real_wheels_reads_requirements_from_the_verified_wheels() {
    if cudapkgs_testkit::mirror::wheel("nvidia_cuda_runtime-13.").is_none() {
        return;
    }
    let wheel = |prefix: &str| cudapkgs_testkit::mirror::wheel(prefix).expect("the wheels");
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("index");
    // No metadata files, as the index this machine reaches serves: nvcc's requirements
    // (NVVM, the runtime, the compiler front end's headers) come from its wheel, once
    // downloaded and verified. A newer nvcc than CUDA 13.0.2's is listed and never taken.
    project(
        &root,
        "cuda-toolkit",
        vec![served(&pypi_data(
            "cuda_toolkit-13.0.2-py2.py3-none-any.whl",
        ))],
    );
    let mut nvcc = vec![served(&wheel("nvidia_cuda_nvcc-13.0.88-"))];
    nvcc.push(leaf("nvidia-cuda-nvcc", "13.5.37"));
    project(&root, "nvidia-cuda-nvcc", nvcc);
    project(
        &root,
        "nvidia-nvvm",
        vec![served(&wheel("nvidia_nvvm-13.0.88-"))],
    );
    project(
        &root,
        "nvidia-cuda-runtime",
        vec![served(&wheel("nvidia_cuda_runtime-13.0.96-"))],
    );
    project(
        &root,
        "nvidia-cuda-crt",
        vec![served(&wheel("nvidia_cuda_crt-13.0.88-"))],
    );
    let server = Server::serve_dir(&root);
    let index = format!("{}/simple", server.url());
    let store = dir.path().join("store");
    let (code, stdout, stderr) = run(&[
        "--json",
        "build",
        "--cuda",
        "13.0",
        "--index-url",
        &index,
        "--cache",
        s(&dir.path().join("cache")),
        "--system",
        "linux-x86_64",
        "--store-dir",
        s(&store),
        "cuda_nvcc",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let built: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let mut versions: Vec<(String, String)> = built
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["package"].as_str().expect("name").to_owned(),
                p["version"].as_str().expect("version").to_owned(),
            )
        })
        .collect();
    versions.sort();
    let expected: Vec<(String, String)> = [
        ("cuda_crt", "13.0.88"),
        ("cuda_cudart", "13.0.96"),
        ("cuda_nvcc", "13.0.88"),
        ("libnvvm", "13.0.88"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(versions, expected, "{stdout}");
    // Each wheel was downloaded once (nvcc's to read its requirements, then built from
    // the cache), and the newer nvcc never.
    let requests = server.requests();
    let downloads: Vec<&String> = requests.iter().filter(|r| r.contains(".whl ")).collect();
    assert_eq!(downloads.len(), 5, "{downloads:?}");
    assert!(
        !requests.iter().any(|r| r.contains("13.5.37")),
        "{requests:?}"
    );
}

/// `redist wheel` takes its release as every command does: `--cuda`, else
/// `CUDAPKGS_CUDA`, else `[cuda] version`, else 13; its major picks the wheels.
#[test]
fn the_release_setting_picks_the_wheels_redist_wheel_fetches() {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("index");
    let runtime = "nvidia_cuda_runtime_cu12-12.9.79-py3-none-manylinux_2_27_x86_64.whl";
    project(
        &root,
        "nvidia-cuda-runtime-cu12",
        vec![File {
            filename: runtime.to_owned(),
            metadata: None,
            bytes: Some(b"the bytes of a wheel".to_vec()),
        }],
    );
    let server = Server::serve_dir(&root);
    let index = format!("{}/simple", server.url());
    let cache = dir.path().join("cache");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    let wheel = |extra: &[&str], env: &[(&str, &str)]| {
        crate::common::cudapkgs()
            .args([
                "redist",
                "wheel",
                "--index-url",
                &index,
                "--cache",
                s(&cache),
            ])
            .args(["--system", "linux-x86_64"])
            .args(extra)
            .arg("cuda_cudart")
            .envs(env.iter().copied())
            .current_dir(&work)
            .run()
            .into_parts()
    };
    let fetched_cu12 = move |(code, stdout, stderr): (i32, String, String)| {
        assert_eq!(code, 0, "{stderr}");
        let (name, path) = stdout.trim().split_once("  ").expect("NAME  PATH");
        assert_eq!(name, runtime, "{stdout}");
        // Under its own name, as pip needs it.
        assert_eq!(
            Path::new(path).file_name().and_then(|n| n.to_str()),
            Some(runtime),
            "{stdout}"
        );
        assert_eq!(
            std::fs::read(path).expect("fetched"),
            b"the bytes of a wheel",
            "{stdout}"
        );
    };
    // The default release, 13, has no wheel on this index (its projects carry no
    // `-cu13` suffix).
    let (code, _, stderr) = wheel(&[], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no project `nvidia-cuda-runtime`"),
        "{stderr}"
    );
    fetched_cu12(wheel(&["--cuda", "12"], &[]));
    fetched_cu12(wheel(&[], &[("CUDAPKGS_CUDA", "12.6")]));
    std::fs::write(work.join("cudapkgs.toml"), "[cuda]\nversion = \"12.9\"\n").expect("write");
    fetched_cu12(wheel(&[], &[]));
    // The flag wins over the file.
    let (code, _, stderr) = wheel(&["--cuda", "13"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no project `nvidia-cuda-runtime`"),
        "{stderr}"
    );
}

/// What `redist wheel` prints is a path pip installs: the wheel under its own name.
#[test]
fn a_fetched_wheel_is_a_path_pip_installs() {
    let (Some(python), Some(runtime)) = (
        crate::common::tool("python3"),
        cudapkgs_testkit::mirror::wheel("nvidia_cuda_runtime-13."),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("index");
    project(&root, "nvidia-cuda-runtime", vec![served(&runtime)]);
    let server = Server::serve_dir(&root);
    let index = format!("{}/simple", server.url());
    let cache = dir.path().join("cache");
    let (code, stdout, stderr) = crate::common::cudapkgs()
        .args([
            "--json",
            "redist",
            "wheel",
            "--cuda",
            "13",
            "--index-url",
            &index,
        ])
        .args([
            "--cache",
            s(&cache),
            "--system",
            "linux-x86_64",
            "cuda_cudart",
        ])
        .run()
        .into_parts();
    assert_eq!(code, 0, "{stderr}");
    let fetched: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let path = fetched[0]["path"].as_str().expect("path");
    let target = dir.path().join("site");
    let installed = std::process::Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "--no-deps", "--no-index"])
        .args(["--disable-pip-version-check", "--target"])
        .arg(&target)
        .arg(path)
        .output()
        .expect("pip runs");
    assert!(
        installed.status.success(),
        "pip install {path}: {}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(
        target.join("nvidia/cu13/lib/libcudart.so.13").is_file(),
        "pip installed no libcudart.so.13 under {}",
        target.display()
    );
}
