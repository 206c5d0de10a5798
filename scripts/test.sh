#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
# Under CI=true, tests that need an external tool fail when it is missing instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# cuobjdump (from NVIDIA's PyPI wheels) is the oracle of the fatbin differential tests.
nvidia_bin=$(bash scripts/install-nvidia-tools.sh | tail -n 1)
export CUDAPKGS_CUOBJDUMP="$nvidia_bin/cuobjdump"

cargo nextest run --workspace --no-fail-fast
