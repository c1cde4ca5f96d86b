"""Real headless Blender (the bpy wheel) with Frameweaver loaded from this source tree.

Blender's user folder goes to a temp dir before ``import bpy``, so tests never
touch ~/.config/blender, and the Hub is offline for the whole session.
"""
import importlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXTENSION_ID = "frameweaver"
DEV_REPO = "dev_src"

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="frameweaver-blender-user-")
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(ROOT))  # the ``nn`` package, as the worker and command lines see it

import bpy  # noqa: E402  (must come first: it puts Blender's own modules on the path)
import addon_utils  # noqa: E402

MODULE = f"bl_ext.{DEV_REPO}.{EXTENSION_ID}"


def _load_extension_from_source():
    # Blender names an extension after its folder, so link the checkout as "frameweaver".
    repo_dir = Path(tempfile.mkdtemp(prefix="frameweaver-dev-repo-"))
    (repo_dir / EXTENSION_ID).symlink_to(ROOT, target_is_directory=True)
    bpy.context.preferences.extensions.repos.new(
        name=DEV_REPO, module=DEV_REPO, custom_directory=str(repo_dir), source="USER")
    addon_utils.enable(MODULE, default_set=True, handle_error=None)
    return importlib.import_module(MODULE)


FRAMEWEAVER = _load_extension_from_source()


def needs_shared():
    return pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is not present")


@pytest.fixture
def fw():
    """The enabled extension's package (``bl_ext.dev_src.frameweaver``)."""
    return importlib.import_module(MODULE)


@pytest.fixture
def scene(tmp_path):
    """An empty file saved in tmp_path (so outputs land in tmp_path/frameweaver) with one scene."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "test.blend"))
    scene = bpy.context.scene
    scene.sequence_editor_create()
    return scene


@pytest.fixture
def seq_ctx():
    """Context override that lets ``bpy.ops.sequencer.*`` run headless (4.2 to 5.x)."""
    return lambda scene: sys.modules[f"{MODULE}.operators.compat"].sequencer_override(scene)
