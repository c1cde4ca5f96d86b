"""The generative model (nn/generate) on Blender's side: the options a user sets per job, and the
preferences that say where the model is and how it may run. The worker checks the values (the same
words on every surface) and refuses the CPU unless the preferences allow it."""
from __future__ import annotations

import bpy

MODELS = [
    ("wan2.1-vace-1.3b", "Wan2.1 VACE 1.3B", "About 18 GB to download; fits a 12 GB GPU at 480p with Low VRAM"),
    ("wan2.1-vace-14b", "Wan2.1 VACE 14B", "Higher quality; about 75 GB to download and a large GPU"),
]


class GenerativeProperties:
    """Per-job options of the generative model, shared by Generate Inbetweens and Animate Loop."""

    prompt: bpy.props.StringProperty(name="Prompt", description="Optional: what the frames show")
    seed: bpy.props.IntProperty(name="Seed", default=0, soft_min=0, description="The same seed gives the same frames")
    steps: bpy.props.IntProperty(name="Steps", default=30, soft_min=1, soft_max=200,
                                 description="Denoising steps: more is slower and usually cleaner")
    guidance: bpy.props.FloatProperty(name="Guidance", default=5.0, soft_min=0.0, soft_max=30.0,
                                      description="How closely the frames follow the prompt")

    def generative_options(self) -> dict:
        return {"prompt": self.prompt, "seed": self.seed, "steps": self.steps, "guidance": self.guidance}


def params(context, prompt: str = "", seed: int = 0, steps: int = 30, guidance: float = 5.0) -> dict:
    """The worker's parameters for the generative model: the user's options and the preferences'."""
    from ..ui.preferences import addon_preferences  # the preferences import this module's MODELS

    prefs = addon_preferences(context or bpy.context)
    folder = bpy.path.abspath(prefs.generative_model_dir) if prefs and prefs.generative_model_dir else ""
    return {
        "prompt": prompt, "seed": seed, "steps": steps, "guidance": guidance, "model_dir": folder,
        "generative_model": prefs.generative_model if prefs else MODELS[0][0],
        "low_vram": bool(prefs.low_vram) if prefs else False,
        "allow_cpu": bool(prefs.generative_on_cpu) if prefs else False,
    }
