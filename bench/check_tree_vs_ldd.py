#!/usr/bin/env python3
"""Time `cudapkgs check DIR` (the run-time closure of every ELF file under DIR through
needed libraries and run-time loads, with the policy's rules) and `cudapkgs closure DIR`
(the same closure reported by distribution, with every file's device code per
architecture) against `ldd` run on each of those files (the loader's own resolution of
needed libraries only, one process per file), on the same tree.

    python3 bench/check_tree_vs_ldd.py [--cudapkgs target/release/cudapkgs] [--runs 5] DIR

Prints each run's seconds, the medians, the ratio, and how many ELF files each saw.
"""

import json
import os
import statistics
import subprocess
import time

import bench_args


def elf_files(root):
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            library = name.endswith(".so") or ".so." in name
            if not (library or os.access(path, os.X_OK)):
                continue
            with open(path, "rb") as file:
                if file.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def main():
    parser = bench_args.parser(__doc__, runs=5)
    parser.add_argument("tree")
    args = parser.parse_args()
    tree = os.path.abspath(args.tree)
    files = elf_files(tree)
    ours, theirs, closures = [], [], []
    checked = None
    for _ in range(args.runs):
        start = time.perf_counter()
        out = subprocess.run([args.cudapkgs, "--json", "closure", tree + "/"], capture_output=True, check=False, text=True)
        closures.append(time.perf_counter() - start)
        if out.returncode != 0:
            raise SystemExit(f"cudapkgs closure failed: {out.stderr}")
        start = time.perf_counter()
        out = subprocess.run([args.cudapkgs, "--json", "check", tree + "/"], capture_output=True, check=False, text=True)
        ours.append(time.perf_counter() - start)
        if out.returncode not in (0, 1):
            raise SystemExit(f"cudapkgs check failed: {out.stderr}")
        checked = json.loads(out.stdout)["files_checked"]
        start = time.perf_counter()
        for path in files:
            subprocess.run(["ldd", path], capture_output=True, check=False)
        theirs.append(time.perf_counter() - start)
    print(f"tree: {tree}: {len(files)} ELF files found by walking it; cudapkgs's closure: {checked} files")
    print("cudapkgs check:", " ".join(f"{t:.3f}" for t in ours), f"median {statistics.median(ours):.3f} s")
    print("cudapkgs closure:", " ".join(f"{t:.3f}" for t in closures), f"median {statistics.median(closures):.3f} s")
    print("ldd per file:  ", " ".join(f"{t:.3f}" for t in theirs), f"median {statistics.median(theirs):.3f} s")
    print(f"ratio (ldd / cudapkgs): {statistics.median(theirs) / statistics.median(ours):.1f}x")


if __name__ == "__main__":
    main()
