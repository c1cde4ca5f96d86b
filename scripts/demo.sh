#!/usr/bin/env bash
# The README's demo command: set up the environment, then inbetween the bundled keyframes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh 5.0.1 .venv
out="demo_out/$(date +%Y%m%d-%H%M%S)"
mkdir -p demo_out
.venv/bin/python scripts/demo.py --out "$out" "$@"
