#!/usr/bin/env bash
# `cudapkgs targets scan SDIST` against what a packager runs by hand: unpack the sdist
# and grep its files for architecture lists. Same inputs, one run, best of three each;
# prints both times and the ratio.
#
#   bash bench/targets-scan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCES="$(bash scripts/install-targets-sources.sh | tail -n 1)/sdists"
cargo build -q --release -p cudapkgs
CUDAPKGS="$PWD/target/release/cudapkgs"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PATTERN='gencode|arch=(sm|compute)_|CUDA_ARCHITECTURES|TORCH_CUDA_ARCH_LIST|CUDA_ARCHS|COMPUTE_CAPABILIT'

best() {
  local best=
  for _ in 1 2 3; do
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s%N)
    local ms=$(((end - start) / 1000000))
    if [[ -z "$best" || $ms -lt $best ]]; then best=$ms; fi
  done
  echo "$best"
}
by_hand() {
  rm -rf "$WORK/x" && mkdir "$WORK/x"
  tar -xzf "$1" -C "$WORK/x"
  grep -rnE "$PATTERN" "$WORK/x" --include='*.py' --include='*.txt' --include='*.cmake' \
    --include='Makefile' --include='*.sh' --include='*.bazelrc' --include='meson.build'
}

printf '%-34s %10s %12s %7s\n' sdist "cudapkgs" "tar + grep" ratio
for sdist in "$SOURCES"/*.tar.gz; do
  ours=$(best "$CUDAPKGS" targets scan "$sdist")
  theirs=$(best by_hand "$sdist")
  awk -v name="$(basename "$sdist")" -v ours="$ours" -v theirs="$theirs" \
    'BEGIN { printf "%-34s %8d ms %10d ms %6.2fx\n", name, ours, theirs, theirs / (ours > 0 ? ours : 1) }'
done
