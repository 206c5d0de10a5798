//! `build --offline`: with the network gone, a set built once online builds again from
//! the download cache (index pages and manifests from the copies the online run kept,
//! archives verified by hash), and what the cache lacks is a clear error.

use crate::common;

use std::path::Path;

use common::{nvidia_args, run, s, served_mirror};

fn build(base: &str, store: &Path, cache: &Path, extra: &[&str]) -> (i32, String, String) {
    let state = store.with_extension("state");
    let mut rest = vec![
        "--store-dir",
        s(store),
        "--state-dir",
        s(&state),
        "cuda_cudart",
        "cuda_nvrtc",
    ];
    rest.extend_from_slice(extra);
    let mut args = vec!["--json".to_owned(), "build".to_owned()];
    args.extend(nvidia_args(base, "13.0.2", cache, &rest));
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn a_set_built_online_builds_again_without_the_network() {
    let Some(server) = served_mirror() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let base = server.url();
    let (code, online, stderr) = build(&base, &dir.path().join("a"), &cache, &[]);
    assert_eq!(code, 0, "{stderr}");
    drop(server);

    let (code, offline, stderr) = build(&base, &dir.path().join("b"), &cache, &["--offline"]);
    assert_eq!(code, 0, "{stderr}");
    let packages = |text: &str| -> Vec<(String, String)> {
        let built: serde_json::Value = serde_json::from_str(text).expect("json");
        built
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| (p["package"].to_string(), p["version"].to_string()))
            .collect()
    };
    assert_eq!(packages(&offline), packages(&online));

    // A cache that never saw the mirror: the error says what is missing and what to do.
    let (code, stdout, stderr) = build(
        &base,
        &dir.path().join("c"),
        &dir.path().join("empty"),
        &["--offline"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--offline") && stderr.contains("run once online first"),
        "{stderr}"
    );
    let error: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert!(error["error"]["message"].is_string());
    // The message is the library's and names no flag; the hint names what set it.
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not in the download cache") && !message.contains("--offline"),
        "{stdout}"
    );
    assert_eq!(
        error["error"]["hint"],
        "run once online first (--offline turned the network off)"
    );
}
