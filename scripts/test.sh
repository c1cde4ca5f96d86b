#!/usr/bin/env bash
# Set up the test environments and run the suite on the Blender versions users run:
# - bpy 5.0.1 runs every test;
# - bpy 4.2 LTS, 4.5 LTS and 5.2 LTS run the tests that drive Blender (marker `blender`, tests/conftest.py).
#   bpy 5.1+ is built for Python 3.13, for which no CPU torch wheel is on local disk: its tests run the
#   workers in the 5.0.1 environment's Python, set as Worker Python, as a studio would.
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
source scripts/matrix.sh
worker_python="$PWD/$(venv_for "${BPY_VERSIONS[0]}")/bin/python"
for bpy_version in "${BPY_VERSIONS[@]}"; do
  venv=$(venv_for "$bpy_version"); blender_only=1; worker=""
  [ "$bpy_version" = "${BPY_VERSIONS[0]}" ] && blender_only=0
  [ "$(python_for "$bpy_version")" = python3.11 ] || worker="$worker_python"  # no torch of its own
  bash scripts/setup_env.sh "$bpy_version" "$venv"
  echo "=== tests on bpy $bpy_version$([ "$blender_only" = 1 ] && echo ': the tests that drive Blender')"
  set +e
  FRAMEWEAVER_TEST_BLENDER_ONLY="$blender_only" FRAMEWEAVER_TEST_WORKER_PYTHON="$worker" \
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
echo "all versions: ${totals[0]} passed, ${totals[1]} failed, ${totals[2]} skipped"
exit $status
