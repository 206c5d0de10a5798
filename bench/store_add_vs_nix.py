#!/usr/bin/env python3
"""Time adding a tree to a store: `cudapkgs store add` against `nix-store --add`.

Both add TREE to a fresh store under a temporary physical root (store folder
`/nix/store`), so both copy, hash and register the same bytes; the two paths must agree.
`cudapkgs store add --scan-references` is timed too, against a store that already holds
REFERENCE_PATHS valid paths, so its scanner checks every window of the NAR.

    python3 bench/store_add_vs_nix.py --cudapkgs target/release/cudapkgs .tools/nvidia/nvidia
"""

import argparse
import os
import subprocess
import tempfile
import time

NIX_CONFIG = "substituters = \nexperimental-features = nix-command\n"


def timed(command, env=None):
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, out.stdout.strip().splitlines()[-1]


def size(path):
    out = subprocess.run(["du", "-s", "-B1", "--apparent-size", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree")
    parser.add_argument("--cudapkgs", default="target/release/cudapkgs")
    parser.add_argument("--reference-paths", type=int, default=1000)
    args = parser.parse_args()
    gib = size(args.tree) / 2**30
    env = dict(os.environ, NIX_CONFIG=NIX_CONFIG)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        nix, nix_path = timed(["nix-store", "--store", f"local?root={work}/nix", "--add", args.tree], env)
        ours, our_path = timed([args.cudapkgs, "store", "add", "--root", f"{work}/ours", args.tree])
        assert our_path == nix_path, (our_path, nix_path)
        # A store with many valid paths, so every window of the NAR is a candidate check.
        for i in range(args.reference_paths):
            leaf = f"{work}/leaves/leaf{i}"
            os.makedirs(os.path.dirname(leaf), exist_ok=True)
            with open(leaf, "w") as f:
                f.write(str(i))
        subprocess.run(["sh", "-c", f'for f in {work}/leaves/*; do "{args.cudapkgs}" store add --root {work}/scan "$f"; done'],
                       check=True, capture_output=True)
        scan, _ = timed([args.cudapkgs, "store", "add", "--scan-references", "--root", f"{work}/scan", args.tree])
    print(f"tree {gib:.2f} GiB: nix-store --add {nix:.2f} s, cudapkgs store add {ours:.2f} s "
          f"({nix / ours:.2f}x faster); with --scan-references over {args.reference_paths} valid paths "
          f"{scan:.2f} s ({gib / scan:.2f} GiB/s end to end)")


if __name__ == "__main__":
    main()
