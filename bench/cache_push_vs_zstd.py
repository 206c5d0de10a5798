#!/usr/bin/env python3
"""Time `cudapkgs push --to file://…` (zstd level 3 on every core) against `zstd -T0 -3`
on the same NAR.

TREE (for instance cuBLAS's `lib` folder, unpacked from its wheel) is added to a fresh
store; `cudapkgs push` then serialises its NAR, hashes it, compresses it, hashes the
compressed file and writes it and its narinfo into an empty cache folder. The reference
compresses the same NAR, already written to a file, with `zstd -T0 -3`; since push
flushes each file to disk before renaming it into place (a crash never leaves a narinfo
pointing at a NAR that is not on disk), zstd is also timed with its output flushed
(`fsync`) the same way. Runs alternate; the medians are compared.

    python3 bench/cache_push_vs_zstd.py --cudapkgs target/release/cudapkgs TREE
"""

import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

import bench_args

CPU = {}


def timed(command, label, **kwargs):
    """Wall time; the CPU time (user + system) of the run is added to CPU[label]."""
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(label, []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall


def main():
    parser = bench_args.parser(__doc__, runs=3)
    parser.add_argument("tree")
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
        ours, theirs, flushed = [], [], []
        compressed = 0
        for run in range(args.runs):
            cache = os.path.join(work, f"cache-{run}")
            ours.append(timed([cudapkgs, "-q", "push", "--to", f"file://{cache}", "--secret-key-file", key, path, *store],
                              "push", stdout=subprocess.DEVNULL))
            compressed = sum(os.path.getsize(os.path.join(cache, "nar", f)) for f in os.listdir(os.path.join(cache, "nar")))
            shutil.rmtree(cache)
            out = os.path.join(work, "x.nar.zst")
            theirs.append(timed(["zstd", "-q", "-f", "-T0", "-3", nar, "-o", out], "zstd"))
            reference_size = os.path.getsize(out)
            os.remove(out)
            start = time.perf_counter()
            subprocess.run(["zstd", "-q", "-f", "-T0", "-3", nar, "-o", out], check=True)
            with open(out, "rb") as written:
                os.fsync(written.fileno())
            flushed.append(time.perf_counter() - start)
            os.remove(out)
            os.sync()
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        print(f"NAR: {nar_size / 2**20:.1f} MiB; push wrote {compressed / 2**20:.1f} MiB, zstd -3 {reference_size / 2**20:.1f} MiB")
        print(f"cudapkgs push (NAR, hashes, zstd -3, narinfo): {' '.join(f'{t:.2f}' for t in ours)} s, median {ours_median:.2f} s")
        print(f"zstd -T0 -3 on the NAR file:                   {' '.join(f'{t:.2f}' for t in theirs)} s, median {theirs_median:.2f} s")
        flushed_median = statistics.median(flushed)
        print(f"zstd -T0 -3, output flushed to disk:          {' '.join(f'{t:.2f}' for t in flushed)} s, median {flushed_median:.2f} s")
        print(f"ratio (push / zstd): {ours_median / theirs_median:.2f}x; (push / zstd flushed): "
              f"{ours_median / flushed_median:.2f}x (goal: at most 1.2x)")
        cpu = {label: statistics.median(times) for label, times in CPU.items()}
        print(f"CPU time (user + system), medians: push {cpu['push']:.2f} s, zstd {cpu['zstd']:.2f} s, "
              f"ratio {cpu['push'] / cpu['zstd']:.2f}x")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
