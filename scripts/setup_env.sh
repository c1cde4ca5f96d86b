#!/usr/bin/env bash
# Create (or reuse) a virtual environment with real headless Blender (the bpy wheel) and CPU PyTorch.
# Usage: scripts/setup_env.sh [BPY_VERSION] [VENV_DIR]
set -euo pipefail
BPY_VERSION="${1:-5.0.1}"
VENV="${2:-.venv}"
PYTHON="${PYTHON:-python3.11}"  # the bpy 4.2-5.0 wheels are built for Python 3.11
# torch is pinned: CI machines find this CPU wheel on local disk; an unpinned torch pulls GBs of CUDA packages.
PACKAGES=("bpy==${BPY_VERSION}" "torch==2.13.0" "safetensors>=0.4" "huggingface-hub>=0.24" "pytest>=8")

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import bpy, torch, safetensors, huggingface_hub, pytest, sys; \
    sys.exit(bpy.app.version_string != '${BPY_VERSION}')" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PACKAGES[@]}"
fi
echo "$VENV ready: bpy ${BPY_VERSION}"
