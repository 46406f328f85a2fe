#!/usr/bin/env bash
# Owns the full test run: the uvu suites on Node, Deno and Bun (test/run.ts), then the workerd smoke
# test (test/workerd/run.ts). Each suite's own last line is `N passed, N failed[, N skipped]`; this
# script prints a one-line summary per suite and, as its LAST line, the combined total. Exits non-zero
# if any suite failed, crashed, timed out or printed no summary. Assumes `make` (deps + WASM) ran.
#
#   bash scripts/test-all.sh [filter]      (filter: a path substring for the uvu suites)
#   SUITE_TIMEOUT=1200 (seconds per suite)
set -uo pipefail
cd "$(dirname "$0")/.."

FILTER="${1:-}"
TIMEOUT="${SUITE_TIMEOUT:-1200}"
BIN=node_modules/.bin
LOGDIR=.sluice-tmp/test-logs
mkdir -p "$LOGDIR"

names=(node deno bun workerd)
cmds=(
  "node --import tsx test/run.ts $FILTER"
  "$BIN/deno run -A test/run.ts $FILTER"
  "$BIN/bun test/run.ts $FILTER"
  "node --import tsx test/workerd/run.ts"
)

total_passed=0 total_failed=0 total_skipped=0 status=0
summaries=()
for i in "${!names[@]}"; do
  name=${names[$i]}
  log="$LOGDIR/$name.log"
  echo "=== $name: ${cmds[$i]}"
  start=$SECONDS
  # Full output goes to the terminal and to the log; the summary is parsed from the log's last line.
  timeout --kill-after=10 "$TIMEOUT" ${cmds[$i]} 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  last=$(sed -e 's/\x1b\[[0-9;]*m//g' "$log" | grep -v '^[[:space:]]*$' | tail -n 1)
  if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
    passed=${BASH_REMATCH[1]} failed=${BASH_REMATCH[2]} skipped=${BASH_REMATCH[4]:-0}
  else
    passed=0 failed=1 skipped=0
  fi
  note=""
  if [[ $code -eq 124 || $code -eq 137 ]]; then note=" (timed out after ${TIMEOUT}s)"; fi
  if [[ $code -ne 0 && $failed -eq 0 ]]; then failed=1; note="$note (exit code $code)"; fi
  [[ $failed -ne 0 || $code -ne 0 ]] && status=1
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
  summaries+=("$(printf '  %-8s %5d passed, %d failed, %d skipped in %ds%s' "$name" "$passed" "$failed" "$skipped" $((SECONDS - start)) "$note")")
done

echo
echo "=== summary"
printf '%s\n' "${summaries[@]}"
if [[ $total_skipped -gt 0 ]]; then
  echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
else
  echo "$total_passed passed, $total_failed failed"
fi
exit $status
