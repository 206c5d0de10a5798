//! Patched NVIDIA libraries still work, without a GPU: libnvrtc (whose builtins
//! library has a 0x200000 segment alignment) still compiles a kernel to PTX through its
//! API, and libcudart still reports its version. The libraries come from NVIDIA's wheels
//! (scripts/install-nvidia-tools.sh); the checks run in Python through ctypes.

use std::path::{Path, PathBuf};
use std::process::Command;

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

fn python(script: &str, arg: &Path) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(arg)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const NVRTC: &str = r#"
import ctypes, sys
nvrtc = ctypes.CDLL(sys.argv[1])
prog = ctypes.c_void_p()
src = b'extern "C" __global__ void scale(float *x, float a) { x[threadIdx.x] *= a; }'
assert nvrtc.nvrtcCreateProgram(ctypes.byref(prog), src, b"k.cu", 0, None, None) == 0
opts = (ctypes.c_char_p * 1)(b"--gpu-architecture=compute_90")
rc = nvrtc.nvrtcCompileProgram(prog, 1, opts)
size = ctypes.c_size_t()
nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
log = ctypes.create_string_buffer(size.value)
nvrtc.nvrtcGetProgramLog(prog, log)
assert rc == 0, log.value
nvrtc.nvrtcGetPTXSize(prog, ctypes.byref(size))
ptx = ctypes.create_string_buffer(size.value)
assert nvrtc.nvrtcGetPTX(prog, ptx) == 0
print(ptx.value.decode())
"#;

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
    let ptx = python(NVRTC, &dir.path().join("libnvrtc.so.13"));
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
    let version = python(CUDART, &path);
    assert!(version.trim().starts_with("130"), "{version}");
}
