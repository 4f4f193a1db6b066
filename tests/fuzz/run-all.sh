#!/usr/bin/env bash
# Runs every libFuzzer target built in <build-dir> for <seconds> each, on a scratch copy of its checked-in
# corpus (new inputs found are kept under build-dir, not committed automatically). Prints executions per target.
# Usage: tests/fuzz/run-all.sh build/fuzz 600 [codec ...]
set -euo pipefail
build=${1:?build dir}
seconds=${2:-60}
shift $(($# < 2 ? $# : 2))  # with one argument, `shift 2` would shift nothing
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in "$build"/tests/fuzz/fuzz_*; do targets+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
for codec in "${targets[@]}"; do
  work="$build/fuzz-corpus/$codec"
  mkdir -p "$work"
  cp -n "$here/corpus/$codec"/* "$work"/ 2>/dev/null || true
  echo "== fuzz_$codec for ${seconds}s"
  log="$build/fuzz-$codec.log"
  "$build/tests/fuzz/fuzz_$codec" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-$codec-" "$work" >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log"
done
