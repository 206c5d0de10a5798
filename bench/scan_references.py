#!/usr/bin/env python3
"""Throughput of the reference scanner: ours against `grep -F` with the same patterns.

Reads FILE… (default: the NVIDIA libraries and headers of `scripts/install-nvidia-tools.sh`)
and looks for CANDIDATES hash parts in them. Ours: the `scan_speed` example feeds the
bytes, already in memory, through `ReferenceScanner` in 1 MiB writes on one core.
Reference: GNU grep's multi-pattern fixed-string search (`grep -F -c -f`) over the same
files, warm in the page cache, also on one core. Goal: at least 2 GB/s per core on binaries.

    python3 bench/scan_references.py [--candidates 1000] [FILE…]
"""

import glob
import os
import statistics
import subprocess
import tempfile
import time

import bench_args

TOOLS = ".tools/nvidia/nvidia"


def default_sets():
    lib = sorted(glob.glob(f"{TOOLS}/cu13/lib/*.so*") + glob.glob(f"{TOOLS}/cudnn/lib/*.so*"))
    headers = sorted(p for p in glob.glob(f"{TOOLS}/**/include/**/*.h*", recursive=True) if os.path.isfile(p))
    return {"libraries": [p for p in lib if not os.path.islink(p)], "headers": headers}


def ours(files, candidates, patterns):
    out = subprocess.run(
        ["target/release/examples/scan_speed", str(candidates), patterns, *files],
        check=True, capture_output=True, text=True,
    )
    size, seconds, found = out.stdout.split()
    return int(size), float(seconds), int(found)


def grep(files, patterns):
    start = time.perf_counter()
    # Exit 1 means no match, which is the expected outcome.
    subprocess.run(["grep", "-F", "-c", "-f", patterns, *files], capture_output=True, check=False)
    return time.perf_counter() - start


def main():
    parser = bench_args.parser(__doc__, runs=3, cudapkgs=False)
    parser.add_argument("files", nargs="*")
    parser.add_argument("--candidates", type=int, default=1000)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cudapkgs-nix", "--example", "scan_speed"], check=True)
    sets = {"given": args.files} if args.files else default_sets()
    with tempfile.TemporaryDirectory() as work:
        patterns = os.path.join(work, "patterns")
        for name, files in sets.items():
            ours(files, args.candidates, patterns)  # warms the page cache, writes the patterns
            runs = [ours(files, args.candidates, patterns) for _ in range(args.runs)]
            size = runs[0][0]
            our_time = statistics.median(r[1] for r in runs)
            grep_time = statistics.median(grep(files, patterns) for _ in range(args.runs))
            print(
                f"{name}: {len(files)} files, {size / 1e9:.2f} GB, {args.candidates} candidates, found {runs[0][2]}\n"
                f"  cudapkgs scanner {our_time:.3f} s = {size / our_time / 1e9:.1f} GB/s (one core)\n"
                f"  grep -F -f       {grep_time:.3f} s = {size / grep_time / 1e9:.2f} GB/s\n"
                f"  ratio {grep_time / our_time:.1f}x"
            )


if __name__ == "__main__":
    main()
