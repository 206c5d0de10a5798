#!/usr/bin/env python3
"""Time `cudapkgs prune` on a whole tree against copying that tree.

Copies TREE once with `cp -a` (timed: the reference), then prunes that copy to the
given capabilities (timed), and prints both with the bytes saved on disk.

    python3 bench/prune_vs_copy.py --cudapkgs target/release/cudapkgs --gpu H100 SITE_PACKAGES/torch SITE_PACKAGES/nvidia
"""

import os
import subprocess
import tempfile
import time

import bench_args


def allocated(path):
    out = subprocess.run(["du", "-s", "-B1", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def main():
    parser = bench_args.parser(__doc__)
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--gpu", default="H100")
    parser.add_argument("--cores", type=int, default=0, help="pin both steps to this many cores")
    args = parser.parse_args()
    pin = ["taskset", "-c", ",".join(str(c) for c in range(args.cores))] if args.cores else []

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        start = time.perf_counter()
        subprocess.run([*pin, "cp", "-a", *args.trees, work], check=True)
        copy = time.perf_counter() - start
        before = allocated(work)
        start = time.perf_counter()
        subprocess.run([*pin, args.cudapkgs, "prune", "-q", "--gpu", args.gpu, work], check=True, stdout=subprocess.DEVNULL)
        prune = time.perf_counter() - start
        after = allocated(work)
    print(f"copy {copy:.2f} s, prune to {args.gpu} {prune:.2f} s ({prune / copy:.2f}x the copy); "
          f"allocated {before / 2**30:.2f} GiB -> {after / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
