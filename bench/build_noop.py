#!/usr/bin/env python3
"""Time a build of the README's set (CUDA runtime, NVRTC, cuBLAS) and its no-op re-run.

The set is built from NVIDIA's wheels in .tools/nvidia/wheels (scripts/install-nvidia-
tools.sh) given as PACKAGE=FILE, so no network is involved: the first build unpacks,
patches, hashes and adds every output; a re-run finds the store's build record of the
same inputs and must add nothing. Prints both times (median of RUNS re-runs) and their
ratio; the goal is a re-run under 0.5 s.

    python3 bench/build_noop.py --cudapkgs target/release/cudapkgs [--runs 5]
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import tempfile
import time

WHEELS = {
    "cuda_cudart": "nvidia_cuda_runtime-13*.whl",
    "cuda_nvrtc": "nvidia_cuda_nvrtc-13*.whl",
    "libcublas": "nvidia_cublas-13*.whl",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cudapkgs", default="target/release/cudapkgs")
    parser.add_argument("--wheels", default=".tools/nvidia/wheels")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    inputs = []
    for package, pattern in WHEELS.items():
        found = sorted(glob.glob(os.path.join(args.wheels, pattern)))
        if not found:
            raise SystemExit(f"no {pattern} in {args.wheels}: run scripts/install-nvidia-tools.sh")
        inputs.append(f"{package}={found[-1]}")
    with tempfile.TemporaryDirectory() as work:
        command = [
            args.cudapkgs, "--json", "build", *inputs,
            "--store-dir", os.path.join(work, "store"),
            "--state-dir", os.path.join(work, "state"),
            "--cache", os.path.join(work, "cache"),
        ]

        def timed():
            start = time.perf_counter()
            out = subprocess.run(command, check=True, capture_output=True, text=True)
            return time.perf_counter() - start, json.loads(out.stdout)

        first, built = timed()
        assert not any(p["reused"] for p in built), "the first build is a build"
        again = []
        for _ in range(args.runs):
            seconds, rebuilt = timed()
            assert all(p["reused"] for p in rebuilt), "a re-run takes the record"
            assert [p["outputs"] for p in rebuilt] == [p["outputs"] for p in built]
            again.append(seconds)
    median = statistics.median(again)
    print(f"first build of {len(inputs)} packages: {first:.2f} s")
    print(f"no-op re-run: median {median:.3f} s of {args.runs} ({' '.join(f'{t:.3f}' for t in again)})")
    print(f"ratio re-run / first build: {median / first:.4f} ({first / median:.0f}x faster)")
    print(f"goal (re-run under 0.5 s): {'met' if median < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
