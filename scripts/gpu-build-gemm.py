#!/usr/bin/env python3
"""On a GPU machine with PyTorch's NVIDIA wheels installed: rebuild the cuBLAS and CUDA
runtime wheels from what pip installed (each wheel's RECORD names its files), build them
with `cudapkgs build PACKAGE=WHEEL` into a store, then, with an empty environment (no
`LD_LIBRARY_PATH`), load cuBLAS from the store and run an SGEMM against NumPy.

    python3 scripts/gpu-build-gemm.py --cudapkgs target/release/cudapkgs --store /tmp/store
"""

import argparse
import glob
import json
import os
import subprocess
import sys

from wheel_rebuild import rebuild_wheel

GEMM = r'''
import ctypes, json, sys
import numpy as np
cudart = ctypes.CDLL(sys.argv[1])
cublas = ctypes.CDLL(sys.argv[2])
n = 512
rng = np.random.default_rng(7)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
def device(array):
    pointer = ctypes.c_void_p()
    assert cudart.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(array.nbytes)) == 0
    assert cudart.cudaMemcpy(pointer, array.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(array.nbytes), 1) == 0
    return pointer
da, db, dc = device(a), device(b), device(np.zeros((n, n), np.float32))
handle = ctypes.c_void_p()
assert cublas.cublasCreate_v2(ctypes.byref(handle)) == 0
one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
# Column-major: C^T = B^T A^T, so this computes C = A B in row-major terms.
status = cublas.cublasSgemm_v2(handle, 0, 0, n, n, n, ctypes.byref(one), db, n, da, n, ctypes.byref(zero), dc, n)
assert status == 0, status
assert cudart.cudaDeviceSynchronize() == 0
c = np.zeros((n, n), np.float32)
assert cudart.cudaMemcpy(c.ctypes.data_as(ctypes.c_void_p), dc, ctypes.c_size_t(c.nbytes), 2) == 0
expected = a.astype(np.float64) @ b.astype(np.float64)
maps = sorted({line.split()[-1] for line in open("/proc/self/maps") if ".so" in line and ("cublas" in line or "cudart" in line or "libcuda." in line)})
print(json.dumps({"max_abs_error": float(np.abs(c - expected).max()), "mapped": maps, "env": dict(__import__("os").environ)}))
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cudapkgs", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--work", default="/tmp/gpu-build")
    args = parser.parse_args()
    import nvidia  # the namespace package PyTorch's CUDA wheels install into
    site = os.path.dirname(list(nvidia.__path__)[0])
    os.makedirs(args.work, exist_ok=True)
    specs = []
    for package, dist in [("cuda_cudart", "nvidia_cuda_runtime"), ("libcublas", "nvidia_cublas")]:
        infos = sorted(glob.glob(os.path.join(site, f"{dist}-*.dist-info")) + glob.glob(os.path.join(site, f"{dist}_cu1*-*.dist-info")))
        specs.append(f"{package}={rebuild_wheel(site, infos[-1], args.work)}")
    built = subprocess.run(
        [args.cudapkgs, "--json", "build", "--store-dir", args.store, "--driver-dir", "host", "--gpu", "H100", *specs],
        check=True, capture_output=True, text=True,
    )
    packages = {p["package"]: p for p in json.loads(built.stdout)}
    print("built:", json.dumps({k: v["outputs"] for k, v in packages.items()}, indent=1))
    cudart_lib = glob.glob(os.path.join(packages["cuda_cudart"]["outputs"]["lib"], "lib", "libcudart.so.*"))[0]
    cublas_lib = glob.glob(os.path.join(packages["libcublas"]["outputs"]["lib"], "lib", "libcublas.so.*"))[0]
    # Exit 1 is expected: without system folders, libc and friends stay unresolved.
    resolved = subprocess.run([args.cudapkgs, "--json", "elf", "--resolve", "--no-system", args.store],
                              check=False, capture_output=True, text=True)
    unresolved = sorted({
        library["name"]
        for f in json.loads(resolved.stdout)["files"]
        for library in f.get("resolved") or []
        if library["path"] is None and not library["driver"]
    })
    print("needed libraries not found through runpaths (system libraries):", unresolved)
    run = subprocess.run([sys.executable, "-c", GEMM, cudart_lib, cublas_lib], env={}, capture_output=True, check=False, text=True)
    print(run.stdout, run.stderr)
    result = json.loads(run.stdout)
    assert result["max_abs_error"] < 1e-2, result
    # Python adds LC_CTYPE itself (PEP 538); nothing points the loader anywhere.
    assert "LD_LIBRARY_PATH" not in result["env"] and set(result["env"]) <= {"LC_CTYPE"}, result["env"]
    assert all(m.startswith(args.store) for m in result["mapped"] if "cublas" in m or "cudart" in m), result
    print("GEMM from the store with an empty environment: max abs error", result["max_abs_error"])


if __name__ == "__main__":
    main()
