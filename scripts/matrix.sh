# The Blender versions the tests run on, sourced by scripts/test.sh and scripts/fresh_clone_check.sh.
# The first runs every test; the others run the tests that drive Blender (tests/conftest.py, marker `blender`).
BPY_VERSIONS=(5.0.1 4.2.23 4.5.15 5.2.4)

venv_for() {  # the virtual environment of a Blender version: in FRAMEWEAVER_VENVS (a folder), else here
  local name=".venv-bpy-$1"; [ "$1" = "${BPY_VERSIONS[0]}" ] && name=".venv"
  echo "${FRAMEWEAVER_VENVS:-$PWD}/$name"
}

python_for() {  # the Python a bpy wheel is built for; only 3.11 has the CPU torch wheel on local disk
  case "$1" in 4.*|5.0.*) echo "python3.11" ;; *) echo "python3.13" ;; esac
}

has_torch() {  # whether a Blender version's venv gets torch; without, its workers run in the first version's
  [ "$(python_for "$1")" = python3.11 ]
}

python_command() {  # how to run Python "pythonX.Y": from PATH, else a pyenv-installed one that no shim selects
  if "$1" -c "" 2>/dev/null; then echo "$1"; return; fi
  local candidate
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"${1#python}".*/bin/"$1"; do
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
  echo "$1"  # not found: creating the venv says so
}
