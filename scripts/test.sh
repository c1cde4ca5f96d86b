#!/usr/bin/env bash
# Set up the test environments and run the whole suite on Blender 5.0.1 and on 4.2 LTS.
# Extra arguments go to pytest (e.g. -k NAME, or -m shared for the tests of ../shared/data only).
# Ends with the skips of each run and their reasons, then one total line.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp -t frameweaver-test-log-XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
summary=()
count() { tail -1 "$log" | grep -oE "[0-9]+ $1" | cut -d' ' -f1 || true; }  # from pytest's closing line
totals=(0 0 0)
for bpy_version in 5.0.1 4.2.23; do
  venv=".venv"; [ "$bpy_version" = "5.0.1" ] || venv=".venv-bpy-$bpy_version"
  bash scripts/setup_env.sh "$bpy_version" "$venv"
  echo "=== tests on bpy $bpy_version"
  set +e
  "$venv/bin/python" -m pytest tests -q -p no:cacheprovider "$@" 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  set -e
  [ "$code" -eq 5 ] && code=0  # pytest's "no tests collected" (e.g. a -k filter) is not a failure
  [ "$code" -eq 0 ] || status=$code
  summary+=("bpy $bpy_version: $(grep -E '^Skipped: ' "$log" | tail -1 || echo 'Skipped: ?')")
  passed=$(count passed); failed=$(count failed); errors=$(count error); skipped=$(count skipped)
  totals=($((totals[0] + ${passed:-0})) $((totals[1] + ${failed:-0} + ${errors:-0})) $((totals[2] + ${skipped:-0})))
done
echo "=== summary (exit $status)"
printf '%s\n' "${summary[@]}"
echo "both versions: ${totals[0]} passed, ${totals[1]} failed, ${totals[2]} skipped"
exit $status
