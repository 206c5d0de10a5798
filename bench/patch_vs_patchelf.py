#!/usr/bin/env python3
"""Time `cudapkgs patch --set-runpath` against `patchelf --set-rpath` and a plain copy.

Each run starts from a fresh copy of the library (not timed). cudapkgs writes a new
file beside the original, flushes it to disk (fsync) and renames it; patchelf rewrites
in place without flushing. So two copy baselines are shown: `cp` alone, and a copy that
is flushed to disk like cudapkgs' output. Prints the best of N runs and the ratios.

    python3 bench/patch_vs_patchelf.py --cudapkgs target/release/cudapkgs LIB...
"""

import os
import shutil
import subprocess
import tempfile
import time

import bench_args

RUNPATH = "$ORIGIN:/run/opengl-driver/lib:/nix/store/0123456789abcdfghijklmnpqrsvwxyz-cuda_cudart-12.9.79-lib/lib"


def best(runs, prepare, command):
    times = []
    for _ in range(runs):
        prepare()
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def flushed_copy(source, target):
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())


def main():
    parser = bench_args.parser(__doc__, runs=5)
    parser.add_argument("libraries", nargs="+")
    parser.add_argument("--patchelf", default=shutil.which("patchelf") or "patchelf")
    args = parser.parse_args()

    version = subprocess.run([args.patchelf, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"patchelf: {version}; runpath of {len(RUNPATH)} bytes")
    print(f"{'library':<28} {'size':>7} {'cp':>8} {'cp+fsync':>9} {'patchelf':>9} {'cudapkgs':>9} {'vs patchelf':>12} {'vs cp+fsync':>12}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        for library in args.libraries:
            target = os.path.join(work, os.path.basename(library))
            fresh = lambda library=library, target=target: shutil.copyfile(library, target)  # noqa: E731
            nothing = lambda: None  # noqa: E731
            copy = best(args.runs, nothing, ["cp", library, target])
            start_times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                flushed_copy(library, target)
                start_times.append(time.perf_counter() - start)
            flushed = min(start_times)
            theirs = best(args.runs, fresh, [args.patchelf, "--set-rpath", RUNPATH, target])
            ours = best(args.runs, fresh, [args.cudapkgs, "patch", "-q", "--set-runpath", RUNPATH, target])
            size = os.path.getsize(library) / 2**20
            print(
                f"{os.path.basename(library):<28} {size:>5.0f}MB {copy:>7.3f}s {flushed:>8.3f}s {theirs:>8.3f}s {ours:>8.3f}s"
                f" {theirs / ours:>11.2f}x {ours / flushed:>11.2f}x"
            )


if __name__ == "__main__":
    main()
