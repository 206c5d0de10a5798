#!/usr/bin/env bash
# Install a pinned set of NVIDIA CUDA compiler tools from PyPI wheels into a
# local prefix. No GPU and no system CUDA toolkit are needed.
#
#   bash scripts/install-nvidia-tools.sh
#   export PATH="$(bash scripts/install-nvidia-tools.sh | tail -n 1):$PATH"
#
# Prefix: $CUDAPKGS_NVIDIA_TOOLS, default "$PWD/.tools/nvidia".
# The last line printed on stdout is the bin folder to put on PATH.
#
# Compiler pieces are pinned to CUDA 13.0 Update 2 (the release whose
# component versions are nvcc 13.0.88 / cudart 13.0.96 / cccl 13.0.85).
# cuobjdump and nvdisasm were first published as wheels with CUDA 13.2, so
# those two come from CUDA 13.2 Update 1 (13.2.86); they read 13.0 output fine.
# Keep the compiler at 13.0: drivers of the 580 branch (CUDA 13.0) cannot JIT
# the PTX ISA that newer compilers emit.
set -euo pipefail

# name==version and the sha256 of its manylinux x86-64 wheel.
PINS=(
  "nvidia-cuda-nvcc==13.0.88 56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03"
  "nvidia-cuda-crt==13.0.88 2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4"
  "nvidia-nvvm==13.0.88 c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0"
  "nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
  "nvidia-cuda-cccl==13.0.85 e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649"
  "nvidia-cuda-nvrtc==13.0.88 ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575"
  # Real NVIDIA libraries for the ELF reading and rewriting tests.
  "nvidia-cublas==13.10.0.20 dcc6d63884c53d07e267ce7e6feac17b2538cebaafec5db865736c3e28e4dc84"
  "nvidia-cudnn-cu12==9.28.0.42 9ff58b7f36dacd0a93e89f8f2957b52466889217963701daa15e577317cfa375"
  "nvidia-cuda-cuobjdump==13.2.86 d332c2ffe78e703ca0a3894be927f83124244e2acf0d792b8c12b4362d44d837"
  "nvidia-cuda-nvdisasm==13.2.86 53606e719ecae07a2335f95902d5a1393a0cc1c317499ee7ffcf628a44385f2c"
)

# Wheels that are only downloaded (into $PREFIX/wheels): tests unpack them into trees of
# their own, since their files would collide with a pinned wheel's here (both cuDNN
# wheels install nvidia/cudnn/).
DOWNLOAD_ONLY=(
  "nvidia-cudnn-cu13==9.28.1.4 a54f205b1db1f2895d99f398754db1369816f0569dd459731f925635cf7b65ec"
)

log() { printf '%s\n' "$*" >&2; }
die() { log "install-nvidia-tools: error: $*"; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) die "only x86-64 Linux is supported (got $(uname -s)-$(uname -m))" ;;
esac

PREFIX="${CUDAPKGS_NVIDIA_TOOLS:-$PWD/.tools/nvidia}"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd -P)"
ROOT="$PREFIX/nvidia/cu13"
BIN="$ROOT/bin"
STAMP="$PREFIX/.installed"
WANT="$(printf '%s\n' "${PINS[@]}")"

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || die "python3 is required"

verify() {
  "$BIN/nvcc" --version >&2 || return 1
  "$BIN/cuobjdump" --version >&2 || return 1
  [[ -f "$ROOT/lib/libcudart_static.a" ]] || { log "missing $ROOT/lib/libcudart_static.a"; return 1; }
  [[ -d "$ROOT/include/cccl" ]] || { log "missing $ROOT/include/cccl"; return 1; }
  [[ -e "$ROOT/lib/libcudart.so" ]] || { log "missing $ROOT/lib/libcudart.so"; return 1; }
  [[ -e "$ROOT/nvvm/lib64/libnvvm.so" ]] || { log "missing $ROOT/nvvm/lib64/libnvvm.so"; return 1; }
  [[ -f "$ROOT/lib/libnvrtc.so.13" ]] || { log "missing $ROOT/lib/libnvrtc.so.13"; return 1; }
  [[ -f "$ROOT/lib/libcublas.so.13" ]] || { log "missing $ROOT/lib/libcublas.so.13"; return 1; }
  [[ -f "$PREFIX/nvidia/cudnn/lib/libcudnn.so.9" ]] || { log "missing $PREFIX/nvidia/cudnn/lib/libcudnn.so.9"; return 1; }
}

WHEELS="$PREFIX/wheels"
mkdir -p "$WHEELS"

# wheel_for PIN: path of the downloaded wheel of PIN with the right hash, or
# nothing.
wheel_for() {
  local spec="${1%% *}" sum="${1##* }"
  local name="${spec%%==*}" ver="${spec##*==}" f
  for f in "$WHEELS/${name//-/_}-${ver}-"*.whl; do
    [[ -f "$f" ]] || continue
    if [[ "$(sha256sum "$f" | cut -d' ' -f1)" == "$sum" ]]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
}

# download PIN...: fetches the pins whose wheel is missing, verified by pip.
download() {
  local reqs="$WHEELS/requirements-$$.txt" missing=0 pin spec name
  : > "$reqs"
  for pin in "$@"; do
    [[ -n "$(wheel_for "$pin")" ]] && continue
    missing=1
    spec="${pin%% *}"; name="${spec%%==*}"
    # Drop a damaged or different file of the same name before downloading.
    rm -f "$WHEELS/${name//-/_}-${spec##*==}-"*.whl
    printf '%s --hash=sha256:%s\n' "$spec" "${pin##* }" >> "$reqs"
  done
  if (( missing )); then
    "$PY" -m pip download --quiet --disable-pip-version-check \
      --no-deps --only-binary=:all: --require-hashes \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
      --implementation py --python-version 3 \
      -d "$WHEELS" -r "$reqs" >&2 || { rm -f "$reqs"; die "pip download failed"; }
  fi
  rm -f "$reqs"
}

download "${DOWNLOAD_ONLY[@]}"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && verify 2>/dev/null >&2; then
  log "install-nvidia-tools: already installed in $PREFIX"
  printf '%s\n' "$BIN"
  exit 0
fi

log "install-nvidia-tools: installing into $PREFIX"
rm -f "$STAMP"
# Start from an empty tree so that files of older pins do not linger.
rm -rf "$PREFIX/nvidia"
download "${PINS[@]}"

for pin in "${PINS[@]}"; do
  whl="$(wheel_for "$pin")"
  [[ -n "$whl" ]] || die "no wheel with the pinned sha256 for ${pin%% *} in $WHEELS"
  log "  unpacking $(basename "$whl")"
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$whl" 'nvidia/*' -d "$PREFIX"
  else
    "$PY" -m zipfile -e "$whl" "$PREFIX"
  fi
done
# Python's zipfile does not keep the executable bit.
chmod +x "$BIN"/* "$ROOT/nvvm/bin"/* 2>/dev/null || true
# The wheels lack two links that a toolkit install has: the unversioned
# runtime library (for nvcc -cudart shared) and libnvvm where nvlink looks for
# it (for -dlto links).
ln -sfn libcudart.so.13 "$ROOT/lib/libcudart.so"
mkdir -p "$ROOT/nvvm/lib64"
ln -sfn ../../lib/libnvvm.so.4 "$ROOT/nvvm/lib64/libnvvm.so"

verify || die "the installed tools do not run"
printf '%s\n' "$WANT" > "$STAMP"
log "install-nvidia-tools: done"
printf '%s\n' "$BIN"
