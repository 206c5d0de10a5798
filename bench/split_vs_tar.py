#!/usr/bin/env python3
"""Time `cudapkgs split ARCHIVE` against `xz -dc ARCHIVE | tar x` on the same archive.

The archive is cuBLAS from the wheel of `scripts/install-nvidia-tools.sh`, repacked in
NVIDIA's layout by `scripts/redist-mirror.py --with-cublas` (xz preset 6, as NVIDIA's are
packed). Ours unpacks, checks every entry, fixes up and splits into outputs; the
reference only unpacks. Runs alternate; medians are compared. Also times `cudapkgs
features` over the whole mirror (cudart, nvrtc, cuBLAS).

    cargo build --release && python3 bench/split_vs_tar.py [--runs 3]
"""

import glob
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import bench_args


def timed(command, shell=False):
    start = time.perf_counter()
    subprocess.run(command, check=True, shell=shell, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = bench_args.parser(__doc__, runs=3)
    parser.add_argument("--mirror", default="target/redist-mirror-bench")
    args = parser.parse_args()
    subprocess.run(["python3", "scripts/redist-mirror.py", "--with-cublas", "--preset", "6", "--out", args.mirror],
                   check=True, stdout=subprocess.DEVNULL)
    archive = glob.glob(f"{args.mirror}/cuda/redist/libcublas/linux-x86_64/*.tar.xz")[0]
    size = os.path.getsize(archive)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        for i in range(args.runs):
            target = os.path.join(work, f"tar{i}")
            os.makedirs(target)
            theirs.append(timed(f"xz -dc '{archive}' | tar x -C '{target}'", shell=True))
            shutil.rmtree(target)
            target = os.path.join(work, f"split{i}")
            ours.append(timed([args.cudapkgs, "split", archive, "--out", target]))
            shutil.rmtree(target)
        cache = os.path.join(work, "cache")
        base = "file://" + os.path.abspath(args.mirror)
        subprocess.run([args.cudapkgs, "redist", "fetch", "--release", "13.0.2", "--base-url", base, "--cache", cache],
                       check=True, stdout=subprocess.DEVNULL)
        features = timed([args.cudapkgs, "features", "--release", "13.0.2", "--base-url", base, "--cache", cache])
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"archive {os.path.basename(archive)}: {size / 2**20:.1f} MiB")
    print(f"  xz -dc | tar x     median {t:.2f} s  ({' '.join(f'{x:.2f}' for x in theirs)})")
    print(f"  cudapkgs split     median {o:.2f} s  ({' '.join(f'{x:.2f}' for x in ours)})")
    print(f"  ratio {o / t:.2f}x (goal: at most 1.2x)")
    print(f"  cudapkgs features over the mirror's 3 archives (cached): {features:.2f} s")


if __name__ == "__main__":
    main()
