#!/usr/bin/env bash
# A real project built before and after `cudapkgs targets rewrite`, with nvcc 13.0 from
# NVIDIA's wheels: LightGBM 4.6.0, whose CMakeLists.txt sets CUDA_ARCHS 60 … 120 for its
# targets whatever CMAKE_CUDA_ARCHITECTURES says. Prints times, sizes and the
# `inspect --expect-capabilities` verdict.
#
#   bash bench/targets-build.sh [WORK_DIR]      (about 13 minutes on 2 cores)
#
# (BUILD_CLI=OFF: the sdist's lightgbm/ Python package folder is where the command-line
# program would be written.)
# Needs: scripts/install-nvidia-tools.sh, scripts/install-targets-sources.sh, ninja,
# a C++ compiler nvcc 13.0 accepts, python3 (CMake 3.31.6 comes from PyPI: LightGBM
# needs 3.28).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
WORK="${1:-$REPO/target/targets-build}"
CAPABILITY=9.0

nvidia_bin="$(bash scripts/install-nvidia-tools.sh | tail -n 1)"
NV="$(cd "$nvidia_bin/.." && pwd -P)"
SOURCES="$(bash scripts/install-targets-sources.sh | tail -n 1)/sdists"
cargo build -q --release -p cudapkgs
CUDAPKGS="$REPO/target/release/cudapkgs"

CMAKE_VENV="$REPO/.tools/cmake-3.31.6"
if [[ ! -x "$CMAKE_VENV/bin/cmake" ]]; then
  python3 -m venv "$CMAKE_VENV"
  printf 'cmake==3.31.6 --hash=sha256:1c8b05df0602365da91ee6a3336fe57525b137706c4ab5675498f662ae1dbcec\n' > "$CMAKE_VENV/requirements.txt"
  "$CMAKE_VENV/bin/pip" install -q --require-hashes -r "$CMAKE_VENV/requirements.txt"
fi
CMAKE="$CMAKE_VENV/bin/cmake"

rm -rf "$WORK" && mkdir -p "$WORK"
unpack() { mkdir -p "$WORK/$2" && tar -xzf "$SOURCES/$1" -C "$WORK/$2" && echo "$WORK/$2/${1%.tar.gz}"; }
# The wheels keep libraries in lib/, where nvcc's own profile looks in lib64/.
configure() {
  "$CMAKE" -S "$1" -B "$1/build" -G Ninja -DUSE_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_COMPILER="$NV/bin/nvcc" -DCUDAToolkit_ROOT="$NV" \
    -DCMAKE_CUDA_FLAGS="-L$NV/lib" -DBUILD_CLI=OFF "${@:2}" >"$1/configure.log" 2>&1
}
seconds() { local start=$SECONDS; "$@"; local rc=$?; echo $((SECONDS - start)) >"$WORK/.last"; return $rc; }
OBJECT=CMakeFiles/lightgbm_objs.dir/src/treelearner/cuda/cuda_histogram_constructor.cu.o

echo "== LightGBM 4.6.0 as released"
before="$(unpack lightgbm-4.6.0.tar.gz before)"
"$CUDAPKGS" targets scan "$before" --exclude external_libs | tail -n 1 || true
configure "$before"
# One CUDA object of its build graph: the C++ half would take a quarter of an hour
# before nvcc is reached.
if seconds ninja -C "$before/build" "$OBJECT" >"$before/build.log" 2>&1; then
  echo "$OBJECT built in $(cat "$WORK/.last") s (unexpected with CUDA 13)"
else
  echo "$OBJECT fails after $(cat "$WORK/.last") s: $(grep -m1 'nvcc fatal' "$before/build.log" || tail -n 1 "$before/build.log")"
fi

echo "== LightGBM 4.6.0 after targets rewrite --capabilities $CAPABILITY"
after="$(unpack lightgbm-4.6.0.tar.gz after)"
"$CUDAPKGS" targets rewrite --capabilities "$CAPABILITY" --cuda 13.0 "$after" | tail -n 1
"$CUDAPKGS" targets scan --capabilities "$CAPABILITY" --cuda 13.0 "$after" --exclude external_libs | tail -n 1
configure "$after"
seconds ninja -C "$after/build" "$OBJECT" >"$after/object.log" 2>&1
echo "$OBJECT: $(cat "$WORK/.last") s"
seconds ninja -C "$after/build" -j2 >"$after/build.log" 2>&1
echo "the whole library built in $(cat "$WORK/.last") s; lib_lightgbm.so $(stat -c %s "$after/lib_lightgbm.so") bytes; $OBJECT $(stat -c %s "$after/build/$OBJECT") bytes"
"$CUDAPKGS" inspect --expect-capabilities "$CAPABILITY" "$after/lib_lightgbm.so" | tail -n 2

# What the released list costs where CUDA 13 can still build it (8.7, Jetson Orin's, is
# refused on x86-64): the same object, and the verdict for a 9.0 request.
echo "== LightGBM 4.6.0 with its list cut to CUDA 13's architectures"
trimmed="$(unpack lightgbm-4.6.0.tar.gz trimmed)"
"$CUDAPKGS" targets rewrite --cuda 13.0 --capabilities 7.5,8.0,8.6,8.9,9.0,10.0,12.0 "$trimmed" | tail -n 1
configure "$trimmed"
seconds ninja -C "$trimmed/build" "$OBJECT" >"$trimmed/build.log" 2>&1
echo "$OBJECT: $(cat "$WORK/.last") s, $(stat -c %s "$trimmed/build/$OBJECT") bytes"
"$CUDAPKGS" inspect --expect-capabilities "$CAPABILITY" "$trimmed/build/$OBJECT" | tail -n 1 || true
