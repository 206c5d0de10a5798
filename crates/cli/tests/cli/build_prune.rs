//! `build --gpu H100 --prune`: the outputs' device code pruned to the GPU, as store paths
//! of their own (`…-lib-sm90`) beside the unpruned build, smaller, and still holding an
//! image for every kernel the GPU runs. On NVIDIA's real cuBLAS 13 wheel.

use crate::common;

use std::path::{Path, PathBuf};

use common::{repo, run, s};

fn cublas_wheel() -> Option<PathBuf> {
    let folder = repo().join(".tools/nvidia/wheels");
    let found = std::fs::read_dir(&folder).ok().and_then(|read| {
        read.map(|e| e.expect("entry").path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("nvidia_cublas-13"))
        })
    });
    cudapkgs_testkit::require(
        found.is_some(),
        "the cuBLAS wheel (run scripts/install-nvidia-tools.sh)",
    );
    found
}

fn build(dir: &Path, wheel: &Path, extra: &[&str]) -> serde_json::Value {
    let input = format!("libcublas={}", wheel.display());
    let mut args = vec!["--no-deps"];
    args.extend_from_slice(extra);
    common::build_json(dir, &input, &args)
}

fn nar_size(dir: &Path, path: &str) -> u64 {
    let (code, stdout, stderr) = run(&[
        "--json",
        "path-info",
        "--store-dir",
        s(&dir.join("store")),
        "--state-dir",
        s(&dir.join("state")),
        path,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let infos: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    infos[0]["narSize"].as_u64().expect("size")
}

/// Bytes the files under `root` take on disk.
fn allocated(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            let meta = path.symlink_metadata().expect("meta");
            if meta.is_dir() {
                pending.push(path);
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

#[test]
fn pruned_outputs_are_paths_of_their_own_and_serve_the_gpu() {
    let Some(wheel) = cublas_wheel() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let whole = build(dir.path(), &wheel, &[]);
    let pruned = build(dir.path(), &wheel, &["--gpu", "H100", "--prune"]);
    let lib =
        |built: &serde_json::Value| built[0]["outputs"]["lib"].as_str().expect("lib").to_owned();
    let (whole_lib, pruned_lib) = (lib(&whole), lib(&pruned));
    assert_ne!(whole_lib, pruned_lib);
    // The wheel's metadata names its licence, which the record keeps for `push`.
    let licence = whole[0]["licence"].as_str().unwrap_or_default();
    assert!(licence.contains("NVIDIA"), "{}", whole[0]);
    assert!(pruned_lib.ends_with("-lib-sm90"), "{pruned_lib}");
    assert_eq!(
        whole[0]["outputs"]["include"], pruned[0]["outputs"]["include"],
        "outputs without device code are the same paths"
    );
    let removed = pruned[0]["pruned"]["lib"]["removed_bytes"]
        .as_u64()
        .expect("removed");
    assert!(removed > 50 << 20, "{}", pruned[0]["pruned"]);
    // Pruning zeroes device code in place (every pointer into it stays valid): the NAR
    // keeps its size and compresses the zeros away, and the store holds them as holes.
    assert_eq!(
        nar_size(dir.path(), &pruned_lib),
        nar_size(dir.path(), &whole_lib)
    );
    let (whole_disk, pruned_disk) = (
        allocated(Path::new(&whole_lib)),
        allocated(Path::new(&pruned_lib)),
    );
    assert!(
        pruned_disk + removed / 2 < whole_disk,
        "on disk: pruned {pruned_disk}, whole {whole_disk}, removed {removed}"
    );
    // Every kernel left has an image the GPU runs.
    let library = Path::new(&pruned_lib).join("lib/libcublas.so.13");
    let (code, stdout, stderr) = run(&["--json", "inspect", "--gpu", "H100", s(&library)]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        report["verdicts"][0]["unusable"], 0,
        "{}",
        report["verdicts"][0]
    );
    assert!(report["verdicts"][0]["exact_sass"].as_u64().expect("count") > 0);
    // The dependents of a pruned library name the pruned path.
    let out = Path::new(pruned[0]["outputs"]["out"].as_str().expect("out"));
    assert_eq!(
        std::fs::canonicalize(out.join("lib/libcublas.so.13")).expect("resolves"),
        library
    );
}
