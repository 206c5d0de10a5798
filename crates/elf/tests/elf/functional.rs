//! Patched NVIDIA libraries still work, without a GPU: libnvrtc (whose builtins
//! library has a 0x200000 segment alignment) still compiles a kernel to PTX through its
//! API, and libcudart still reports its version. The libraries come from NVIDIA's wheels
//! (scripts/install-nvidia-tools.sh); the checks run in Python through ctypes.

use std::path::{Path, PathBuf};

use cudapkgs_elf::patch::{Changes, RunpathChange, plan};
use cudapkgs_elf::write::rewrite;

fn nvidia_lib() -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/nvidia/nvidia/cu13/lib");
    let present = lib.join("libnvrtc.so.13").exists() && lib.join("libcudart.so.13").exists();
    cudapkgs_testkit::require(
        present,
        "NVIDIA's libraries (run scripts/install-nvidia-tools.sh)",
    )
    .then_some(lib)
}

fn set_long_runpath(path: &Path) {
    let data = std::fs::read(path).expect("read");
    let changes = Changes {
        runpath: RunpathChange::Set(
            "$ORIGIN:/run/opengl-driver/lib:/nix/store/0123456789abcdfghijklmnpqrsvwxyz-cuda_nvrtc-13.0.88-lib/lib".into(),
        ),
        ..Changes::default()
    };
    let plan = plan(&data, &changes).expect("plan");
    assert!(
        plan.grew,
        "{}: the long runpath must need a new region",
        path.display()
    );
    rewrite(path, &plan).expect("rewrite");
}

const CUDART: &str = r"
import ctypes, sys
cudart = ctypes.CDLL(sys.argv[1])
version = ctypes.c_int()
assert cudart.cudaRuntimeGetVersion(ctypes.byref(version)) == 0
print(version.value)
";

#[test]
fn patched_nvrtc_still_compiles_a_kernel() {
    let Some(lib) = nvidia_lib() else { return };
    let dir = tempfile::tempdir().expect("temp");
    for name in ["libnvrtc.so.13", "libnvrtc-builtins.so.13.0"] {
        std::fs::copy(lib.join(name), dir.path().join(name)).expect("copy");
        set_long_runpath(&dir.path().join(name));
    }
    let ptx = cudapkgs_testkit::nvrtc_ptx(&dir.path().join("libnvrtc.so.13"));
    assert!(ptx.contains(".entry scale("), "{ptx}");
    assert!(ptx.contains(".target sm_90"), "{ptx}");
}

#[test]
fn patched_cudart_still_reports_its_version() {
    let Some(lib) = nvidia_lib() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("libcudart.so.13");
    std::fs::copy(lib.join("libcudart.so.13"), &path).expect("copy");
    set_long_runpath(&path);
    let version = cudapkgs_testkit::python_prints(CUDART, &path);
    assert!(version.trim().starts_with("130"), "{version}");
}
