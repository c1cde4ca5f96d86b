"""The manifest passes Blender's own validator; the built zip installs and cycles in a fresh Blender,
and the README's scripting snippet runs on it as written."""
import os
import re
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

README_SNIPPET = r"""
import os, sys
os.environ["BLENDER_USER_RESOURCES"] = sys.argv[2]
import bpy
zip_path, _, weights, keyframes, out, snippet = sys.argv[1:7]
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
assert result == {"FINISHED"}, result
bpy.context.preferences.addons["bl_ext.user_default.frameweaver"].preferences.local_weights_dir = weights
bpy.ops.wm.read_homefile(use_empty=True)
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out, "shot.blend"))
editor = bpy.context.scene.sequence_editor_create()
for frame, name in ((1, "key_01.png"), (3, "key_02.png")):  # one empty frame between the keys
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    strips.new_image(name=name, filepath=os.path.join(keyframes, name), channel=1, frame_start=frame).select = True
exec(open(snippet).read().replace("/renders/shot10/inbetweens", os.path.join(out, "count7")))
made = [f for _, _, files in os.walk(os.path.join(out, "count7")) for f in files if f.endswith(".png")]
print("SNIPPET-OK", len(strip.elements), len(made))
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


def test_readme_scripting_snippet_runs_on_the_installed_zip(built_zip, tmp_path, project_weights):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"under `blender -b`:\n\n```python\n(.*?)```", readme, re.S).group(1)
    snippet = tmp_path / "snippet.py"
    snippet.write_text(code)
    result = subprocess.run([sys.executable, "-c", README_SNIPPET, built_zip, str(tmp_path / "user"), str(project_weights),
                             str(ROOT / "examples" / "keyframes"), str(tmp_path), str(snippet)],
                            capture_output=True, text=True, timeout=600)
    assert "SNIPPET-OK" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    frames, files = map(int, result.stdout.split("SNIPPET-OK")[1].split()[:2])
    assert frames == files == 9  # COUNT 7: both keys and the 7 frames after the first, in output_dir
    assert len(list((tmp_path / "frameweaver").glob("*/*.png"))) == 3  # the selected keys, one gap frame filled


def test_install_pytorch_and_the_test_setup_pin_the_same_generative_packages(fw):
    """Users get from Install PyTorch exactly the generative packages the tests ran on."""
    setup = (ROOT / "scripts" / "setup_env.sh").read_text()
    pinned = re.search(r"GENERATIVE=\(([^)]*)\)", setup).group(1)
    assert re.findall(r'"([^"]+)"', pinned) == fw.operators.install_torch.GENERATIVE_PACKAGES
