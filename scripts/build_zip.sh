#!/usr/bin/env bash
# Build the extension zip for "Install from Disk" with Blender's own packager (inside the bpy wheel).
# Usage: scripts/build_zip.sh [OUTPUT_DIR]   (default dist/, made if missing; VENV picks the bpy, default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-dist}"
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || bash scripts/setup_env.sh 5.0.1 "$VENV"
BPY_DIR=$("$VENV/bin/python" -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('bpy').origin))")
BLENDER_EXT=$(ls "$BPY_DIR"/*/scripts/addons_core/bl_pkg/cli/blender_ext.py)
mkdir -p "$OUT"
"$VENV/bin/python" "$BLENDER_EXT" build --source-dir . --output-dir "$OUT"
