#!/usr/bin/env python3
"""Time adding a tree to a store: `cudapkgs store add` against `nix-store --add`.

Both add TREE to a fresh store under a temporary physical root (store folder
`/nix/store`), so both copy, hash and register the same bytes; the two paths must agree.
Needs free space for 2 × RUNS + 1 copies of TREE.
Runs alternate between the two tools, and the medians are compared.
`cudapkgs store add --scan-references` is timed too, against a store that already holds
REFERENCE_PATHS valid paths, so its scanner checks every window of the NAR.

    python3 bench/store_add_vs_nix.py --cudapkgs target/release/cudapkgs .tools/nvidia/nvidia
"""

import os
import resource
import statistics
import subprocess
import tempfile
import time

import bench_args

NIX_CONFIG = "substituters = \nexperimental-features = nix-command\n"


CPU = []


def timed(command, env=None):
    """Wall time and last output line; the CPU time (user + system) goes to CPU."""
    # Dirty pages of an earlier run would throttle this one's writes.
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall, out.stdout.strip().splitlines()[-1]


def fmt(times):
    return " ".join(f"{t:.2f}" for t in times)


def size(path):
    out = subprocess.run(["du", "-s", "-B1", "--apparent-size", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def main():
    parser = bench_args.parser(__doc__)
    parser.add_argument("tree")
    parser.add_argument("--reference-paths", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each; medians are printed")
    args = parser.parse_args()
    gib = size(args.tree) / 2**30
    env = dict(os.environ, NIX_CONFIG=NIX_CONFIG)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        # Read-only trees inside would stop the temporary folder's removal.
        cleanup = ["chmod", "-R", "u+w", work]
        nix_times, our_times, nix_cpu, our_cpu = [], [], [], []
        for run in range(args.runs):
            nix, nix_path = timed(["nix-store", "--store", f"local?root={work}/nix{run}", "--add", args.tree], env)
            ours, our_path = timed([args.cudapkgs, "store", "add", "--root", f"{work}/ours{run}", args.tree])
            assert our_path == nix_path, (our_path, nix_path)
            nix_times.append(nix)
            our_times.append(ours)
            nix_cpu.append(CPU[-2])
            our_cpu.append(CPU[-1])
            # Stores are kept until the end: on ext4, creating files just after deleting
            # thousands makes inode allocation the main cost, whichever tool comes next.
        nix, ours = statistics.median(nix_times), statistics.median(our_times)
        # A store with many valid paths, so every window of the NAR is a candidate check.
        for i in range(args.reference_paths):
            leaf = f"{work}/leaves/leaf{i}"
            os.makedirs(os.path.dirname(leaf), exist_ok=True)
            with open(leaf, "w") as f:
                f.write(str(i))
        subprocess.run(["sh", "-c", f'for f in {work}/leaves/*; do "{args.cudapkgs}" store add --root {work}/scan "$f"; done'],
                       check=True, capture_output=True)
        scan, _ = timed([args.cudapkgs, "store", "add", "--scan-references", "--root", f"{work}/scan", args.tree])
        subprocess.run(cleanup, check=True)
    print(f"tree {gib:.2f} GiB: nix-store --add {nix:.2f} s, cudapkgs store add {ours:.2f} s "
          f"({nix / ours:.2f}x faster); with --scan-references over {args.reference_paths} valid paths "
          f"{scan:.2f} s ({gib / scan:.2f} GiB/s end to end); runs: nix {fmt(nix_times)}, cudapkgs {fmt(our_times)}; "
          f"CPU (user+system) medians: nix {statistics.median(nix_cpu):.2f} s, cudapkgs {statistics.median(our_cpu):.2f} s")


if __name__ == "__main__":
    main()
