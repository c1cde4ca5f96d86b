#!/usr/bin/env bash
# Set up the test environments and run the suite on the Blender versions users run (scripts/matrix.sh):
# - bpy 5.0.1 runs every test;
# - bpy 4.2 LTS, 4.5 LTS and 5.2 LTS run the tests that drive Blender (marker `blender`, tests/conftest.py).
#   bpy 5.1+ is built for Python 3.13, for which no CPU torch wheel is on local disk: its tests run the
#   workers in the 5.0.1 environment's Python, set as Worker Python, as a studio would.
# The other versions' environments are set up while the first version's tests run, and their tests then run
# side by side: each run waits on worker processes much of the time, so on a 2-core machine the three took
# 574 s together against 926 s one after another (docs/RELIABILITY.md). Their output follows in order.
# Extra arguments go to pytest (e.g. -k NAME, or -m shared for the tests of ../shared/data only).
# Ends with the skips of each run and their reasons, then one total line.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/matrix.sh
logs=$(mktemp -d -t frameweaver-test-logs-XXXXXX)
trap 'rm -rf "$logs"' EXIT
main=${BPY_VERSIONS[0]}
others=("${BPY_VERSIONS[@]:1}")
worker_python="$(venv_for "$main")/bin/python"

run_tests() {  # VERSION [pytest arguments]: one version's run, its output in $logs/VERSION, its exit code in $logs/VERSION.code
  local version=$1 blender_only=1 worker=""; shift
  [ "$version" = "$main" ] && blender_only=0
  has_torch "$version" || worker="$worker_python"
  set +e
  FRAMEWEAVER_TEST_BLENDER_ONLY="$blender_only" FRAMEWEAVER_TEST_WORKER_PYTHON="$worker" \
    "$(venv_for "$version")/bin/python" -m pytest tests -q -p no:cacheprovider "$@" > "$logs/$version" 2>&1
  echo $? > "$logs/$version.code"
  set -e
}

bash scripts/setup_env.sh "$main" "$(venv_for "$main")"  # first: it fetches weights/, which the others reuse
setups=()
for version in "${others[@]}"; do
  bash scripts/setup_env.sh "$version" "$(venv_for "$version")" > "$logs/setup-$version" 2>&1 &
  setups+=($!)
done
echo "=== tests on bpy $main (every test)"
: > "$logs/$main"
run_tests "$main" "$@" &
tests=$!
tail -n +1 -f "$logs/$main" --pid=$tests 2>/dev/null || true
wait $tests
for index in "${!others[@]}"; do
  wait "${setups[$index]}" || { cat "$logs/setup-${others[$index]}"; echo "setup of bpy ${others[$index]} failed"; exit 1; }
  cat "$logs/setup-${others[$index]}"
done
echo "=== tests on bpy ${others[*]} (the tests that drive Blender), side by side"
runs=()
for version in "${others[@]}"; do run_tests "$version" "$@" & runs+=($!); done
seconds=0
while kill -0 "${runs[@]}" 2>/dev/null; do  # a line a minute while any runs; their output follows at the end
  sleep 5; seconds=$((seconds + 5))
  [ $((seconds % 60)) -eq 0 ] || continue
  line="... ${seconds} s:"
  for version in "${others[@]}"; do
    finished=$(grep -E '^[.FEsxX]+( +\[ *[0-9]+%\])?$' "$logs/$version" 2>/dev/null | tr -cd '.FEsxX' | wc -c || true)
    line+=" bpy $version ${finished:-0} tests done;"
  done
  echo "$line"
done
wait

status=0
summary=()
totals=(0 0 0)
count() { tail -1 "$logs/$1" | grep -oE "[0-9]+ $2" | cut -d' ' -f1 || true; }  # from pytest's closing line
for version in "${BPY_VERSIONS[@]}"; do
  [ "$version" = "$main" ] || { echo "=== tests on bpy $version"; cat "$logs/$version"; }
  code=$(cat "$logs/$version.code")
  [ "$code" -eq 5 ] && code=0  # pytest's "no tests collected" (e.g. a -k filter) is not a failure
  [ "$code" -eq 0 ] || status=$code
  summary+=("bpy $version: $(grep -E '^Skipped: ' "$logs/$version" | tail -1 || echo 'Skipped: ?')")
  passed=$(count "$version" passed); failed=$(count "$version" failed); errors=$(count "$version" error)
  skipped=$(count "$version" skipped)
  totals=($((totals[0] + ${passed:-0})) $((totals[1] + ${failed:-0} + ${errors:-0})) $((totals[2] + ${skipped:-0})))
done
echo "=== summary (exit $status)"
printf '%s\n' "${summary[@]}"
echo "all versions: ${totals[0]} passed, ${totals[1]} failed, ${totals[2]} skipped"
exit $status
