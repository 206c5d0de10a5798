#!/usr/bin/env python3
"""Time `cudapkgs closure` against `nix-store --query --requisites` on a store of PATHS paths.

Builds PATHS small trees, each mentioning up to three earlier ones (the previous one,
its half, and one more), adds them with `cudapkgs store add --input` (so those become
references) to a store `/nix/store` under a temporary physical root, and registers the
same paths, NAR hashes and references in a real Nix database under that root with
`nix-store --load-db` (Nix 2.8's `--register-validity` looks for the files outside the
root), then `nix-store --verify-path` re-hashes the last path against what we recorded. Both tools then list the closure of the
last path (every path, through the chain) and must agree.

    python3 bench/closure_vs_nix.py [--paths 1500] [--runs 5]
"""

import json
import os
import statistics
import subprocess
import tempfile
import time

import bench_args

NIX_ENV = dict(os.environ, NIX_CONFIG="substituters = \n")


def timed(command, env=None):
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, out.stdout


def main():
    parser = bench_args.parser(__doc__, runs=5)
    parser.add_argument("--paths", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = os.path.join(work, "root")
        where = ["--store-dir", "/nix/store", "--root", root]
        paths = []
        for i in range(args.paths):
            refs = sorted({paths[j] for j in (i - 1, i // 2, (i * 7919) % i if i else 0) if 0 <= j < i})
            tree = os.path.join(work, "src", f"pkg{i}")
            os.makedirs(tree)
            with open(os.path.join(tree, "needs"), "w") as f:
                f.write(f"package {i}\n" + "".join(f"{r}/lib\n" for r in refs))
            inputs = [a for r in refs for a in ("--input", r)]
            added = subprocess.run(
                [args.cudapkgs, "store", "add", "--name", f"pkg-{i}", *inputs, *where, tree],
                check=True, capture_output=True, text=True,
            ).stdout.strip()
            paths.append(added)
        infos = json.loads(subprocess.run(
            [args.cudapkgs, "--json", "path-info", *paths, *where], check=True, capture_output=True, text=True,
        ).stdout)
        registration = "".join(
            f"{i['path']}\n{i['nar_hash']}\n{i['nar_size']}\n\n{len(i['references'])}\n"
            + "".join(f"{r}\n" for r in i["references"])
            for i in infos
        )
        nix_store = ["nix-store", "--store", f"local?root={root}"]
        subprocess.run([*nix_store, "--load-db"], input=registration,
                       check=True, capture_output=True, text=True, env=NIX_ENV)
        top = paths[-1]
        subprocess.run([*nix_store, "--verify-path", top], check=True, env=NIX_ENV)
        ours_times, nix_times = [], []
        for _ in range(args.runs):
            t, out = timed([args.cudapkgs, "--json", "closure", top, *where])
            ours_times.append(t)
            ours = sorted(p["path"] for p in json.loads(out)["paths"])
            t, out = timed([*nix_store, "--query", "--requisites", top], env=NIX_ENV)
            nix_times.append(t)
            theirs = sorted(out.split())
        assert ours == theirs, "the closures differ"
        edges = sum(len(i["references"]) for i in infos)
        o, n = statistics.median(ours_times), statistics.median(nix_times)
        print(f"store of {len(paths)} paths, {edges} references; closure of the last path: {len(ours)} paths (equal)")
        print(f"  cudapkgs closure      median {o:.3f} s  ({' '.join(f'{t:.3f}' for t in ours_times)})")
        print(f"  nix-store -qR         median {n:.3f} s  ({' '.join(f'{t:.3f}' for t in nix_times)})")
        print(f"  ratio {n / o:.2f}x")
        subprocess.run(["chmod", "-R", "u+w", root], check=False)


if __name__ == "__main__":
    main()
