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
