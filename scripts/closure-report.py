#!/usr/bin/env python3
"""Closure sizes per output against the unsplit package, for every CUDA component that
NVIDIA publishes on PyPI for one CUDA major: builds them all with `cudapkgs build` into a
fresh store, then prints a Markdown table (for docs/closures.md).

    python3 scripts/closure-report.py [--cudapkgs target/release/cudapkgs] [--cuda 13]
"""

import argparse
import json
import os
import subprocess
import tempfile

PACKAGES = [
    "cuda_cudart", "cuda_nvrtc", "cuda_cupti", "cuda_nvcc", "cuda_cccl", "cuda_nvtx",
    "cuda_cuobjdump", "cuda_nvdisasm", "libnvvm", "libcublas", "libcufft", "libcurand",
    "libcusolver", "libcusparse", "libnvjitlink", "libnvjpeg", "cudnn", "nccl", "cusparselt",
]
# libcufile is left out: its libcufile_rdma.so.1 needs libibverbs.so.1 (rdma-core), which
# no CUDA package provides, and `cudapkgs build` refuses an unresolved library.


def mib(n):
    return f"{n / 2**20:,.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cudapkgs", default="target/release/cudapkgs")
    parser.add_argument("--cuda", default="13")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        store = ["--store-dir", os.path.join(work, "store")]
        cmd = [args.cudapkgs, "--json", "build", "--cuda", args.cuda, *store, *PACKAGES]
        built = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

        def closure(path):
            out = subprocess.run([args.cudapkgs, "--json", "closure", *store, path], check=True,
                                 capture_output=True, text=True).stdout
            return json.loads(out)["total_nar_size"]

        print("| package | version | needs | whole package (out closure) | lib | lib closure | dev closure | static | include |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        totals = {"out": 0, "lib": 0}
        for p in built:
            outs = p["outputs"]
            sizes = {}
            for name, path in outs.items():
                info = subprocess.run([args.cudapkgs, "--json", "path-info", *store, path], check=True,
                                      capture_output=True, text=True).stdout
                sizes[name] = json.loads(info)[0]["nar_size"]
            whole = closure(outs["out"])
            lib_closure = closure(outs["lib"]) if "lib" in outs else 0
            totals["out"] += sum(v for k, v in sizes.items() if k != "out") + sizes["out"]
            totals["lib"] += sizes.get("lib", 0)
            cells = [
                p["package"], p["version"], ", ".join(p["depends_on"]) or "-", mib(whole),
                mib(sizes["lib"]) if "lib" in sizes else "-",
                mib(lib_closure) if "lib" in sizes else "-",
                mib(closure(outs["dev"])) if "dev" in outs else "-",
                mib(sizes["static"]) if "static" in sizes else "-",
                mib(sizes["include"]) if "include" in sizes else "-",
            ]
            print("| " + " | ".join(cells) + " |")
        print(f"\nAll outputs: {mib(totals['out'])} MiB; all lib outputs: {mib(totals['lib'])} MiB (NAR sizes, MiB).")
        subprocess.run(["chmod", "-R", "u+w", work], check=False)


if __name__ == "__main__":
    main()
