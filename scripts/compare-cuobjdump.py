#!/usr/bin/env python3
"""Compare `cudapkgs inspect` with `cuobjdump -all -lelf -lptx` on real libraries.

For every ELF file given (folders are searched), both tools list the SASS and PTX
entries; the two lists of (kind, architecture) must be identical, in order. With
--download, NVIDIA's wheels named in WHEELS are fetched from PyPI first (hundreds of
MB) and their libraries compared. Prints one line per library and exits 1 on any
disagreement.

    python3 scripts/compare-cuobjdump.py --download --cudapkgs target/release/cudapkgs
    python3 scripts/compare-cuobjdump.py /path/to/site-packages/nvidia
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

from tree_files import files_under

# One wheel per library family named by the comparison: cuBLAS 12 and 13, cuRAND,
# NCCL (both fatbin sections), cuDNN, cuFFT, and a CUDA 11 wheel.
WHEELS = [
    "nvidia-cublas-cu12==12.9.3.13",
    "nvidia-cublas==13.10.0.20",
    "nvidia-curand==10.4.5.25",
    "nvidia-nccl-cu12==2.32.3",
    "nvidia-cudnn-cu12==9.28.0.42",
    "nvidia-cufft==12.5.0.14",
    "nvidia-curand-cu11==10.3.0.86",
]

LISTING = re.compile(r"^(ELF|PTX) file\s+\d+: (.+)\.(cubin|ptx)$")


def cuobjdump_entries(cuobjdump, path, legacy=None):
    out = subprocess.run([cuobjdump, "-all", "-lelf", "-lptx", path], capture_output=True, check=False, text=True)
    if legacy and "has been removed" in out.stderr:
        # cuobjdump 13 refuses files with sm_35 code (CUDA 11 libraries): ask 11.8.
        out = subprocess.run([legacy, "-all", "-lelf", "-lptx", path], capture_output=True, check=False, text=True)
    entries = []
    for line in out.stdout.splitlines():
        match = LISTING.match(line.strip())
        if match:
            entries.append((match.group(1), match.group(2).rsplit(".", 1)[-1]))
    return entries


def our_entries(cudapkgs, path):
    out = subprocess.run([cudapkgs, "inspect", "--json", path], capture_output=True, check=False, text=True)
    if out.returncode == 2:
        return None, out.stderr.strip()
    report = json.loads(out.stdout)
    entries = []
    for file in report["files"]:
        for unit in file.get("units", []):
            for container in unit["containers"]:
                for entry in container["entries"]:
                    if entry["kind"] == "sass":
                        # cuobjdump's -lelf drops the family suffix.
                        entries.append(("ELF", entry["arch"].rstrip("f")))
                    elif entry["kind"] in ("ptx", "relocatable-ptx"):
                        entries.append(("PTX", entry["arch"].replace("compute_", "sm_", 1)))
    return entries, None


def sections(path):
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, check=False, text=True)
    return sorted({name for name in (".nv_fatbin", "__nv_relfatbin") if name in out.stdout})


def is_elf(path):
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def elf_files(roots):
    return files_under(roots, is_elf)


def download(directory):
    os.makedirs(directory, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
         "--platform", "manylinux_2_27_x86_64", "--platform", "manylinux_2_28_x86_64",
         "--python-version", "3.12", "-d", directory, *WHEELS],
        check=True,
    )
    unpacked = os.path.join(directory, "unpacked")
    for wheel in sorted(os.listdir(directory)):
        if not wheel.endswith(".whl"):
            continue
        target = os.path.join(unpacked, wheel[: -len(".whl")])
        if os.path.isdir(target):
            continue
        with zipfile.ZipFile(os.path.join(directory, wheel)) as archive:
            for member in archive.namelist():
                if ".so" in os.path.basename(member):
                    archive.extract(member, target)
    return [unpacked]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--download", action="store_true", help="fetch the WHEELS from PyPI first")
    parser.add_argument("--cache", default=".tools/real-libraries")
    parser.add_argument("--cudapkgs", default="target/release/cudapkgs")
    parser.add_argument("--cuobjdump", default=shutil.which("cuobjdump") or ".tools/nvidia/nvidia/cu13/bin/cuobjdump")
    parser.add_argument(
        "--legacy-cuobjdump",
        help="cuobjdump 11.8 for CUDA 11 libraries, which cuobjdump 13 refuses (Debian non-free: nvidia-cuda-toolkit)",
    )
    args = parser.parse_args()

    roots = list(args.paths)
    if args.download:
        roots += download(args.cache)
    if not roots:
        parser.error("name libraries or folders, or pass --download")

    compared, differing = 0, 0
    print(f"{'library':<44} {'size':>7} {'entries':>8} {'ELF':>6} {'PTX':>6}  sections / result")
    for path in elf_files(roots):
        theirs = cuobjdump_entries(args.cuobjdump, path, args.legacy_cuobjdump)
        ours, error = our_entries(args.cudapkgs, path)
        if not theirs and not ours:
            continue
        compared += 1
        elf = sum(1 for kind, _ in theirs if kind == "ELF")
        result = "identical" if ours == theirs else "DIFFERENT"
        if ours != theirs:
            differing += 1
            if error:
                result += f": {error}"
            else:
                first = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), min(len(ours), len(theirs)))
                result += f" at entry {first}: ours {ours[first:first + 2]} cuobjdump {theirs[first:first + 2]} ({len(ours)} vs {len(theirs)})"
        size = os.path.getsize(path) / 2**20
        name = os.path.relpath(path, os.path.commonpath(roots)) if len(roots) > 1 else os.path.basename(path)
        print(f"{name[-44:]:<44} {size:>5.0f}MB {len(theirs):>8} {elf:>6} {len(theirs) - elf:>6}  {'+'.join(sections(path))} {result}")
    print(f"{compared} libraries compared, {differing} different")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
