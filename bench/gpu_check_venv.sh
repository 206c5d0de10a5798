#!/usr/bin/env bash
# gpu-check's proof on a GPU machine, on a PyTorch venv and on a store built from the
# NVIDIA wheels installed in it:
#   1. the driver and what a sandboxed build needs (--nix-hook);
#   2. every container of the venv loaded on each GPU, against inspect --gpu native
#      (disagreements, loads per second; goal: the whole venv in under 60 s);
#   3. the smoke tests of the venv's CUDA libraries;
#   4. libtorch_cuda.so pruned to 8.0 without PTX: gpu-check must fail, naming kernels;
#   5. the installed NVIDIA distributions zipped back into wheels (from their RECORD),
#      built into a fresh store, and gpu-checked there, with the results in path-info.
#
#   bash bench/gpu_check_venv.sh CUDAPKGS SITE_PACKAGES OUT
set -u
cudapkgs=$1 site=$2 out=$3
mkdir -p "$out"
step() { echo "== $*" >> "$out/steps.txt"; }
timed() { local start=$SECONDS; "$@"; local rc=$?; echo "rc=$rc seconds=$((SECONDS - start))" >> "$out/steps.txt"; return $rc; }

step "nix hook"
timed "$cudapkgs" gpu-check --nix-hook > "$out/nix-hook.txt" 2>&1
"$cudapkgs" --json gpu-check --nix-hook > "$out/nix-hook.json" 2>&1

step "inspect --gpu native over the venv"
timed "$cudapkgs" inspect --gpu native "$site" > "$out/inspect-native.txt" 2>&1
"$cudapkgs" --json inspect --gpu native "$site" > "$out/inspect-native.json" 2>/dev/null

step "container loads over the venv"
timed "$cudapkgs" gpu-check --no-smoke "$site" > "$out/loads.txt" 2>&1

step "smoke tests of the venv's CUDA libraries"
timed "$cudapkgs" gpu-check --no-loads "$site" > "$out/smoke-venv.txt" 2>&1

step "libtorch_cuda pruned to 8.0 without PTX"
mkdir -p /tmp/pruned
timed "$cudapkgs" prune --capabilities 8.0 --keep-ptx none --out /tmp/pruned/libtorch_cuda.so "$site/torch/lib/libtorch_cuda.so" > "$out/prune.txt" 2>&1
timed "$cudapkgs" gpu-check --no-smoke /tmp/pruned > "$out/pruned.txt" 2>&1
"$cudapkgs" --json gpu-check --no-smoke /tmp/pruned > "$out/pruned.json" 2>&1
"$cudapkgs" inspect --gpu native /tmp/pruned/libtorch_cuda.so > "$out/pruned-inspect.txt" 2>&1
echo "inspect rc=$?" >> "$out/pruned-inspect.txt"

step "wheels rebuilt from the venv, built into a store"
python3 - "$site" /tmp/wheels > "$out/wheels.txt" 2>&1 <<'PY'
import os, sys, zipfile
site, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
for info in sorted(os.listdir(site)):
    if not (info.startswith("nvidia_") and info.endswith(".dist-info")):
        continue
    tag = "py3-none-manylinux_2_27_x86_64"
    for line in open(os.path.join(site, info, "WHEEL")):
        if line.startswith("Tag:"):
            tag = line.split(":", 1)[1].strip()
            break
    wheel = os.path.join(out, f"{info[:-len('.dist-info')]}-{tag}.whl")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for row in open(os.path.join(site, info, "RECORD")):
            name = row.rsplit(",", 2)[0]
            path = os.path.normpath(os.path.join(site, name))
            if name and os.path.isfile(path) and path.startswith(site):
                archive.write(path, name)
    print(wheel, os.path.getsize(wheel))
PY
ls /tmp/wheels >> "$out/wheels.txt"
w() { ls /tmp/wheels/"$1"-*.whl 2>/dev/null | head -1; }
specs=()
for pair in cuda_cudart:nvidia_cuda_runtime libcublas:nvidia_cublas cuda_nvrtc:nvidia_cuda_nvrtc \
            libnvjitlink:nvidia_nvjitlink libcufft:nvidia_cufft libcurand:nvidia_curand \
            libcusparse:nvidia_cusparse libcusolver:nvidia_cusolver cudnn:nvidia_cudnn_cu13 \
            nccl:nvidia_nccl_cu13; do
  file=$(w "${pair#*:}")
  [[ -n "$file" ]] && specs+=("${pair%%:*}=$file")
done
echo "${specs[@]}" >> "$out/wheels.txt"
store=(--store-dir /tmp/st/store)
timed "$cudapkgs" build --no-deps --offline "${specs[@]}" "${store[@]}" > "$out/build.txt" 2>&1
"$cudapkgs" store root list "${store[@]}" > "$out/roots.txt" 2>&1
libs=$(awk '{print $1}' "$out/roots.txt" | grep -- '-lib$' | sort -u | tr '\n' ' ')
step "gpu-check over the store's lib outputs: $libs"
timed "$cudapkgs" gpu-check "${store[@]}" $libs > "$out/store-check.txt" 2>&1
"$cudapkgs" path-info "${store[@]}" $libs > "$out/path-info.txt" 2>&1
tar -C "$out" -czf "$out.tar.gz" . && rm -rf "$out"
exit 0
