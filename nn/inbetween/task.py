"""Worker task ``inbetween``: write keyframes and the frames between them, in order.

The network only estimates motion (flow and blend mask) from an 8-bit-like
view of the RGB channels; the frame is then synthesised by warping the
original pixels. So alpha is warped with the same flow, and 16-bit and float
EXR data keep their precision and colour space (README, "Depth and alpha").
"""
from __future__ import annotations

import copy
import os
from dataclasses import replace
from functools import lru_cache

import torch

from ..farm import chunks
from ..frames import output_format, to_pixels, to_tensor
from ..imageio import ImageFormat, read_image, write_image
from ..worker import TaskError
from ..motion.flow import auto_flow_scale, motion_view
from . import cuts
from .auto import Auto, AutoSequence, load_auto, note, report

def with_channels(frame: torch.Tensor, channels: int) -> torch.Tensor:
    """(1, C, H, W) as ``channels`` (1-4) channels: grey spreads to RGB, a missing alpha is opaque."""
    has_alpha = frame.shape[1] in (2, 4)
    colour, alpha = (frame[:, :-1], frame[:, -1:]) if has_alpha else (frame, torch.ones_like(frame[:, :1]))
    if channels >= 3 and colour.shape[1] == 1:
        colour = colour.expand(-1, 3, -1, -1)
    return torch.cat([colour, alpha], 1) if channels in (2, 4) else colour


class Blend:
    """Cross-fade: the no-network baseline (and a valid choice for dissolves)."""

    def __call__(self, key_a: torch.Tensor, key_b: torch.Tensor, t: float, is_float: bool) -> torch.Tensor:
        return key_a * (1.0 - t) + key_b * t


class FlowModel:
    """A RIFE-family network: estimate motion on RGB, warp every channel with it."""

    def __init__(self, interpolator, flow_scale: float):
        self.interpolator = interpolator
        self.flow_scale = flow_scale

    def __call__(self, key_a: torch.Tensor, key_b: torch.Tensor, t: float, is_float: bool) -> torch.Tensor:
        # The interpolator estimates motion on the first three channels and warps all of them, so
        # the motion view goes first and the real pixels ride along (also through HDv3's bisection).
        views = [torch.cat([motion_view(key, is_float), key], 1) for key in (key_a, key_b)]
        return self.interpolator(views[0], views[1], t, flow_scale=self.flow_scale)[:, 3:]


class MirrorEnsemble:
    """High quality: average a model's frame with its frame for the mirrored, time-reversed pair.

    The network's errors are not symmetric under flipping and swapping the inputs, so the
    two estimates partly cancel (docs/BENCHMARKS.md has the measured gain); it costs 2x.
    """

    def __init__(self, model):
        self.model = model

    def __call__(self, key_a: torch.Tensor, key_b: torch.Tensor, t: float, is_float: bool) -> torch.Tensor:
        mirror = lambda frame: frame.flip(-1)  # noqa: E731  (B, C, H, W), left-right
        forward = self.model(key_a, key_b, t, is_float)
        backward = mirror(self.model(mirror(key_b), mirror(key_a), 1.0 - t, is_float))
        return (forward + backward) / 2


def load_model(params: dict, ctx):
    """The model ``params["model"]`` names: "blend", "keymotion" (Key Motion, on RIFE v4.25's flow), "generative"
    (Wan2.1 VACE), "auto" (Key Motion, and the generative model where motion cannot explain a gap) or a RIFE
    network."""
    name = params["model"]
    if name == "blend":
        return Blend()
    if name == "generative":
        return load_generative(params, ctx)
    if name == "auto":
        return load_auto(params, ctx, load_model)
    from .. import hub
    from ..motion.rife import Interpolator, state_dict_from_checkpoint

    network = "rife-v4.25" if name == "keymotion" else name
    settings = hub.HubSettings(**params["hub"])
    if path := params.get("weights_file"):  # a user's own file: read it, never write beside it
        raw = hub.load_given_file(path, os.path.join(settings.cache_dir, "converted"))
        try:
            state = state_dict_from_checkpoint(network, raw)
        except ValueError as error:
            raise hub.WeightsRejected(f"Cannot use {path}: {error}") from error
    else:
        state = state_dict_from_checkpoint(network, hub.load_state_dict(network, settings))
    interpolator = Interpolator(network, state, ctx.device, half=ctx.half)
    if name == "keymotion":
        from .keymotion import KeyMotion

        return KeyMotion(interpolator, flow_scale=float(params.get("flow_scale", 0.0)), size=params.get("size"))
    model = FlowModel(interpolator, flow_scale=auto_flow_scale(params))
    return MirrorEnsemble(model) if params.get("high_quality") else model


def load_generative(params: dict, ctx):
    """The generative model with the user's settings; clips are refused, as flow explains their neighbouring frames."""
    from ..generate.pipeline import load_for_task
    from .generative import Generative

    if params.get("clip"):
        raise TaskError("The generative model makes frames between keyframes; to retime a clip, use RIFE 4.25 "
                        "or Key Motion")
    return Generative(load_for_task(params, ctx), progress=ctx.progress)


def run(params: dict, ctx) -> tuple[list[str], dict]:
    """Writes <output_dir>/<prefix>_0001<ext>.. (or ``names[i]<ext>``); with ``chunk`` (I, N) only that chunk's
    frames, skipping those already written (``farm/chunks.py``)."""
    keys: list[str] = params["keys"]
    frames: list[list] = params["frames"]  # [key_a, key_b, t] per output frame; t == 0 is key_a itself
    out_dir, prefix = params["output_dir"], params.get("prefix", "frame")
    names = params.get("names") or [f"{prefix}_{number:04d}" for number in range(1, len(frames) + 1)]
    if len(keys) < 2:
        raise TaskError("Select at least two keyframe image strips")

    @lru_cache(maxsize=3)
    def key(index: int) -> tuple[torch.Tensor, ImageFormat]:
        pixels, fmt = read_image(keys[index])
        return to_tensor(pixels, ctx.device), fmt

    first, first_format = key(0)
    height, width = first.shape[-2:]
    colour, alpha = first.shape[1] >= 3, first.shape[1] in (2, 4)
    for index in range(1, len(keys)):  # check every key before writing anything
        other, fmt = key(index)
        colour, alpha = colour or other.shape[1] >= 3, alpha or other.shape[1] in (2, 4)
        if other.shape[-2:] != first.shape[-2:] and not params.get("fit_sizes"):
            raise TaskError(
                f"Keyframe {os.path.basename(keys[index])} is {other.shape[-1]}x{other.shape[-2]} but the first "
                f"is {width}x{height}. Enable 'Fit to First Keyframe' to resize it."
            )

    # Every frame gets colour if any key has it, and alpha if any key has it (an RGB key is opaque).
    channels = (3 if colour else 1) + (1 if alpha else 0)

    def fitted(index: int) -> torch.Tensor:
        frame = with_channels(key(index)[0], channels)
        if frame.shape[-2:] != (height, width):
            frame = torch.nn.functional.interpolate(frame, size=(height, width), mode="bilinear", align_corners=False)
        return frame

    fmt = replace(output_format(first_format), channels=channels)

    @lru_cache(maxsize=8)
    def summary(index: int) -> cuts.Thumbnail:
        return cuts.thumbnail(motion_view(fitted(index), fmt.is_float))

    if params.get("dedupe"):  # keys are a uniformly timed clip: time motion over repeated frames
        ctx.progress(0.0, "Looking for repeated frames")
        distinct = cuts.distinct_positions(summary(i) for i in range(len(keys)))
        frames = [cuts.remap_over_duplicates(a + t * (b - a), distinct) for a, b, t in frames]
    else:
        distinct = range(len(keys))

    own = chunks.frame_range(len(frames), params.get("chunk"))
    outputs = [os.path.join(out_dir, names[index] + fmt.extension) for index in own]
    todo = [(index, path) for index, path in zip(own, outputs) if chunks.wanted(path, params.get("chunk"))]
    params = {**params, "size": (width, height)}
    ctx = copy.copy(ctx)
    ctx.progress = forward_only(ctx.progress)  # the generative model's steps run ahead of the frames written
    ctx.progress(0.0, f"Loading {params['model']}")
    model = load_model(params, ctx) if todo else None
    os.makedirs(out_dir, exist_ok=True)  # once the weights are there: a missing checkpoint leaves no folder
    cut_mode = params.get("cuts", "HOLD")
    found_cuts: set[tuple[int, int]] = set()

    changing_pairs, compared_pairs = set(), set()  # to tell the user when all keys are the same picture
    sequence = key_sequence(model, frames, fitted, fmt.is_float, params, summary, cut_mode)

    def make(a: int, b: int, t: float) -> torch.Tensor:
        if t == 0 or a == b:
            return fitted(a)
        change = cuts.compare(summary(a), summary(b))
        compared_pairs.add((a, b))
        if not change.is_duplicate:
            changing_pairs.add((a, b))
        if change.is_duplicate:  # nothing moves, so the network has nothing to add
            return fitted(a)
        if change.is_cut and cut_mode != "IGNORE":  # never morph one shot into another
            found_cuts.add((a, b))
            if cut_mode == "HOLD":
                return fitted(a if t < 0.5 else b)
            return Blend()(fitted(a), fitted(b), t, fmt.is_float)
        return sequence.frame(a, b, t) if sequence else model(fitted(a), fitted(b), t, fmt.is_float)

    with torch.inference_mode():
        for done, (index, path) in enumerate(todo, start=1):
            a, b, t = frames[index]
            write_image(path, to_pixels(make(a, b, float(t))), fmt)
            ctx.progress(done / len(todo), f"Frame {index + 1} of {len(frames)}", preview=path)
    return outputs, {
        "width": width, "height": height, "format": fmt.extension, "pixel_type": fmt.pixel_type,
        "cuts": sorted(found_cuts), "repeated_frames": len(keys) - len(distinct), "all_identical": bool(compared_pairs) and not changing_pairs,
        "notes": notes(model),
        **(report(model) if isinstance(model, Auto) else {}),
    }


def notes(model) -> list[str]:
    """What the user should know about the model's run: the generative model's notes, and Auto's choices."""
    from .generative import Generative

    generative = model.generative if isinstance(model, Auto) else model
    said = list(generative.prepared.notes) if isinstance(generative, Generative) else []
    return said + ([note(model)] if isinstance(model, Auto) and note(model) else [])


def forward_only(progress):
    """``progress`` whose fraction never goes back."""
    shown = [0.0]

    def report(fraction: float, message: str, preview: str | None = None) -> None:
        shown[0] = max(shown[0], fraction)
        progress(shown[0], message, preview)
    return report


def key_sequence(model, frames: list, key, is_float: bool, params: dict, summary, cut_mode: str):
    """The plan's moving gaps, each with its length in frames, for the models that see whole gaps
    (``sequence_for``); None for the per-frame models."""
    if not needs_sequence(model):
        return None
    steps: dict[tuple[int, int], set[float]] = {}
    for a, b, t in frames:
        if a != b:
            steps.setdefault((a, b), set()).add(float(t))
    gaps = {}
    for (a, b), times in steps.items():
        change = cuts.compare(summary(a), summary(b))
        if change.is_duplicate or (change.is_cut and cut_mode != "IGNORE"):
            continue  # held or cut: no motion, and no neighbour for the keys either side
        # A clip's frames are evenly spaced in time, however many outputs a gap gets (2.5x alternates
        # 2 and 3); keys are as far apart as the frames planned between them.
        gaps[a, b] = float(b - a) if params.get("clip") else len(times - {0.0}) + 1.0
    guides = {(int(g), int(g) + 1): points for g, points in (params.get("guides") or {}).items()}  # JSON: "0"
    return sequence_for(model, key, is_float, gaps, guides)


def needs_sequence(model) -> bool:
    from .generative import Generative
    from .keymotion import KeyMotion

    return isinstance(model, (KeyMotion, Generative, Auto))


def sequence_for(model, key, is_float: bool, gaps: dict, guides: dict | None = None):
    """``frame(a, b, t)`` through all the keys: Key Motion's motion per gap (each estimated once, keys seeing
    their neighbours), the generative model's video through the keys, or Auto's choice per gap."""
    from .generative import Generative, GenerativeSequence
    from .keymotion import KeySequence

    if isinstance(model, Generative):
        return GenerativeSequence(model, key, is_float, gaps)
    if isinstance(model, Auto):
        motion = KeySequence(model.keymotion, key, is_float, gaps, guides)
        one_gap = lambda gap: GenerativeSequence(model.generative, key, is_float, {gap: gaps[gap]})  # noqa: E731
        return AutoSequence(model, motion, one_gap, key, is_float)
    return KeySequence(model, key, is_float, gaps, guides)
