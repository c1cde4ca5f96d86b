"""The manifest passes Blender's own validator; the built zip installs and cycles in a fresh Blender."""
import os
import subprocess
import sys
import zipfile

import bpy
import pytest

from conftest import ROOT

BLENDER_EXT = os.path.join(bpy.utils.resource_path("LOCAL"), "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")

INSTALL_AND_CYCLE = r"""
import os, sys
os.environ["BLENDER_USER_RESOURCES"] = sys.argv[2]
import bpy, addon_utils
result = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
assert result == {"FINISHED"}, result
module = "bl_ext.user_default.frameweaver"
for _ in range(2):
    assert hasattr(bpy.types, "SEQUENCER_PT_frameweaver"), "not registered after enable"
    addon_utils.disable(module, default_set=True)
    assert not hasattr(bpy.types, "SEQUENCER_PT_frameweaver"), "still registered after disable"
    addon_utils.enable(module, default_set=True, handle_error=None)
print("INSTALL-CYCLE-OK")
"""


def blender_ext(*args):
    return subprocess.run([sys.executable, BLENDER_EXT, *args], capture_output=True, text=True, timeout=120)


def test_manifest_validates():
    result = blender_ext("validate", str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    """The README's command: scripts/build_zip.sh, into a folder that does not exist yet."""
    out = tmp_path_factory.mktemp("build") / "dist"
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build_zip.sh"), str(out)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "VENV": sys.prefix})
    assert result.returncode == 0, result.stdout + result.stderr
    return str(next(out.glob("frameweaver-*.zip")))


def test_zip_leaves_out_tests_benchmarks_and_docs(built_zip):
    names = zipfile.ZipFile(built_zip).namelist()
    assert {"blender_manifest.toml", "__init__.py", "nn/worker.py", "operators/jobs.py", "ui/panel.py"} <= set(names)
    for excluded in ("tests/", "bench/", "docs/", ".ci/", ".venv/", "scripts/", "weights/"):
        assert not any(n.startswith(excluded) for n in names), excluded


def test_zip_installs_enables_disables_enables(built_zip, tmp_path):
    result = subprocess.run([sys.executable, "-c", INSTALL_AND_CYCLE, built_zip, str(tmp_path / "user")],
                            capture_output=True, text=True, timeout=300)
    assert "INSTALL-CYCLE-OK" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
