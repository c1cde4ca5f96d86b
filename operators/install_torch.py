"""Preferences button: install PyTorch (and the worker's other dependencies, the generative model's too) with pip.

Packages go into the extension's user folder, which survives upgrades and is
put on the path of the worker process only; Blender's own Python is untouched.
"""
import importlib.util
import os
import platform
import shutil
import sys
import time

import bpy

from . import jobs
from ..ui.preferences import addon_preferences, extension_dir

TORCH_VERSION = "2.13.0"  # the version our tests run on
TORCH_INDEX = "https://download.pytorch.org/whl/{build}"
CUDA_BUILD = "cu128"
# The generative model's packages, pinned as the tests run them (scripts/setup_env.sh lists the same; a test
# checks that they agree): diffusers runs Wan2.1 VACE, transformers/tokenizers/sentencepiece/ftfy its UMT5
# text encoder and prompt cleaning, accelerate its low-memory loading and CPU offload. About 100 MB.
GENERATIVE_PACKAGES = ["diffusers==0.42.1", "transformers==5.25.0", "tokenizers==0.23.3", "sentencepiece==0.2.3",
                       "ftfy==6.3.1", "accelerate==1.16.0"]
WORKER_PACKAGES = ["safetensors>=0.4", "huggingface-hub>=0.24", *GENERATIVE_PACKAGES]
# Blender 5.0+ bundles OpenImageIO's Python bindings; older Pythons get the official wheel.
if importlib.util.find_spec("OpenImageIO") is None:
    WORKER_PACKAGES.append("OpenImageIO>=2.5")


def detect_build() -> str:
    """``cu128`` with an NVIDIA driver, ``mps`` on macOS (PyPI's build), else ``cpu``."""
    if platform.system() == "Darwin":
        return "mps"
    return CUDA_BUILD if shutil.which("nvidia-smi") else "cpu"


def pip_command(build: str, python: str = sys.executable, target: str | None = None) -> list[str]:
    target = target or os.path.join("<extension user folder>", "deps")
    torch = f"torch=={TORCH_VERSION}" if build == "mps" else f"torch=={TORCH_VERSION}+{build}"
    command = [python, "-m", "pip", "install", "--upgrade", "--no-user", "--only-binary=:all:",
               "--target", target, torch, *WORKER_PACKAGES]
    if build != "mps":
        command += ["--extra-index-url", TORCH_INDEX.format(build=build)]
    return command


class FRAMEWEAVER_OT_install_torch(bpy.types.Operator):
    bl_idname = "frameweaver.install_torch"
    bl_label = "Install PyTorch"
    bl_description = "Download PyTorch for this machine (CUDA or CPU build, several GB for CUDA) into the extension's folder"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        prefs = addon_preferences(context)
        command = pip_command(detect_build(), target=extension_dir("deps"))
        if not bpy.app.online_access:
            self.report({"ERROR"}, "Online access is off. Allow it in Preferences > System, or run: " + " ".join(command))
            return {"CANCELLED"}
        env = {**os.environ, "PYTHONNOUSERSITE": "1"}
        log_path = os.path.join(extension_dir("logs"), "install_torch.log")
        process = jobs.LineProcess(command, env, log_path)
        prefs.install_status = "Installing… (log: " + log_path + ")"

        def tick():
            lines = process.new_lines()
            if lines:
                prefs.install_status = lines[-1][:120]
            if not process.finished:
                return 0.5
            ok = process.returncode == 0
            prefs.install_status = "PyTorch installed; press Probe Devices" if ok else f"Install failed; see {log_path}"
            return None

        if bpy.app.background:
            while tick() is not None:
                time.sleep(0.5)
        else:
            bpy.app.timers.register(tick, first_interval=0.5)
        return {"FINISHED"}
