"""Loading Wan2.1 VACE as a diffusers pipeline, and the settings a user gives it.

The weights are a folder in diffusers' ``save_pretrained`` layout: the user's own (``--model-dir``,
the Generative Model Folder preference), ``<Local Weights>/<name>/``, or a Hub snapshot resolved by
``nn.hub.resolve_folder`` (offline means no network). Nothing here downloads by itself.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import torch

from .. import hub, values
from ..worker import TaskError

PIPELINE_CLASS = "WanVACEPipeline"
DEFAULT_MODEL = "wan2.1-vace-1.3b"
OUT_OF_MEMORY = ("Turn on Low VRAM in Preferences > Add-ons > Frameweaver, generate at a smaller size, "
                 "or use the 1.3B model")
CPU_REFUSED = ("The generative model needs a CUDA GPU and this machine has none ({device}). Choose another model, "
               "or allow it on the CPU in Preferences > Add-ons > Frameweaver (minutes to hours per frame)")


@dataclass(frozen=True)
class Settings:
    """What the user chooses; checked by ``check`` before anything is loaded."""

    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 30
    guidance: float = 5.0
    seed: int = 0
    window: int = 81  # frames per model window: the model's grid is 4k+1 frames
    overlap: int = 8  # frames a window shares with the one before it
    max_pixels: int = 832 * 480  # generation size: the keys scaled down to this area (480p) at most

    def check(self) -> "Settings":
        values.check_generative(self.seed, self.steps, self.guidance)  # the words of every surface
        if self.window < 5 or (self.window - 1) % 4:
            raise TaskError(f"A model window must be 4k+1 frames, at least 5 (got {self.window})")
        if not 1 <= self.overlap <= self.window - 4:
            raise TaskError(f"Window overlap must be 1 to {self.window - 4} frames (got {self.overlap})")
        return self

    @classmethod
    def from_params(cls, params: dict) -> "Settings":
        given = {name: params[name] for name in cls.__dataclass_fields__ if params.get(name) is not None}
        return cls(**given).check()


@dataclass
class Prepared:
    """A loaded pipeline with the prompt encoded (its text encoder released), for as many videos as a job makes."""

    pipe: object
    settings: Settings
    device: torch.device
    embeddings: tuple  # (prompt, negative prompt), each (1, tokens, text_dim) or None
    notes: list[str]  # what the user should know (a prompt cut to the encoder's length)


def load_for_task(params: dict, ctx) -> Prepared:
    """The model for a worker task: the settings checked first, then the device (refused on the CPU unless
    ``allow_cpu``: tests, tiny models, users who accept minutes per frame), then the weights."""
    settings = Settings.from_params(params)
    if ctx.device.type != "cuda" and not params.get("allow_cpu"):
        raise TaskError(CPU_REFUSED.format(device=ctx.device))
    folder = find_folder(params)
    ctx.progress(0.0, "Loading the generative model")
    return prepare(load(folder, ctx.device, low_vram=bool(params.get("low_vram"))), settings, ctx.device)


def prepare(pipe, settings: Settings, device: torch.device) -> Prepared:
    notes: list[str] = []
    return Prepared(pipe, settings, device, encode_prompt(pipe, settings, device, notes.append), notes)


def find_folder(params: dict) -> str:
    """The pipeline folder to load: ``model_dir`` if given, else the named model's weights via the hub."""
    if params.get("model_dir"):
        return check_folder(params["model_dir"])
    entry = hub.FOLDERS[params.get("generative_model") or DEFAULT_MODEL]
    try:
        return check_folder(hub.resolve_folder(entry, hub.HubSettings(**params["hub"])))
    except (hub.WeightsUnavailable, hub.WeightsRejected) as error:
        raise TaskError(str(error)) from error


def check_folder(folder: str) -> str:
    """``folder`` if it holds a Wan VACE pipeline in diffusers' layout; else say what is missing."""
    index_path = os.path.join(folder, "model_index.json")
    if not os.path.isdir(folder):
        raise TaskError(f"The generative model folder {folder} does not exist")
    if not os.path.isfile(index_path):
        raise TaskError(f"{folder} is not a diffusers pipeline folder: it has no model_index.json. Give the folder "
                        f"that save_pretrained wrote (model_index.json, transformer/, vae/, text_encoder/, ...)")
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as error:
        raise TaskError(f"{index_path} cannot be read: {error}") from error
    if not isinstance(index, dict) or index.get("_class_name") != PIPELINE_CLASS:
        found = index.get("_class_name") if isinstance(index, dict) else None
        raise TaskError(f"{folder} holds a {found or 'unknown'} pipeline, not a {PIPELINE_CLASS} (Wan2.1 VACE)")
    needed = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
    missing = [name for name in needed if not os.path.isdir(os.path.join(folder, name))]
    if missing:
        raise TaskError(f"The {PIPELINE_CLASS} in {folder} is incomplete: missing {', '.join(m + '/' for m in missing)}")
    return folder


def compute_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the GPU has it, else fp16 on a GPU; fp32 on the CPU (its half kernels are slow or missing)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load(folder: str, device: torch.device, low_vram: bool = False):
    """The pipeline, its VAE in fp32 (Wan's VAE loses detail in half precision), the rest in ``compute_dtype``.

    ``low_vram`` keeps each component on the CPU until it runs (model CPU offload) and decodes in tiles.
    """
    from diffusers import AutoencoderKLWan, WanVACEPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    vae = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", dtype=torch.float32)
    pipe = WanVACEPipeline.from_pretrained(folder, vae=vae, dtype=compute_dtype(device))
    pipe.set_progress_bar_config(disable=True)
    if low_vram and device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
        pipe.vae.enable_tiling()
    else:
        pipe.to(device)
    return pipe


def encode_prompt(pipe, settings: Settings, device: torch.device, warn=None):
    """(prompt, negative) embeddings, then the text encoder is released: it is the largest part of the
    model and is needed only once. A prompt longer than the encoder takes is cut, and ``warn`` says so."""
    limit = max_tokens(pipe)
    for text in (settings.prompt, settings.negative_prompt):
        count = len(pipe.tokenizer(text, add_special_tokens=True).input_ids)
        if count > limit and warn:
            warn(f"The prompt is {count} tokens long; the text encoder takes {limit}, so the rest was ignored")
    with torch.no_grad():
        positive, negative = pipe.encode_prompt(
            settings.prompt, settings.negative_prompt, do_classifier_free_guidance=settings.guidance > 1.0,
            max_sequence_length=limit, device=device)
    pipe.text_encoder = None
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return positive, negative


def max_tokens(pipe) -> int:
    """The longest prompt the pipeline encodes: Wan's 512, or less where the tokenizer is shorter."""
    tokenizer_limit = getattr(pipe.tokenizer, "model_max_length", 512) or 512
    return int(min(512, tokenizer_limit))


def warn_on_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)
