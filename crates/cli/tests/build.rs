//! End-to-end tests of `cudapkgs build`: real NVIDIA components from the loopback mirror
//! (`scripts/redist-mirror.py`, served by `scripts/serve-mirror.py`), and a pair of
//! gcc-built libraries packed in NVIDIA's layout for dependencies between packages.

mod common;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{run, s};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The mirror of real wheels (shared with the redist tests), or `None` outside CI
/// without the wheels.
fn mirror() -> Option<PathBuf> {
    let wheels = repo().join(".tools/nvidia/wheels");
    assert!(
        wheels.is_dir() || std::env::var_os("CI").is_none(),
        "{} is missing: run scripts/install-nvidia-tools.sh",
        wheels.display()
    );
    if !wheels.is_dir() {
        return None;
    }
    let out = repo().join("target/redist-mirror");
    let status = Command::new("python3")
        .arg(repo().join("scripts/redist-mirror.py"))
        .args(["--wheels", s(&wheels), "--out", s(&out)])
        .stdout(Stdio::null())
        .status()
        .expect("python3");
    assert!(status.success());
    Some(out)
}

/// Serves `root` on 127.0.0.1 until dropped.
struct Server(std::process::Child, u16);

impl Server {
    fn start(root: &Path, log: &Path) -> Server {
        let mut child = Command::new("python3")
            .arg(repo().join("scripts/serve-mirror.py"))
            .args(["--root", s(root), "--log", s(log)])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        Server(child, line.trim().parse().expect("port"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn build_json(args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = run(&[&["--json", "build"][..], args].concat());
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("json")
}

fn output<'a>(built: &'a serde_json::Value, package: &str, name: &str) -> &'a str {
    built
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["package"] == package)
        .and_then(|p| p["outputs"][name].as_str())
        .unwrap_or_else(|| panic!("{package} {name} in {built}"))
}

/// Compiles a kernel to PTX with the nvrtc at `lib`, with an empty environment.
fn nvrtc_compiles(lib: &Path) -> String {
    let script = r#"
import ctypes, sys
nvrtc = ctypes.CDLL(sys.argv[1])
prog = ctypes.c_void_p()
src = b'extern "C" __global__ void axpy(float a, float *x) { x[threadIdx.x] *= a; }'
assert nvrtc.nvrtcCreateProgram(ctypes.byref(prog), src, b"k.cu", 0, None, None) == 0
opts = (ctypes.c_char_p * 1)(b"--gpu-architecture=compute_90")
status = nvrtc.nvrtcCompileProgram(prog, 1, opts)
size = ctypes.c_size_t()
nvrtc.nvrtcGetPTXSize(prog, ctypes.byref(size))
ptx = ctypes.create_string_buffer(size.value)
nvrtc.nvrtcGetPTX(prog, ptx)
print(status, ptx.value.decode().count(".entry axpy"))
"#;
    let out = Command::new("python3")
        .args(["-c", script, s(lib)])
        .env_clear()
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn real_packages_build_deterministically_with_small_closures() {
    let Some(mirror) = mirror() else { return };
    let dir = tempfile::tempdir().expect("temp");
    let server = Server::start(&mirror, &dir.path().join("log"));
    let url = format!("http://127.0.0.1:{}", server.1);
    let cache = dir.path().join("cache");
    let args = |root: &Path| -> Vec<String> {
        [
            "--source",
            "nvidia",
            "--cuda",
            "13.0.2",
            "--base-url",
            &url,
            "--cache",
            s(&cache),
            "--store-dir",
            "/nix/store",
            "--root",
            s(root),
            "--gpu",
            "H100",
            "cuda_cudart",
            "cuda_nvrtc",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first_args = args(&a);
    let first = build_json(&first_args.iter().map(String::as_str).collect::<Vec<_>>());
    let second_args = args(&b);
    let second = build_json(&second_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(first, second, "two stores, the same paths");
    let cudart = &first[0];
    assert_eq!(cudart["package"], "cuda_cudart");
    let names: Vec<&String> = cudart["outputs"]
        .as_object()
        .expect("outputs")
        .keys()
        .collect();
    assert_eq!(names, ["dev", "include", "lib", "out", "static"]);
    // libcudadevrt.a carries SASS; H100's kernels are all there.
    assert!(
        cudart["architectures"]["static"]
            .as_array()
            .is_some_and(|a| a.contains(&serde_json::json!("sm_90")))
    );
    assert_eq!(cudart["kernels_without_image"], 0);

    // The lib output's closure is itself: no headers, static libraries or stubs.
    let lib = output(&first, "cuda_cudart", "lib");
    let (code, closure, _) = run(&[
        "--json",
        "closure",
        "--store-dir",
        "/nix/store",
        "--root",
        s(&a),
        lib,
    ]);
    assert_eq!(code, 0);
    let closure: serde_json::Value = serde_json::from_str(&closure).expect("json");
    assert_eq!(closure["paths"].as_array().map(Vec::len), Some(1));
    // dev needs lib and include (its pkg-config file names them); out needs everything.
    let dev = output(&first, "cuda_cudart", "dev");
    let (_, info, _) = run(&[
        "--json",
        "path-info",
        "--store-dir",
        "/nix/store",
        "--root",
        s(&a),
        dev,
    ]);
    let info: serde_json::Value = serde_json::from_str(&info).expect("json");
    let mut expected = vec![lib, output(&first, "cuda_cudart", "include")];
    expected.sort_unstable();
    assert_eq!(info[0]["references"], serde_json::json!(expected));
    let physical = |path: &str| a.join(path.trim_start_matches('/'));
    let out = physical(output(&first, "cuda_cudart", "out"));
    assert_eq!(
        std::fs::read_link(out.join("lib/libcudart.so.13")).expect("a link"),
        Path::new(lib).join("lib/libcudart.so.13")
    );

    // Runpaths: $ORIGIN, then the driver folder for libraries that load the driver.
    let nvrtc_lib = physical(output(&first, "cuda_nvrtc", "lib"));
    let (_, view, _) = run(&["--json", "elf", s(&nvrtc_lib.join("lib/libnvrtc.so.13"))]);
    let view: serde_json::Value = serde_json::from_str(&view).expect("json");
    // nvrtc names libcuda.so.1 too (it may load the driver), so it gets the folder.
    assert_eq!(view["files"][0]["runpath"], "$ORIGIN:/run/opengl-driver/lib");
    let (_, view, _) = run(&[
        "--json",
        "elf",
        s(&physical(lib).join("lib/libcudart.so.13")),
    ]);
    let view: serde_json::Value = serde_json::from_str(&view).expect("json");
    assert_eq!(
        view["files"][0]["runpath"],
        "$ORIGIN:/run/opengl-driver/lib"
    );
    // The patched nvrtc finds its builtins beside itself and compiles a kernel.
    assert_eq!(nvrtc_compiles(&nvrtc_lib.join("lib/libnvrtc.so.13")), "0 1");
}
