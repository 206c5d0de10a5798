#!/usr/bin/env python3
"""Build a mirror in NVIDIA's redistributable layout from real PyPI wheels.

Each wheel's `nvidia/<component>/{lib,include,bin}` is repacked as NVIDIA packs its
archives: `<pkg>-linux-x86_64-<version>-archive/` holding `lib/` (the library under its
full version, with the `.so.<major>` and `.so` links), `include/`, `bin/`, `pkg-config/`
(for cudart, in NVIDIA's form) and `LICENSE`, compressed with xz. A manifest
`cuda/redist/redistrib_<label>.json` lists them with their real sha256 and size.

    python3 scripts/redist-mirror.py --wheels .tools/nvidia/wheels --out MIRROR [--with-cublas]

Building is skipped when MIRROR already holds this script's output for the same wheels.
"""

import argparse
import fcntl
import hashlib
import io
import json
import lzma
import os
import re
import tarfile
import zipfile

LABEL = "13.0.2"
# wheel name prefix -> (redist package, long name, pkg-config name)
PACKAGES = {
    "nvidia_cuda_runtime": ("cuda_cudart", "CUDA Runtime (cudart)", "cudart-13.0"),
    "nvidia_cuda_nvrtc": ("cuda_nvrtc", "CUDA NVRTC", "nvrtc-13.0"),
    "nvidia_cublas": ("libcublas", "CUDA cuBLAS", "cublas-13.0"),
}


def wheel_for(wheels, prefix):
    for name in sorted(os.listdir(wheels)):
        if name.startswith(prefix + "-") and name.endswith(".whl"):
            return os.path.join(wheels, name)
    raise SystemExit(f"redist-mirror: no {prefix} wheel in {wheels}")


def add(tar, name, data=None, mode=0o644, link=None):
    info = tarfile.TarInfo(name)
    info.mtime = 1700000000
    info.uname = info.gname = "root"
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
    elif data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))


def pkg_config(name, version):
    library = name.split("-")[0]
    return (
        "cudaroot=/usr/local/cuda-13.0\n"
        "libdir=${cudaroot}/targets/x86_64-linux/lib\n"
        "includedir=${cudaroot}/targets/x86_64-linux/include\n\n"
        f"Name: {library}\nDescription: CUDA {library}\nVersion: 13.0\n"
        f"Libs: -L${{libdir}} -l{library}\nCflags: -I${{includedir}}\n"
    ).encode()


def repack(wheel, package, pc_name, version, out_path, preset):
    top = f"{package}-linux-x86_64-{version}-archive"
    with zipfile.ZipFile(wheel) as whl, lzma.open(out_path, "wb", preset=preset) as xz, \
            tarfile.open(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, top)
        made = set()
        members = sorted((i for i in whl.infolist() if i.filename.startswith("nvidia/") and not i.is_dir()),
                         key=lambda i: i.filename)
        for info in members:
            parts = info.filename.split("/")
            kind, rest = parts[2], "/".join(parts[3:])
            if kind not in ("lib", "include", "bin") or ".alt." in rest:
                continue
            for folder in [kind] + [f"{kind}/{'/'.join(rest.split('/')[:i])}" for i in range(1, rest.count("/") + 1)]:
                if folder not in made:
                    made.add(folder)
                    add(tar, f"{top}/{folder}")
            data = whl.read(info)
            mode = 0o755 if kind == "bin" else 0o644
            base = rest.split("/")[-1]
            shared = re.fullmatch(r"(lib.+)\.so\.([0-9.]+)", base) if kind == "lib" else None
            if shared:
                # NVIDIA's form: libcudart.so.13.0.96, libcudart.so.13 -> it, libcudart.so -> .so.13
                full = f"{shared.group(1)}.so.{version}"
                add(tar, f"{top}/lib/{full}", data, mode)
                if full != base:
                    add(tar, f"{top}/lib/{base}", link=full)
                add(tar, f"{top}/lib/{shared.group(1)}.so", link=base)
            else:
                add(tar, f"{top}/{kind}/{rest}", data, mode)
        if package == "cuda_cudart":
            add(tar, f"{top}/pkg-config")
            add(tar, f"{top}/pkg-config/{pc_name}.pc", pkg_config(pc_name, version))
        license_name = next(n for n in whl.namelist() if n.endswith("License.txt"))
        add(tar, f"{top}/LICENSE", whl.read(license_name))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", default=".tools/nvidia/wheels")
    parser.add_argument("--out", required=True)
    parser.add_argument("--with-cublas", action="store_true")
    parser.add_argument("--preset", type=int, default=1, help="xz preset (NVIDIA uses a high one; 1 keeps tests fast)")
    args = parser.parse_args()
    prefixes = [p for p in PACKAGES if p != "nvidia_cublas" or args.with_cublas]
    wheels = {p: wheel_for(args.wheels, p) for p in prefixes}
    stamp_text = json.dumps({p: os.path.basename(w) for p, w in wheels.items()} | {"preset": args.preset}, sort_keys=True)
    folder = os.path.join(args.out, "cuda", "redist")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(args.out, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = os.path.join(args.out, ".built")
        if os.path.exists(stamp) and open(stamp).read() == stamp_text:
            print(args.out)
            return
        manifest = {"release_date": "2025-10-09", "release_label": LABEL, "release_product": "cuda"}
        for prefix, wheel in wheels.items():
            package, long_name, pc_name = PACKAGES[prefix]
            version = os.path.basename(wheel).split("-")[1]
            relative = f"{package}/linux-x86_64/{package}-linux-x86_64-{version}-archive.tar.xz"
            path = os.path.join(folder, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            repack(wheel, package, pc_name, version, path + ".tmp", args.preset)
            os.replace(path + ".tmp", path)
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
            manifest[package] = {
                "name": long_name, "license": "CUDA Toolkit", "license_path": f"{package}/LICENSE.txt",
                "version": version,
                "linux-x86_64": {"relative_path": relative, "sha256": digest,
                                 "md5": hashlib.md5(open(path, "rb").read()).hexdigest(),
                                 "size": str(os.path.getsize(path))},
            }
        with open(os.path.join(folder, f"redistrib_{LABEL}.json"), "w") as f:
            json.dump(manifest, f, indent=4)
        with open(stamp, "w") as f:
            f.write(stamp_text)
    print(args.out)


if __name__ == "__main__":
    main()
