#!/usr/bin/env python3
"""On a GPU machine with PyTorch's NVIDIA wheels installed, prove that libraries loaded at
run time keep working after cudapkgs sets runpaths:

  store   rebuild the cuDNN, cuBLAS, NVRTC and CUDA runtime wheels from what pip installed
          (each wheel's RECORD names its files), `cudapkgs build` them into a store with
          the host's driver folder, and run a cuDNN convolution forward through ctypes from
          the store with an empty environment, checked against NumPy; cuDNN's front
          library reaches its sub-libraries, and they cuBLASLt, through runpaths alone.
  venv    copy PyTorch's `torch` and `nvidia` packages, `cudapkgs patch --auto
          --driver-dir host` the copy, and run scripts/torch-workload.py (cuDNN
          convolutions among its results) from the copy and from the original, without
          LD_LIBRARY_PATH; the results must agree.

    python3 scripts/gpu-runtime-loads.py store --cudapkgs target/release/cudapkgs
    python3 scripts/gpu-runtime-loads.py venv --cudapkgs target/release/cudapkgs
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

from wheel_rebuild import rebuild_wheel

CONV = r'''
import ctypes, json, os, sys
import numpy as np
cudart = ctypes.CDLL(sys.argv[1])
cudnn = ctypes.CDLL(sys.argv[2])
n, c, h, w, k, r = 2, 3, 16, 16, 4, 3
rng = np.random.default_rng(11)
x = rng.standard_normal((n, c, h, w), dtype=np.float32)
f = rng.standard_normal((k, c, r, r), dtype=np.float32)
def device(array):
    pointer = ctypes.c_void_p()
    assert cudart.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(array.nbytes)) == 0
    assert cudart.cudaMemcpy(pointer, array.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(array.nbytes), 1) == 0
    return pointer
y = np.zeros((n, k, h, w), np.float32)
dx, df, dy = device(x), device(f), device(y)
def check(status, what):
    assert status == 0, f"{what}: cuDNN status {status}"
handle = ctypes.c_void_p()
check(cudnn.cudnnCreate(ctypes.byref(handle)), "cudnnCreate")
FLOAT, NCHW = 0, 0
xd, yd, fd, cd = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
check(cudnn.cudnnCreateTensorDescriptor(ctypes.byref(xd)), "x descriptor")
check(cudnn.cudnnSetTensor4dDescriptor(xd, NCHW, FLOAT, n, c, h, w), "x shape")
check(cudnn.cudnnCreateTensorDescriptor(ctypes.byref(yd)), "y descriptor")
check(cudnn.cudnnSetTensor4dDescriptor(yd, NCHW, FLOAT, n, k, h, w), "y shape")
check(cudnn.cudnnCreateFilterDescriptor(ctypes.byref(fd)), "filter descriptor")
check(cudnn.cudnnSetFilter4dDescriptor(fd, FLOAT, NCHW, k, c, r, r), "filter shape")
check(cudnn.cudnnCreateConvolutionDescriptor(ctypes.byref(cd)), "convolution descriptor")
CROSS_CORRELATION = 1
check(cudnn.cudnnSetConvolution2dDescriptor(cd, 1, 1, 1, 1, 1, 1, CROSS_CORRELATION, FLOAT), "convolution")
IMPLICIT_GEMM = 0
one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
check(cudnn.cudnnConvolutionForward(handle, ctypes.byref(one), xd, dx, fd, df, cd, IMPLICIT_GEMM,
                                     None, ctypes.c_size_t(0), ctypes.byref(zero), yd, dy), "forward")
assert cudart.cudaDeviceSynchronize() == 0
assert cudart.cudaMemcpy(y.ctypes.data_as(ctypes.c_void_p), dy, ctypes.c_size_t(y.nbytes), 2) == 0
padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
expected = np.zeros((n, k, h, w))
for i in range(r):
    for j in range(r):
        expected += np.einsum("nchw,kc->nkhw", padded[:, :, i:i + h, j:j + w], f[:, :, i, j].astype(np.float64))
maps = sorted({line.split()[-1] for line in open("/proc/self/maps")
               if ".so" in line and any(name in line for name in ("cudnn", "cublas", "nvrtc", "cudart", "libcuda."))})
print(json.dumps({"version": cudnn.cudnnGetVersion(), "max_abs_error": float(np.abs(y - expected).max()),
                  "mapped": maps, "env": dict(os.environ)}))
'''


def site_packages():
    import nvidia  # the namespace package PyTorch's CUDA wheels install into
    return os.path.dirname(list(nvidia.__path__)[0])


def store(args):
    site = site_packages()
    os.makedirs(args.work, exist_ok=True)
    specs = []
    for package, dist in [("cudnn", "nvidia_cudnn_cu13"), ("libcublas", "nvidia_cublas"),
                          ("cuda_nvrtc", "nvidia_cuda_nvrtc"), ("cuda_cudart", "nvidia_cuda_runtime")]:
        infos = sorted(glob.glob(os.path.join(site, f"{dist}-*.dist-info")) + glob.glob(os.path.join(site, f"{dist}_cu1*-*.dist-info")))
        if not infos:
            raise SystemExit(f"no {dist} installed in {site}")
        specs.append(f"{package}={rebuild_wheel(site, infos[-1], args.work)}")
    started = time.perf_counter()
    built = subprocess.run(
        [args.cudapkgs, "--json", "build", "--no-deps", "--store-dir", args.store, "--driver-dir", "host", *specs],
        check=True, capture_output=True, text=True,
    )
    print(f"built in {time.perf_counter() - started:.1f} s")
    packages = {p["package"]: p for p in json.loads(built.stdout)}
    lib = lambda package: packages[package]["outputs"]["lib"]  # noqa: E731
    closure = json.loads(subprocess.run([args.cudapkgs, "--json", "closure", "--store-dir", args.store, lib("cudnn")],
                                        check=True, capture_output=True, text=True).stdout)
    paths = [p["path"] for p in closure["paths"]]
    print("cuDNN's lib closure:", paths)
    assert lib("libcublas") in paths and lib("cuda_nvrtc") in paths, paths
    cudart = glob.glob(os.path.join(lib("cuda_cudart"), "lib", "libcudart.so.*"))[0]
    cudnn = os.path.join(lib("cudnn"), "lib", "libcudnn.so.9")
    run = subprocess.run([sys.executable, "-c", CONV, cudart, cudnn], env={}, capture_output=True, check=False, text=True)
    print(run.stdout, run.stderr)
    result = json.loads(run.stdout)
    assert result["max_abs_error"] < 1e-3, result
    # Python adds LC_CTYPE itself (PEP 538); nothing points the loader anywhere.
    assert set(result["env"]) <= {"LC_CTYPE"}, result["env"]
    ours = [m for m in result["mapped"] if "libcuda." not in m]
    assert ours and all(m.startswith(args.store) for m in ours), result["mapped"]
    assert any("libcudnn_cnn" in m for m in ours), "the convolution ran in cuDNN's sub-library"
    print(f"cuDNN {result['version']} convolution from the store with an empty environment: "
          f"max abs error {result['max_abs_error']:.2e}; mapped: {result['mapped']}")


def venv(args):
    site = site_packages()
    copy = os.path.join(args.work, "site-packages")
    shutil.rmtree(copy, ignore_errors=True)
    os.makedirs(copy)
    started = time.perf_counter()
    for package in ("torch", "nvidia"):
        shutil.copytree(os.path.join(site, package), os.path.join(copy, package), symlinks=True)
    print(f"copied torch and nvidia in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    patched = subprocess.run([args.cudapkgs, "--json", "patch", "--auto", copy, "--driver-dir", "host"],
                             check=True, capture_output=True, text=True)
    report = json.loads(patched.stdout)
    changed = sum(1 for f in report["files"] if f.get("changed"))
    print(f"patch --auto: {changed} of {len(report['files'])} files rewritten in {time.perf_counter() - started:.1f} s")
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    workload = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch-workload.py")
    original, patched_out = os.path.join(args.work, "original.pt"), os.path.join(args.work, "patched.pt")
    subprocess.run([sys.executable, workload, "run", original], check=True, env=env)
    maps_probe = ("import torch, json; x = torch.randn(2, 3, 8, 8, device='cuda'); "
                  "torch.nn.functional.conv2d(x, torch.randn(4, 3, 3, 3, device='cuda')); torch.cuda.synchronize(); "
                  "print(json.dumps(sorted({l.split()[-1] for l in open('/proc/self/maps') if 'cudnn' in l})))")
    from_copy = dict(env, PYTHONPATH=copy)
    subprocess.run([sys.executable, workload, "run", patched_out], check=True, env=from_copy)
    mapped = json.loads(subprocess.run([sys.executable, "-c", maps_probe], check=True, env=from_copy,
                                       capture_output=True, text=True).stdout)
    print("cuDNN mapped by a convolution from the copy:", mapped)
    assert mapped and all(m.startswith(copy) for m in mapped), mapped
    subprocess.run([sys.executable, workload, "compare", original, patched_out], check=True)
    print("the workload from the patched copy agrees with the original")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["store", "venv"])
    parser.add_argument("--cudapkgs", required=True)
    parser.add_argument("--store", default="/tmp/runtime-store")
    parser.add_argument("--work", default="/tmp/runtime-loads")
    args = parser.parse_args()
    {"store": store, "venv": venv}[args.mode](args)


if __name__ == "__main__":
    main()
