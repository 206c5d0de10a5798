//! Python's ctypes loading a library as a program does: proof that a patched or built
//! library still works.

use std::path::Path;
use std::process::Command;

/// Loads NVRTC from the path in `argv[1]`, compiles `scale` for `compute_90` (failing
/// with the compile log) and prints the PTX.
const COMPILE_SCALE: &str = r#"
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

/// The PTX that the NVRTC library at `lib` compiles the kernel `scale` to; the test
/// fails when it does not compile.
pub fn nvrtc_ptx(lib: &Path) -> String {
    python_prints(COMPILE_SCALE, lib)
}

/// What `python3 -c SCRIPT ARG` prints, run with an empty environment; the test fails
/// when it fails.
pub fn python_prints(script: &str, arg: &Path) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(arg)
        .env_clear()
        .output()
        .expect("python3 runs");
    crate::assert_succeeded(&output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}
