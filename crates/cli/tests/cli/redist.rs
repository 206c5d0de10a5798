//! End-to-end tests of `cudapkgs redist`, `split` and `features` against a mirror in
//! NVIDIA's layout, built from real PyPI wheels (`cudapkgs_testkit::mirror`) and served
//! by a real HTTP server on 127.0.0.1 (`cudapkgs_testkit::Server`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Server, mirror, repo, run, run_within, s, served_mirror};

/// `cudapkgs --json ARGS`, which must succeed and print the document `schema` names.
fn json(schema: &str, args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = run(&[&["--json"][..], args].concat());
    assert_eq!(code, 0, "{args:?}: {stderr}");
    common::schema::assert_fits(schema, &stdout);
    serde_json::from_str(&stdout).expect("json")
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// `--release 13.0.2 --base-url <server> --cache <cache>`.
fn release_at(server: &Server, cache: &Path) -> Vec<String> {
    [
        "--release",
        "13.0.2",
        "--base-url",
        &server.url(),
        "--cache",
        s(cache),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn manifest(mirror: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(mirror.join("cuda/redist/redistrib_13.0.2.json"))
        .expect("manifest");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn fetch_resumes_interrupted_downloads_and_never_downloads_twice() {
    let Some(mirror) = mirror() else { return };
    let dir = tempfile::tempdir().expect("temp");
    // Every archive's first transfer breaks off after 200 kB.
    let server = Server::serve_dir(&mirror).fault(common::Fault::Truncate(200_000).first(1));
    let cache = dir.path().join("cache");
    let source = release_at(&server, &cache);
    let source: Vec<&str> = source.iter().map(String::as_str).collect();

    let listed = json("redist-list", &[&["redist", "list"][..], &source].concat());
    let expected = manifest(&mirror);
    for row in listed.as_array().expect("rows") {
        let key = row["package"].as_str().expect("key");
        assert_eq!(row["version"], expected[key]["version"]);
        let size: u64 = expected[key]["linux-x86_64"]["size"]
            .as_str()
            .expect("size")
            .parse()
            .expect("n");
        assert_eq!(row["archives"], serde_json::json!([["", size]]));
    }

    let fetched = json(
        "redist-fetch",
        &[&["redist", "fetch"][..], &source].concat(),
    );
    for item in fetched.as_array().expect("list") {
        let key = item["package"].as_str().expect("key");
        let path = Path::new(item["path"].as_str().expect("path"));
        let want = expected[key]["linux-x86_64"]["sha256"]
            .as_str()
            .expect("sha");
        assert_eq!(sha256(path), want, "{key}");
    }
    let requests = server.requests();
    let resumed = requests
        .iter()
        .filter(|r| r.ends_with("bytes=200000-"))
        .count();
    assert_eq!(
        resumed, 2,
        "each archive resumed from byte 200000: {requests:?}"
    );

    // A second fetch reads the manifest and nothing else.
    let before = server.requests().len();
    json(
        "redist-fetch",
        &[&["redist", "fetch"][..], &source].concat(),
    );
    let after = server.requests();
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert!(after[before].contains("redistrib_13.0.2.json"));
}

#[test]
fn a_download_left_by_an_earlier_run_is_resumed_and_a_wrong_hash_deleted() {
    let Some(mirror) = mirror() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let server = Server::serve_dir(&mirror);
    let cache = dir.path().join("cache");
    let expected = manifest(&mirror);
    let record = &expected["cuda_cudart"]["linux-x86_64"];
    let sha = record["sha256"].as_str().expect("sha");
    let archive = mirror
        .join("cuda/redist")
        .join(record["relative_path"].as_str().expect("path"));
    // What a killed run leaves: the first bytes under partial/<sha256>.
    std::fs::create_dir_all(cache.join("partial")).expect("mkdir");
    let bytes = std::fs::read(&archive).expect("archive");
    std::fs::write(cache.join("partial").join(sha), &bytes[..300_000]).expect("write");
    let source = release_at(&server, &cache);
    let source: Vec<&str> = source.iter().map(String::as_str).collect();
    let (code, out, stderr) = run(&[&["redist", "fetch"][..], &source, &["cuda_cudart"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains(sha));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.ends_with("bytes=300000-"))
    );
    assert_eq!(sha256(&cache.join("sha256").join(sha)), sha);

    // A mirror whose manifest lies about the hash: the download is deleted.
    let liar = dir.path().join("liar");
    let folder = liar.join("cuda/redist");
    let relative = record["relative_path"].as_str().expect("path");
    std::fs::create_dir_all(folder.join(relative).parent().expect("parent")).expect("mkdir");
    std::fs::copy(&archive, folder.join(relative)).expect("copy");
    let mut lying = expected.clone();
    let fake = "0".repeat(64);
    lying["cuda_cudart"]["linux-x86_64"]["sha256"] = serde_json::json!(fake);
    std::fs::write(folder.join("redistrib_13.0.2.json"), lying.to_string()).expect("write");
    let liar_server = Server::serve_dir(&liar);
    let liar_cache = dir.path().join("liar-cache");
    let source = release_at(&liar_server, &liar_cache);
    let source: Vec<&str> = source.iter().map(String::as_str).collect();
    let (code, _, stderr) = run(&[&["redist", "fetch"][..], &source, &["cuda_cudart"]].concat());
    common::assert_refused(
        code,
        &stderr,
        &format!("sha256 mismatch: expected {fake}, got {sha}"),
    );
    let kept = kept(&liar_cache);
    assert!(kept.is_empty(), "left in the cache: {kept:?}");

    let (code, _, stderr) = run(&[
        "redist",
        "list",
        "--release",
        "9.9.9",
        "--base-url",
        &server.url(),
        "--cache",
        s(&cache),
    ]);
    common::assert_refused(code, &stderr, "no manifest for cuda 9.9.9");
}

/// What a cache holds but its locks (which stay, so that a waiting process keeps its own).
/// Downloads the cache holds (lock files aside, and the copies of documents that parsed,
/// which offline runs read).
fn kept(cache: &Path) -> Vec<String> {
    walk(cache)
        .into_iter()
        .filter(|p| Path::new(p).extension().is_none_or(|e| e != "lock"))
        .filter(|p| !Path::new(p).starts_with(cache.join("documents")))
        .collect()
}

/// Regular files under `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// SASS architectures cuobjdump lists in `file`.
fn cuobjdump_architectures(file: &Path) -> Vec<String> {
    let tool = repo().join(".tools/nvidia/nvidia/cu13/bin/cuobjdump");
    let out = Command::new(tool)
        .args(["-lelf"])
        .arg(file)
        .output()
        .expect("cuobjdump");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|line| {
            line.split('.')
                .find(|part| part.starts_with("sm_"))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn fetch_split_and_features_of_a_release() {
    let Some(server) = served_mirror() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let source = release_at(&server, &cache);
    let source: Vec<&str> = source.iter().map(String::as_str).collect();
    let fetched = json(
        "redist-fetch",
        &[&["redist", "fetch"][..], &source, &["cuda_cudart"]].concat(),
    );
    let archive = PathBuf::from(fetched[0]["path"].as_str().expect("path"));

    let out = dir.path().join("cudart");
    let split = json("split", &["split", s(&archive), "--out", s(&out)]);
    let outputs: Vec<&str> = split["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| o["output"].as_str().expect("name"))
        .collect();
    assert_eq!(outputs, ["out", "dev", "include", "lib", "static"]);
    assert_eq!(
        std::fs::read_link(out.join("lib/lib/libcudart.so.13")).expect("link kept"),
        Path::new("libcudart.so.13.0.96")
    );
    assert!(out.join("static/lib/libcudart_static.a").is_file());
    assert!(out.join("include/include/cuda_runtime.h").is_file());
    assert!(
        !out.join("lib/lib/libcudart_static.a").exists(),
        "static libraries leave lib"
    );
    let pc = std::fs::read_to_string(out.join("dev/share/pkgconfig/cudart-13.0.pc")).expect("pc");
    assert!(
        pc.contains(&format!("libdir={}/lib\n", out.join("lib").display())),
        "{pc}"
    );
    assert!(
        pc.contains(&format!(
            "includedir={}/include\n",
            out.join("include").display()
        )),
        "{pc}"
    );
    assert!(!pc.contains("/usr/"), "{pc}");
    // `out` is the whole package: its own files and links to every other output's.
    assert!(out.join("out/LICENSE").is_file());
    assert_eq!(
        std::fs::read(out.join("out/lib/libcudart.so.13.0.96")).expect("through the link"),
        std::fs::read(out.join("lib/lib/libcudart.so.13.0.96")).expect("lib")
    );
    let (code, _, stderr) = run(&["split", s(&archive), "--out", s(&out)]);
    assert_eq!(code, 2, "an existing --out is refused");
    assert!(stderr.contains("already exists"), "{stderr}");

    let features = json("features", &[&["features"][..], &source].concat());
    let cudart = &features["cuda_cudart"]["linux-x86_64"];
    assert_eq!(
        cudart["outputs"],
        serde_json::json!({"bin": false, "dev": true, "doc": false, "lib": true, "sample": false, "static": true})
    );
    assert_eq!(
        cudart["providedLibs"],
        serde_json::json!(["libcudart.so.13"])
    );
    let mut oracle: Vec<String> = ["libcudadevrt.a", "libcudart_static.a"]
        .iter()
        .flat_map(|lib| cuobjdump_architectures(&out.join("static/lib").join(lib)))
        .collect();
    oracle.sort_by_key(|arch| arch[3..].parse::<u32>().unwrap_or(0));
    oracle.dedup();
    assert!(!oracle.is_empty());
    assert_eq!(cudart["cudaArchitectures"], serde_json::json!(oracle));
    let nvrtc = &features["cuda_nvrtc"]["linux-x86_64"];
    assert_eq!(
        nvrtc["providedLibs"],
        serde_json::json!(["libnvrtc-builtins.so.13.0", "libnvrtc.so.13"])
    );
    let needed = nvrtc["neededLibs"].as_array().expect("needed");
    assert!(needed.contains(&serde_json::json!("libc.so.6")));
    assert!(
        !needed
            .iter()
            .any(|lib| lib.as_str().is_some_and(|l| l.starts_with("libnvrtc")))
    );
}

/// Runs cudapkgs with only `vars` in its environment.
fn run_with(vars: &[(&str, &Path)], args: &[&str]) -> (i32, String, String) {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(name, value)| (*name, s(value))).collect();
    run_within(LIMIT, &vars, args)
}

/// Long enough for any command here; the hostile inputs below used to hang.
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn wheels_resolve_through_a_simple_index_and_split_like_archives() {
    if mirror().is_none() {
        return;
    }
    let wheel = std::fs::read_dir(repo().join(".tools/nvidia/wheels"))
        .expect("wheels")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("nvidia_cuda_runtime-"))
        })
        .expect("the cudart wheel");
    let name = wheel
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("index");
    std::fs::create_dir_all(root.join("files")).expect("mkdir");
    std::fs::copy(&wheel, root.join("files").join(&name)).expect("copy");
    let project = root.join("simple/nvidia-cuda-runtime");
    std::fs::create_dir_all(&project).expect("mkdir");
    let page = serde_json::json!({
        "meta": {"api-version": "1.1"},
        "name": "nvidia-cuda-runtime",
        "files": [
            {"filename": name, "url": format!("../../files/{name}"), "hashes": {"sha256": sha256(&wheel)}},
            {"filename": name.replace("x86_64", "aarch64"), "url": "../../files/none.whl", "hashes": {"sha256": "0".repeat(64)}},
        ],
    });
    std::fs::write(project.join("index.json"), page.to_string()).expect("write");
    let server = Server::serve_dir(&root);
    let index = format!("{}/simple", server.url());

    // The index from pip's own configuration file.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".config/pip")).expect("mkdir");
    std::fs::write(
        home.join(".config/pip/pip.conf"),
        format!("[global]\nindex-url = {index}\n"),
    )
    .expect("write");
    let (code, out, stderr) = run_with(&[("HOME", &home)], &["redist", "wheel", "cuda_cudart"]);
    assert_eq!(code, 0, "{stderr}");
    let path = out.split_whitespace().nth(1).expect("a path");
    assert_eq!(sha256(Path::new(path)), sha256(&wheel));
    assert!(path.starts_with(s(&home.join(".cache/cudapkgs"))), "{path}");
    // The same as one document, with the wheel's own name.
    let (code, document, stderr) = run_with(
        &[("HOME", &home)],
        &["--json", "redist", "wheel", "cuda_cudart"],
    );
    assert_eq!(code, 0, "{stderr}");
    common::schema::assert_fits("redist-wheel", &document);
    let document: serde_json::Value = serde_json::from_str(&document).expect("json");
    assert_eq!(document[0]["path"], path, "{document:#}");
    assert_eq!(document[0]["wheel"], name, "{document:#}");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /simple/nvidia-cuda-runtime/ "))
    );

    // PIP_INDEX_URL wins over the file (now naming a closed port); a version with no
    // wheel is refused with the choices.
    std::fs::write(
        home.join(".config/pip/pip.conf"),
        "[global]\nindex-url = http://127.0.0.1:9/simple\n",
    )
    .expect("write");
    let cache = dir.path().join("cache");
    let (code, _, stderr) = run_with(
        &[
            ("HOME", &home),
            ("PIP_INDEX_URL", Path::new(&index)),
            ("CUDAPKGS_CACHE", &cache),
        ],
        &["redist", "wheel", "cuda_cudart==1.0"],
    );
    common::assert_refused(code, &stderr, "no wheel of version 1.0 for linux-x86_64");
    assert!(stderr.contains("versions with a wheel: "), "{stderr}");

    // A wheel splits like NVIDIA's archive of the same component.
    let out = dir.path().join("split");
    let split = json("split", &["split", path, "--out", s(&out)]);
    let outputs: Vec<&str> = split["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| o["output"].as_str().expect("name"))
        .collect();
    assert_eq!(outputs, ["out", "include", "lib", "static"]);
    assert!(out.join("lib/lib/libcudart.so.13").is_file());
    assert!(out.join("out/LICENSE").is_file());
    assert!(!out.join("out/nvidia").exists());
}

const WHEEL: &str = "nvidia_cuda_runtime-13.0.96-py3-none-manylinux_2_27_x86_64.whl";

/// A simple index under `dir/index`, served on 127.0.0.1: the project page of
/// nvidia-cuda-runtime lists `files` as given, and `files/` holds `wheels`.
fn hostile_index(dir: &Path, files: &serde_json::Value, wheels: &[(&str, &[u8])]) -> Server {
    let root = dir.join("index");
    write_page(&root, files);
    std::fs::create_dir_all(root.join("files")).expect("mkdir");
    for (name, bytes) in wheels {
        std::fs::write(root.join("files").join(name), bytes).expect("write");
    }
    Server::serve_dir(&root)
}

/// (Re)writes the project page of the index at `root`.
fn write_page(root: &Path, files: &serde_json::Value) {
    let project = root.join("simple/nvidia-cuda-runtime");
    std::fs::create_dir_all(&project).expect("mkdir");
    let page = serde_json::json!({"meta": {"api-version": "1.1"}, "files": files});
    std::fs::write(project.join("index.json"), page.to_string()).expect("write");
}

/// `redist wheel cuda_cudart` through `server`'s index into `cache`, with `vars`.
fn wheel_through(server: &Server, cache: &Path, vars: &[(&str, &str)]) -> (i32, String, String) {
    let index = format!("{}/simple", server.url());
    let mut args = vec!["redist", "wheel", "cuda_cudart"];
    args.extend(common::index_args(&index, cache));
    run_within(LIMIT, vars, &args)
}

fn sha256_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("f");
    std::fs::write(&path, bytes).expect("write");
    sha256(&path)
}

#[test]
fn an_index_hash_that_is_a_path_is_refused_and_nothing_is_built() {
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("c/cache");
    // Where `cache/sha256/../../victim/target.whl` leads.
    let victim = dir.path().join("c/victim/target.whl");
    std::fs::create_dir_all(victim.parent().expect("parent")).expect("mkdir");
    std::fs::write(&victim, b"never verified").expect("write");
    let files = serde_json::json!([{
        "filename": WHEEL,
        "url": format!("../../files/{WHEEL}"),
        "hashes": {"sha256": "../../victim/target.whl"},
    }]);
    let server = hostile_index(dir.path(), &files, &[(WHEEL, b"wheel")]);
    let expected = "$.files[0].hashes.sha256: `../../victim/target.whl` is not 64 hex digits";

    let (code, stdout, stderr) = wheel_through(&server, &cache, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stdout.contains("victim"), "{stdout}");

    let store = dir.path().join("store");
    let index = format!("{}/simple", server.url());
    let (code, stdout, stderr) = run_within(
        LIMIT,
        &[],
        &[
            "build",
            "cuda_cudart",
            "--index-url",
            &index,
            "--cache",
            s(&cache),
            "--system",
            "linux-x86_64",
            "--store-dir",
            s(&store),
        ],
    );
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!store.exists(), "a store was made");
    assert!(
        !server.requests().iter().any(|r| r.contains("/files/")),
        "{:?}",
        server.requests()
    );
    assert_eq!(std::fs::read(&victim).expect("read"), b"never verified");
    assert_eq!(kept(&cache), Vec::<String>::new());
}

#[test]
fn an_index_cannot_point_at_files_on_this_machine() {
    let dir = tempfile::tempdir().expect("temp");
    let secret = dir.path().join("secret.whl");
    std::fs::write(&secret, b"local bytes").expect("write");
    let url = format!("file://{}", secret.display());
    let files = serde_json::json!([{
        "filename": WHEEL,
        "url": url,
        "hashes": {"sha256": sha256(&secret)},
    }]);
    let server = hostile_index(dir.path(), &files, &[]);
    let cache = dir.path().join("cache");
    let (code, stdout, stderr) = wheel_through(&server, &cache, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "$.files[0].url: `{url}`: an index may point only at http:// or https:// files"
        )),
        "{stderr}"
    );
    assert_eq!(kept(&cache), Vec::<String>::new());
}

#[test]
fn downloads_stop_at_their_size_or_the_configured_maximum() {
    let dir = tempfile::tempdir().expect("temp");
    let wheel = vec![7u8; 3 << 20];
    let sha = sha256_of(&wheel);
    // No size: only the maximum bounds what the server may send.
    let unsized_entry = serde_json::json!([{
        "filename": WHEEL,
        "url": format!("../../files/{WHEEL}"),
        "hashes": {"sha256": sha},
    }]);
    let server = hostile_index(dir.path(), &unsized_entry, &[(WHEEL, &wheel)]);
    let bounded = dir.path().join("bounded");
    let (code, stdout, stderr) =
        wheel_through(&server, &bounded, &[("CUDAPKGS_MAX_DOWNLOAD", "1M")]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("no size was given")
            && stderr.contains("more than the maximum download of 1048576 bytes"),
        "{stderr}"
    );
    assert!(
        stderr.contains("CUDAPKGS_MAX_DOWNLOAD"),
        "the hint: {stderr}"
    );
    assert_eq!(kept(&bounded), Vec::<String>::new());
    // Under the default maximum the same file is fine.
    let open = dir.path().join("open");
    let (code, stdout, stderr) = wheel_through(&server, &open, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&sha), "{stdout}");

    // A size beyond the maximum is refused before anything is asked of the server.
    let huge = serde_json::json!([{
        "filename": WHEEL,
        "url": format!("../../files/{WHEEL}"),
        "hashes": {"sha256": sha},
        "size": 1u64 << 40,
    }]);
    write_page(&dir.path().join("index"), &huge);
    let before = server.requests().len();
    let fresh = dir.path().join("fresh");
    let (code, _, stderr) = wheel_through(&server, &fresh, &[]);
    common::assert_refused(
        code,
        &stderr,
        "its size is given as 1099511627776 bytes, more than the maximum",
    );
    let asked = &server.requests()[before..];
    assert!(!asked.iter().any(|r| r.contains("/files/")), "{asked:?}");
    assert_eq!(kept(&fresh), Vec::<String>::new());

    let (code, _, stderr) = wheel_through(&server, &fresh, &[("CUDAPKGS_MAX_DOWNLOAD", "lots")]);
    common::assert_refused(
        code,
        &stderr,
        "environment variable CUDAPKGS_MAX_DOWNLOAD: `lots` is not a byte count",
    );
}

#[test]
fn a_mirror_archive_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp");
    let folder = dir.path().join("mirror/cuda/redist");
    std::fs::create_dir_all(folder.join("p")).expect("mkdir");
    cudapkgs_testkit::make_fifo(&folder.join("p/p-archive.tar.xz"));
    let manifest = serde_json::json!({"p": {"version": "1", "linux-x86_64": {
        "relative_path": "p/p-archive.tar.xz", "sha256": "0".repeat(64), "size": "10"}}});
    std::fs::write(folder.join("redistrib_1.0.0.json"), manifest.to_string()).expect("write");
    let base = format!("file://{}", dir.path().join("mirror").display());
    let cache = dir.path().join("cache");
    let (code, _, stderr) = run_within(
        Duration::from_secs(30),
        &[],
        &[
            "redist",
            "fetch",
            "--release",
            "1.0.0",
            "--base-url",
            &base,
            "--cache",
            s(&cache),
            "--system",
            "linux-x86_64",
            "p",
        ],
    );
    common::assert_refused(code, &stderr, "p-archive.tar.xz: not a regular file");
    assert_eq!(kept(&cache), Vec::<String>::new());
}

#[test]
fn an_index_that_never_answers_fails_after_the_response_timeout() {
    // Accepts every connection and holds it without a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let dir = tempfile::tempdir().expect("temp");
    let index = format!("http://127.0.0.1:{port}/simple");
    let wheel = |timeout: &str| {
        run_within(
            Duration::from_secs(60),
            &[("CUDAPKGS_RESPONSE_TIMEOUT", timeout)],
            &[
                "redist",
                "wheel",
                "cuda_cudart",
                "--index-url",
                &index,
                "--cache",
                s(&dir.path().join("cache")),
                "--system",
                "linux-x86_64",
            ],
        )
    };
    let (code, stdout, stderr) = wheel("1");
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("{index}/"))
            && stderr.contains("accepted the connection but sent no response within 1 s"),
        "{stderr}"
    );
    let (code, _, stderr) = wheel("soon");
    common::assert_refused(
        code,
        &stderr,
        "environment variable CUDAPKGS_RESPONSE_TIMEOUT: `soon` is not a number of seconds",
    );
}

#[test]
fn split_takes_a_bare_output_name_in_the_current_folder() {
    let dir = tempfile::tempdir().expect("temp");
    let package = dir.path().join("package");
    std::fs::create_dir_all(package.join("include")).expect("mkdir");
    std::fs::write(package.join("include/x.h"), "int x;\n").expect("write");
    let (code, _, stderr) = common::run_in(dir.path(), &["split", "package", "--out", "out"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.path().join("out/include/include/x.h").is_file());
}

#[test]
fn a_split_refuses_a_reference_to_usr_and_names_the_flag_that_allows_it() {
    let dir = tempfile::tempdir().expect("temp");
    let package = dir.path().join("pkg");
    std::fs::create_dir_all(package.join("lib/pkgconfig")).expect("mkdir");
    std::fs::write(
        package.join("lib/pkgconfig/foo.pc"),
        "prefix=/usr/local\nName: foo\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    let (code, _, stderr) = run(&["split", s(&package), "--out", s(&out)]);
    assert_eq!(code, 2, "{stderr}");
    // The library says what it found; the binary names the flag.
    assert!(
        stderr.contains("foo.pc: line 1: `prefix=/usr/local` refers to /usr/\n"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: pass --allow-usr"), "{stderr}");
    let (code, _, stderr) = run(&["split", s(&package), "--out", s(&out), "--allow-usr"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.join("dev/lib/pkgconfig/foo.pc").is_file());
}
