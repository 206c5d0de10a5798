//! Run-time loads read from real NVIDIA libraries: cuDNN's front library names its
//! sub-libraries by stem, the sub-libraries name cuBLASLt and NVRTC whole or as a
//! pattern, and the CUDA runtime names the driver. (NVIDIA's wheels come from
//! scripts/install-nvidia-tools.sh.)

use std::path::{Path, PathBuf};

use cudapkgs_elf::loads::load_names;

fn nvidia() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/nvidia/nvidia");
    let present = root.join("cudnn/lib/libcudnn.so.9").exists();
    cudapkgs_testkit::require(
        present,
        "NVIDIA's libraries (run scripts/install-nvidia-tools.sh)",
    )
    .then_some(root)
}

/// The files of `folder` that the library `file` names.
fn loaded(file: &Path, folder: &Path) -> Vec<String> {
    let names = load_names(&std::fs::read(file).expect("read"));
    let mut found: Vec<String> = std::fs::read_dir(folder)
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|candidate| names.iter().any(|name| name.matches(candidate)))
        .collect();
    found.sort();
    found
}

#[test]
fn cudnn_names_every_sub_library_it_loads() {
    let Some(root) = nvidia() else { return };
    let lib = root.join("cudnn/lib");
    let front = loaded(&lib.join("libcudnn.so.9"), &lib);
    for sub in [
        "libcudnn_adv.so.9",
        "libcudnn_cnn.so.9",
        "libcudnn_graph.so.9",
        "libcudnn_ops.so.9",
    ] {
        assert!(front.contains(&sub.to_owned()), "{sub} in {front:?}");
    }
    let graph = loaded(&lib.join("libcudnn_graph.so.9"), &lib);
    for sub in [
        "libcudnn_engines_precompiled.so.9",
        "libcudnn_engines_runtime_compiled.so.9",
        "libcudnn_heuristic.so.9",
    ] {
        assert!(graph.contains(&sub.to_owned()), "{sub} in {graph:?}");
    }
    let names = |file: &str| -> Vec<String> {
        load_names(&std::fs::read(lib.join(file)).expect("read"))
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let precompiled = names("libcudnn_engines_precompiled.so.9");
    assert!(
        precompiled.contains(&"libcublasLt.so.12".to_owned()),
        "{precompiled:?}"
    );
    assert!(
        precompiled.contains(&"libnvrtc.so.12".to_owned()),
        "{precompiled:?}"
    );
    assert!(names("libcudnn_graph.so.9").contains(&"libnvrtc.so.%d".to_owned()));
}

#[test]
fn the_cuda_runtime_names_the_driver() {
    let Some(root) = nvidia() else { return };
    let names = load_names(&std::fs::read(root.join("cu13/lib/libcudart.so.13")).expect("read"));
    assert!(
        names.iter().any(|name| name.matches("libcuda.so.1")),
        "{names:?}"
    );
}
