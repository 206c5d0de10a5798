#!/usr/bin/env bash
# Download the real source releases the `cudapkgs targets` tests read, pinned by
# sha256, and PyTorch's extension builder (torch/utils/cpp_extension.py and
# torch/version.py) taken from a pinned PyTorch wheel.
#
#   bash scripts/install-targets-sources.sh
#
# Folder: $CUDAPKGS_TARGETS_SOURCES, default "$PWD/.tools/targets-sources". The last line
# printed on stdout is that folder. Files already there with the right hash are kept.
#
# sdists are fetched from the package index's own download links (pip cannot download
# an sdist without building its metadata, and these need torch and nvcc to do that);
# the wheel comes through pip. Both honour $PIP_INDEX_URL.
set -euo pipefail

# file name, project, sha256.
SDISTS=(
  "flash_attn-2.8.3.tar.gz flash-attn 1e71dd64a9e0280e0447b8a0c2541bad4bf6ac65bdeaa2f90e51a9e57de0370d"
  "llama_cpp_python-0.3.16.tar.gz llama-cpp-python 34ed0f9bd9431af045bb63d9324ae620ad0536653740e9bb163a2e1fcb973be6"
  "vllm-0.33.0.tar.gz vllm f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112"
  "lightgbm-4.6.0.tar.gz lightgbm cb1c59720eb569389c0ba74d14f52351b573af489f230032a1c9f314f8bab7fe"
  "lightgbm-4.7.0.tar.gz lightgbm f8e20f682c9aabd000bcf4a7ed8aa6f473c1adfecccae34ec24e823d156f4af0"
  "causal_conv1d-1.7.0.tar.gz causal-conv1d 3202758494eaa7b597ce1c282dfa188889506bfcb92cad3c407d26736bfcd32b"
  "mamba_ssm-2.3.2.post1.tar.gz mamba-ssm 104cc47e9101e5401a675fa2b784f2952b9b037f3b1dd83b5ac544394e95d028"
  "torch_scatter-2.1.2.tar.gz torch-scatter 69b3aa435f2424ac6a1bfb6ff702da6eb73b33ca0db38fb26989c74159258e47"
)
# PyTorch 2.11.0: the macOS arm64 wheel is the smallest (81 MB) and its Python files are
# the Linux wheels' own. Only two files are kept; the wheel is deleted.
TORCH_WHEEL="torch==2.11.0 4b5866312ee6e52ea625cd211dcb97d6a2cdc1131a5f15cc0d87eec948f6dd34"
TORCH_FILES=(
  "torch/utils/cpp_extension.py 1517eb2ac276065210d7c861becc5bf3a5404796da16d35af9b9466667fef904"
  "torch/version.py 06e363e412fccf9038f9aa33b4af1e7a5dd30c944f80856454f12681e012d2fc"
)

log() { printf '%s\n' "$*" >&2; }
die() { log "install-targets-sources: error: $*"; exit 1; }

DEST="${CUDAPKGS_TARGETS_SOURCES:-$PWD/.tools/targets-sources}"
mkdir -p "$DEST/sdists" "$DEST/torch-2.11.0"
DEST="$(cd "$DEST" && pwd -P)"
PY="${PYTHON:-python3}"
INDEX="${PIP_INDEX_URL:-https://pypi.org/simple}"

has() { [[ -f "$1" && "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

for pin in "${SDISTS[@]}"; do
  read -r file project sum <<<"$pin"
  target="$DEST/sdists/$file"
  has "$target" "$sum" && continue
  log "  downloading $file"
  "$PY" - "$INDEX" "$project" "$file" "$sum" "$target" <<'PY' || die "cannot download $file"
import hashlib, json, os, sys, urllib.request
index, project, name, want, target = sys.argv[1:]
request = urllib.request.Request(
    f"{index.rstrip('/')}/{project}/",
    headers={"Accept": "application/vnd.pypi.simple.v1+json"},
)
files = json.load(urllib.request.urlopen(request, timeout=120))["files"]
entry = next((f for f in files if f["filename"] == name), None)
if entry is None:
    sys.exit(f"{name} is not in the index's list for {project}")
data = urllib.request.urlopen(entry["url"], timeout=600).read()
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"{name}: sha256 {got}, expected {want}")
with open(target + ".part", "wb") as out:
    out.write(data)
os.replace(target + ".part", target)
PY
done

need_torch=0
for pin in "${TORCH_FILES[@]}"; do
  read -r file sum <<<"$pin"
  has "$DEST/torch-2.11.0/$file" "$sum" || need_torch=1
done
if (( need_torch )); then
  log "  downloading the PyTorch 2.11.0 wheel for its extension builder"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  printf '%s --hash=sha256:%s\n' "${TORCH_WHEEL%% *}" "${TORCH_WHEEL##* }" > "$work/requirements.txt"
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --require-hashes --platform macosx_11_0_arm64 \
    --python-version 3.12 --implementation cp -d "$work" -r "$work/requirements.txt" >&2 \
    || die "pip download of ${TORCH_WHEEL%% *} failed"
  for pin in "${TORCH_FILES[@]}"; do
    read -r file sum <<<"$pin"
    "$PY" - "$work"/torch-*.whl "$file" "$DEST/torch-2.11.0/$file" <<'PY'
import os, sys, zipfile
wheel, member, target = sys.argv[1:]
os.makedirs(os.path.dirname(target), exist_ok=True)
with zipfile.ZipFile(wheel) as archive, open(target, "wb") as out:
    out.write(archive.read(member))
PY
    has "$DEST/torch-2.11.0/$file" "$sum" || die "$file from the wheel does not have the pinned sha256"
  done
fi
printf '%s\n' "$DEST"
