#!/usr/bin/env bash
# Set up the test environments and run the whole suite on Blender 5.0.1 and on 4.2 LTS.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for bpy_version in 5.0.1 4.2.23; do
  venv=".venv"; [ "$bpy_version" = "5.0.1" ] || venv=".venv-bpy-$bpy_version"
  bash scripts/setup_env.sh "$bpy_version" "$venv"
  echo "=== tests on bpy $bpy_version"
  set +e
  "$venv/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
  code=$?
  set -e
  [ "$code" -eq 5 ] && code=0  # pytest's "no tests collected" (e.g. a -k filter) is not a failure
  [ "$code" -eq 0 ] || status=$code
done
exit $status
