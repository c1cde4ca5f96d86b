"""Load Frameweaver into the bpy module straight from this checkout (tests and the demo).

Call ``isolate_user_folder()`` before ``import bpy`` so ~/.config/blender is never touched.
Both temporary folders made here are removed when the process exits, whether it succeeded or not.
"""
import atexit
import importlib
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTENSION_ID = "frameweaver"
DEV_REPO = "dev_src"
MODULE = f"bl_ext.{DEV_REPO}.{EXTENSION_ID}"


def temporary_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # rmtree unlinks symlinks, never follows them
    return folder


def isolate_user_folder() -> None:
    os.environ["BLENDER_USER_RESOURCES"] = str(temporary_folder("frameweaver-blender-user-"))


def load_extension_from_source():
    import addon_utils
    import bpy

    # Blender names an extension after its folder, so link the checkout as "frameweaver".
    repo_dir = temporary_folder("frameweaver-dev-repo-")
    (repo_dir / EXTENSION_ID).symlink_to(ROOT, target_is_directory=True)
    bpy.context.preferences.extensions.repos.new(
        name=DEV_REPO, module=DEV_REPO, custom_directory=str(repo_dir), source="USER")
    addon_utils.enable(MODULE, default_set=True, handle_error=None)
    return importlib.import_module(MODULE)
