#!/usr/bin/env python3
"""Check `cudapkgs inspect --gpu` against what the NVIDIA driver actually does.

Run on a machine with a GPU. For every library given (folders are searched), asks
cudapkgs for its per-kernel verdict for this GPU and driver, then loads every
`.nv_fatbin` container that holds kernels with the driver API (cuModuleLoadData,
eager loading) and looks up each kernel (cuModuleGetFunction). A container must load
exactly when cudapkgs says at least one of its kernels has a usable image, and each
kernel cudapkgs calls usable must be found. Prints one line per library and a total;
exits 1 on any disagreement.

    python3 scripts/gpu-truth.py --cudapkgs target/release/cudapkgs site-packages/torch/lib
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys

from tree_files import files_under

CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


class Driver:
    def __init__(self):
        os.environ["CUDA_MODULE_LOADING"] = "EAGER"
        self.lib = ctypes.CDLL("libcuda.so.1")
        self.check(self.lib.cuInit(0), "cuInit")
        device = ctypes.c_int()
        self.check(self.lib.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
        major, minor, version = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        self.lib.cuDeviceGetAttribute(ctypes.byref(major), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device)
        self.lib.cuDeviceGetAttribute(ctypes.byref(minor), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device)
        self.lib.cuDriverGetVersion(ctypes.byref(version))
        self.capability = f"{major.value}.{minor.value}"
        self.cuda = f"{version.value // 1000}.{version.value % 1000 // 10}"
        context = ctypes.c_void_p()
        self.check(self.lib.cuDevicePrimaryCtxRetain(ctypes.byref(context), device), "cuDevicePrimaryCtxRetain")
        self.check(self.lib.cuCtxSetCurrent(context), "cuCtxSetCurrent")

    @staticmethod
    def check(code, what):
        if code != 0:
            sys.exit(f"{what} failed with CUDA error {code}")

    def load(self, image):
        """Loads a container; returns (error code, found kernel names or None)."""
        module = ctypes.c_void_p()
        buffer = ctypes.create_string_buffer(image, len(image))
        code = self.lib.cuModuleLoadData(ctypes.byref(module), buffer)
        return code, module

    def has_function(self, module, name):
        function = ctypes.c_void_p()
        return self.lib.cuModuleGetFunction(ctypes.byref(function), module, name.encode()) == 0

    def unload(self, module):
        self.lib.cuModuleUnload(module)


def libraries(roots):
    return files_under(roots, lambda path: ".so" in os.path.basename(path))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--cudapkgs", default="target/release/cudapkgs")
    args = parser.parse_args()

    driver = Driver()
    print(f"GPU {driver.capability}, driver CUDA {driver.cuda}")
    print(f"{'library':<40} {'containers':>10} {'loaded':>7} {'kernels':>8} {'found':>7}  result")
    totals = {"containers": 0, "kernels": 0, "disagreements": 0, "libraries": 0}
    for path in libraries(args.paths):
        out = subprocess.run(
            [args.cudapkgs, "inspect", "--json", "--gpu", driver.capability, "--driver-cuda", driver.cuda, path],
            capture_output=True, check=False, text=True,
        )
        if out.returncode == 2:
            continue
        report = json.loads(out.stdout)
        if not report["files"] or not report["files"][0].get("kernels"):
            continue
        file = report["files"][0]
        by_container = {}
        for verdict in file["kernels"]:
            by_container.setdefault(verdict["container"], []).append(verdict)
        sizes = {c["offset"]: c["size"] for u in file["units"] for c in u["containers"]}
        with open(path, "rb") as handle:
            data = handle.read()
        loaded = found = checked = 0
        problems = []
        for offset, verdicts in sorted(by_container.items()):
            usable = [v for v in verdicts if v["image"]]
            code, module = driver.load(data[offset : offset + sizes[offset]])
            if (code == 0) != bool(usable):
                problems.append(f"container {offset:#x}: driver error {code}, cudapkgs says {len(usable)} of {len(verdicts)} kernels usable")
            if code == 0:
                loaded += 1
                for verdict in usable:
                    checked += 1
                    if driver.has_function(module, verdict["kernel"]):
                        found += 1
                    else:
                        problems.append(f"container {offset:#x}: kernel {verdict['kernel']} not found")
                driver.unload(module)
        totals["libraries"] += 1
        totals["containers"] += len(by_container)
        totals["kernels"] += checked
        totals["disagreements"] += len(problems)
        result = "agree" if not problems else f"{len(problems)} DISAGREEMENTS: " + "; ".join(problems[:3])
        print(f"{os.path.basename(path)[:40]:<40} {len(by_container):>10} {loaded:>7} {checked:>8} {found:>7}  {result}")
    print(
        f"{totals['libraries']} libraries, {totals['containers']} containers, {totals['kernels']} kernels checked, "
        f"{totals['disagreements']} disagreements"
    )
    sys.exit(1 if totals["disagreements"] else 0)


if __name__ == "__main__":
    main()
