//! `inspect --gpu` on NVIDIA's real libraries: they carry whole containers, and kernels
//! within containers, for one architecture each and dispatch by architecture, so a GPU
//! they were built for passes with those kernels counted; the same library pruned to
//! another GPU without PTX fails.

use crate::common;

use common::{nvidia_file, run, s};

use serde_json::Value;

fn verdict(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {stdout}\n{stderr}"));
    (code, report)
}

#[test]
fn nvidia_libraries_pass_on_the_gpus_they_serve_and_count_other_architectures() {
    let (Some(cublas), Some(cudnn)) = (
        nvidia_file("nvidia/cu13/lib/libcublas.so.13"),
        nvidia_file("nvidia/cudnn/lib/libcudnn_cnn.so.9"),
    ) else {
        return;
    };
    for gpu in ["9.0", "8.0", "12.0"] {
        let (code, report) = verdict(&["--gpu", gpu, s(&cublas), s(&cudnn)]);
        let totals = &report["verdicts"][0];
        assert_eq!(code, 0, "{gpu}: {totals}");
        assert_eq!(totals["unusable"], 0, "{gpu}: {totals}");
        assert_eq!(totals["files_failing"], 0, "{gpu}: {totals}");
        // Each library holds kernels for one architecture only somewhere.
        assert!(
            totals["other_architecture"].as_u64() > Some(0),
            "{gpu}: {totals}"
        );
        let kernels = totals["kernels"].as_u64().expect("kernels");
        let counted: u64 = [
            "exact_sass",
            "compatible_sass",
            "ptx_jit",
            "other_architecture",
        ]
        .iter()
        .map(|key| totals[key].as_u64().expect(key))
        .sum();
        assert_eq!(counted, kernels, "{gpu}: {totals}");
    }
    let (code, stdout, _) = run(&["inspect", "--gpu", "H100", s(&cublas)]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("built for other architectures only (")
            && stdout.contains("which the library launches only there"),
        "{stdout}"
    );
}

#[test]
fn a_library_pruned_to_another_gpu_without_ptx_fails_and_names_its_kernels() {
    let Some(cublas) = nvidia_file("nvidia/cu13/lib/libcublas.so.13") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let pruned = dir.path().join("libcublas.so.13");
    let (code, _, stderr) = run(&[
        "prune",
        "--capabilities",
        "8.0",
        "--keep-ptx",
        "none",
        "--out",
        s(&pruned),
        s(&cublas),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, report) = verdict(&["--gpu", "9.0", s(&pruned)]);
    let totals = &report["verdicts"][0];
    assert_eq!(code, 1, "{totals}");
    assert_eq!(totals["files_failing"], 1, "{totals}");
    assert_eq!(totals["unusable"], totals["kernels"], "{totals}");
    let first = &report["files"][0]["kernels"][0];
    assert_eq!(first["outcome"], "no-image", "{first}");
    assert!(
        first["rejected"]
            .to_string()
            .contains("SASS does not run on 9.0"),
        "{first}"
    );
    // The GPU it was pruned for still passes.
    let (code, report) = verdict(&["--gpu", "8.0", s(&pruned)]);
    assert_eq!(code, 0, "{}", report["verdicts"][0]);
}
