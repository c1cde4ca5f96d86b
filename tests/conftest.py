"""Real headless Blender (the bpy wheel) with Frameweaver loaded from this source tree.

Blender's user folder goes to a temp dir before ``import bpy``, so tests never
touch ~/.config/blender. Online access is off in headless Blender, so the workers are
offline by the extension's own doing (test_faults.py guards that no network call is made).
"""
import importlib
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))  # the ``nn`` package, as the worker and command lines see it
sys.path.insert(0, str(ROOT / "scripts"))

from dev_extension import MODULE, isolate_user_folder, load_extension_from_source  # noqa: E402

isolate_user_folder()

import bpy  # noqa: E402


FRAMEWEAVER = load_extension_from_source()


@pytest.fixture
def one_thread():
    """One torch thread: the CPU is shared, and two spinning OpenMP threads on a busy core are 10-50x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def local_weights():
    """The extension's weights folder set to ../shared/weights (the reference checkpoints) for one test."""
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.local_weights_dir = str(SHARED / "weights")
    yield
    prefs.local_weights_dir = ""


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


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests need CUDA; without it they are skipped, never failed."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
