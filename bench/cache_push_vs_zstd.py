#!/usr/bin/env python3
"""Time `cudapkgs push --to file://…` (zstd level 3 on every core) against `zstd -T0 -3`
on the same NAR.

TREE (for instance cuBLAS's `lib` folder, unpacked from its wheel) is added to a fresh
store; `cudapkgs push` then serialises its NAR, hashes it, compresses it, hashes the
compressed file and writes it and its narinfo into an empty cache folder. The reference
compresses the same NAR, already written to a file, with `zstd -T0 -3`. Runs alternate;
the medians are compared.

    python3 bench/cache_push_vs_zstd.py --cudapkgs target/release/cudapkgs TREE
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def timed(command, **kwargs):
    os.sync()
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree")
    parser.add_argument("--cudapkgs", default="target/release/cudapkgs")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cudapkgs = os.path.abspath(args.cudapkgs)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        store = ["--store-dir", "/nix/store", "--root", os.path.join(work, "root")]
        path = subprocess.run(
            [cudapkgs, "store", "add", "--name", "bench", args.tree, *store],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        key = os.path.join(work, "k.sk")
        subprocess.run([cudapkgs, "cache", "keygen", "bench-1", key, key + ".pk"], check=True, capture_output=True)
        nar = os.path.join(work, "x.nar")
        with open(nar, "wb") as out:
            subprocess.run([cudapkgs, "nar", "dump", os.path.join(work, "root", path.lstrip("/"))], check=True, stdout=out)
        nar_size = os.path.getsize(nar)
        ours, theirs = [], []
        compressed = 0
        for run in range(args.runs):
            cache = os.path.join(work, f"cache-{run}")
            ours.append(timed([cudapkgs, "-q", "push", "--to", f"file://{cache}", "--secret-key-file", key, path, *store],
                              stdout=subprocess.DEVNULL))
            compressed = sum(os.path.getsize(os.path.join(cache, "nar", f)) for f in os.listdir(os.path.join(cache, "nar")))
            shutil.rmtree(cache)
            out = os.path.join(work, "x.nar.zst")
            theirs.append(timed(["zstd", "-q", "-f", "-T0", "-3", nar, "-o", out]))
            reference_size = os.path.getsize(out)
            os.remove(out)
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        print(f"NAR: {nar_size / 2**20:.1f} MiB; push wrote {compressed / 2**20:.1f} MiB, zstd -3 {reference_size / 2**20:.1f} MiB")
        print(f"cudapkgs push (NAR, hashes, zstd -3, narinfo): {' '.join(f'{t:.2f}' for t in ours)} s, median {ours_median:.2f} s")
        print(f"zstd -T0 -3 on the NAR file:                   {' '.join(f'{t:.2f}' for t in theirs)} s, median {theirs_median:.2f} s")
        print(f"ratio (push / zstd): {ours_median / theirs_median:.2f}x (goal: at most 1.2x)")


if __name__ == "__main__":
    main()
