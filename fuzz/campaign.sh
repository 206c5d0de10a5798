#!/usr/bin/env bash
# Runs built fuzz targets side by side, several processes each, for a fixed time, and
# prints the executions each target got (summed over its processes) and any finding.
#
#   bash fuzz/campaign.sh BIN_DIR OUT_DIR SECONDS TARGET:PROCESSES[:MAX_LEN]...
#
# BIN_DIR holds the target binaries (`cargo fuzz build -O -s none`, stripped); the
# corpus of each target is fuzz/corpus/<target> (seeded from SEEDS_DIR/<target> and the
# fixtures when given), findings go to OUT_DIR/artifacts/, logs to OUT_DIR/logs/. The
# processes of one target share its corpus folder, so what one finds the others take up.
set -euo pipefail
bin=$1 out=$2 seconds=$3
shift 3
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out/logs" "$out/artifacts"
declare -a pids=()
for spec in "$@"; do
  IFS=: read -r target processes max_len <<<"$spec"
  corpus="$root/fuzz/corpus/$target"
  mkdir -p "$corpus"
  if [[ -n "${SEEDS_DIR:-}" && -d "$SEEDS_DIR/$target" ]]; then
    cp -n "$SEEDS_DIR/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  case "$target" in
    containers|headers|prune|elf_dynamic|elf_patch)
      cp -n "$root"/fixtures/cuda/out/*.{so,o,a,fatbin,cubin} "$corpus"/ 2>/dev/null || true ;;
  esac
  for ((i = 0; i < processes; i++)); do
    "$bin/$target" "$corpus" -max_total_time="$seconds" -max_len="${max_len:-65536}" \
      -print_final_stats=1 -artifact_prefix="$out/artifacts/$target-" \
      >"$out/logs/$target-$i.log" 2>&1 &
    pids+=("$!")
  done
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
printf '%-12s %14s %8s %s\n' target executions seconds findings
for spec in "$@"; do
  target=${spec%%:*}
  runs=$(cat "$out/logs/$target"-*.log | awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }')
  found=$(find "$out/artifacts" -name "$target-*" | wc -l)
  printf '%-12s %14s %8s %s\n' "$target" "${runs:-0}" "$seconds" "$found"
done
exit "$status"
