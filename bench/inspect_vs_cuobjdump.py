#!/usr/bin/env python3
"""Time and peak memory of `cudapkgs inspect` against `cuobjdump -all -lelf -lptx`.

Runs both tools on the same files, each several times, and prints the best wall
time, the peak resident memory, and the ratios. With --tree DIR it also times
`cudapkgs inspect DIR` over a whole tree (a venv's site-packages), optionally pinned
to N cores with --cores.

    python3 bench/inspect_vs_cuobjdump.py --cudapkgs target/release/cudapkgs \
        --cuobjdump .tools/nvidia/nvidia/cu13/bin/cuobjdump libcublasLt.so.12
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import bench_args


def measure(command, runs, cores):
    """Best wall time (s) and largest peak RSS (KiB) over `runs` runs.

    GNU time reports the peak RSS of the measured program alone (a Python child's
    figure would include the interpreter pages it was forked from).
    """
    if cores:
        command = ["taskset", "-c", ",".join(str(c) for c in range(cores))] + command
    best, peak = float("inf"), 0
    with tempfile.NamedTemporaryFile("r") as report:
        for _ in range(runs):
            start = time.perf_counter()
            code = subprocess.call(
                ["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            elapsed = time.perf_counter() - start
            if code not in (0, 1):
                sys.exit(f"{' '.join(command)} exited with {code}")
            report.seek(0)
            best = min(best, elapsed)
            peak = max(peak, int(report.read().split()[-1]))
    return best, peak


def main():
    parser = bench_args.parser(__doc__, runs=3)
    parser.add_argument("files", nargs="*")
    parser.add_argument("--cuobjdump", default=shutil.which("cuobjdump") or ".tools/nvidia/nvidia/cu13/bin/cuobjdump")
    parser.add_argument("--tree", help="also time `cudapkgs inspect TREE`")
    parser.add_argument("--cores", type=int, default=0, help="pin every run to this many cores")
    args = parser.parse_args()

    print(f"{'file':<40} {'size':>9} {'cuobjdump':>16} {'cudapkgs':>16} {'speed':>8} {'memory':>8}")
    for path in args.files:
        size = os.path.getsize(path)
        theirs = measure([args.cuobjdump, "-all", "-lelf", "-lptx", path], args.runs, args.cores)
        ours = measure([args.cudapkgs, "inspect", "--json", path], args.runs, args.cores)
        print(
            f"{os.path.basename(path):<40} {size / 2**20:>7.0f}MB"
            f" {theirs[0]:>7.3f}s {theirs[1] / 1024:>6.0f}MiB"
            f" {ours[0]:>7.3f}s {ours[1] / 1024:>6.0f}MiB"
            f" {theirs[0] / ours[0]:>7.0f}x {theirs[1] / ours[1]:>7.0f}x"
        )
    if args.tree:
        for extra in ([], ["--gpu", "9.0"]):
            wall, rss = measure([args.cudapkgs, "inspect", *extra, args.tree], args.runs, args.cores)
            label = " ".join(["inspect", *extra, "TREE"])
            print(f"{label:<40} {'':>9} {'':>16} {wall:>7.3f}s {rss / 1024:>6.0f}MiB  ({args.cores or os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
