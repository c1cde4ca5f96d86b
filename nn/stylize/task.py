"""Worker task ``stylize``: learn the look of painted keyframes, then paint every footage frame.

Params (sent by Blender's side; see README): frames, keys [{index, path}], masks (a path or
null per frame, or null), output_dir, prefix, seconds, stop_file, model_file, resume,
save_model, preview_index, fit_sizes, hub, settings. Outputs are
``<output_dir>/<prefix>_0001<ext>`` .. one per footage frame, in order, in the footage's
format (JPEG becomes PNG) with the footage's alpha kept.
"""
from __future__ import annotations

import os
import time
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..farm import chunks
from ..imageio import ImageFormat, read_image, write_image
from ..frames import output_format, to_pixels, to_tensor
from ..worker import TaskError
from ..motion.flow import Flow
from .guides import advected_positions, nearest_key, network_input
from .infer import compose, propagate, run_generator
from .train import Keyframe, StyleConfig, Trainer, load_model
from .vgg import load_vgg

PREVIEW_EVERY = 10.0  # seconds between training previews
TRAIN_SHARE = 0.8  # of the progress bar, when training


def rgba(pixels, device) -> torch.Tensor:
    """(1, 3 or 4, H, W): grey becomes RGB, alpha (if any) stays last."""
    frame = to_tensor(pixels, device)
    if frame.shape[1] <= 2:
        frame = torch.cat([frame[:, :1].expand(-1, 3, -1, -1), frame[:, 1:]], 1)
    return frame


def fitted(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def unique_path(folder: str, stem: str, ext: str) -> str:
    number = 1
    while os.path.lexists(path := os.path.join(folder, f"{stem}_{number:04d}{ext}")):
        number += 1
    return path


# How the user turns on resizing, for messages: a Blender option, or --fit-sizes on the command line.
FIT_SIZES_SETTING = "Enable 'Fit Sizes'"


def frame_index(index: int, count: int) -> str:
    """A footage frame as both surfaces count it: by index from 0 (``--key 99=...`` is index 99)."""
    return f"frame index {index} (counting from 0), but the footage has {count} frames (indices 0-{count - 1})"


def stored_keys(stored: dict, count: int, size: tuple[int, int], fit_sizes: bool, model_file: str,
                fit_setting: str = FIT_SIZES_SETTING) -> dict:
    name = os.path.basename(model_file)
    if outside := [i for i in stored if not 0 <= i < count]:
        raise TaskError(f"The model {name} was trained on a keyframe at {frame_index(outside[0], count)}: place "
                        "painted keyframes on this footage")
    if any(image.shape[-2:] != size for image in stored.values()) and not fit_sizes:
        raise TaskError(f"The model {name} was trained on frames of another size than this footage "
                        f"({size[1]}x{size[0]}). {fit_setting} to resize its keyframes.")
    return {i: fitted(image, size) if image.shape[-2:] != size else image for i, image in stored.items()}


def check_params(params: dict) -> None:
    frames, keys, masks = params["frames"], params.get("keys") or [], params.get("masks")
    if not frames:
        raise TaskError("There are no footage frames to stylize")
    if not keys and not params.get("model_file"):
        raise TaskError("Paint at least one keyframe: the style is learned from painted frames")
    for key in keys:
        if not 0 <= key["index"] < len(frames):
            raise TaskError(f"Keyframe {os.path.basename(key['path'])} is for "
                            f"{frame_index(key['index'], len(frames))}")
    if masks is not None and len(masks) != len(frames):
        raise TaskError(f"Got {len(masks)} masks for {len(frames)} footage frames")


def run(params: dict, ctx) -> tuple[list[str], dict]:
    check_params(params)
    from .. import hub

    paths, out_dir, prefix = params["frames"], params["output_dir"], params.get("prefix", "style")
    device, notes = ctx.device, []
    first, footage_format = read_image(paths[0])
    height, width = first.shape[:2]

    @lru_cache(maxsize=4)
    def frame(index: int) -> torch.Tensor:
        pixels = first if index == 0 else read_image(paths[index])[0]
        if pixels.shape[:2] != (height, width):
            raise TaskError(f"Footage frame {os.path.basename(paths[index])} is {pixels.shape[1]}x{pixels.shape[0]}, "
                            f"the first is {width}x{height}")
        return rgba(pixels, device)

    @lru_cache(maxsize=4)
    def mask(index: int) -> torch.Tensor | None:
        path = (params.get("masks") or [None] * len(paths))[index]
        if not path:
            return None
        pixels = read_image(path)[0]
        if pixels.shape[:2] != (height, width):
            raise TaskError(f"Mask {os.path.basename(path)} is {pixels.shape[1]}x{pixels.shape[0]} but the footage "
                            f"is {width}x{height}")
        return to_tensor(pixels, device)[:, :1].clamp(0.0, 1.0)  # the first channel (grey or red) is the mask

    for index in range(len(paths)):  # every mask is checked before anything is trained or written
        mask(index)
    painted = {}
    for key in params["keys"]:
        image = rgba(read_image(key["path"])[0], device)[:, :3]
        if image.shape[-2:] != (height, width):
            if not params.get("fit_sizes"):
                raise TaskError(f"Keyframe {os.path.basename(key['path'])} is {image.shape[-1]}x{image.shape[-2]} "
                                f"but the footage is {width}x{height}. "
                                f"{params.get('fit_sizes_setting', FIT_SIZES_SETTING)} to resize it.")
            image = fitted(image, (height, width))
        painted[key["index"]] = image

    settings = hub.HubSettings(**params["hub"])
    try:
        flow = Flow.load(settings, device, ctx.half, is_float=footage_format.is_float)
    except hub.WeightsUnavailable as error:
        flow = None
        notes.append(f"flow guides off: RIFE weights not available: {error}")

    model_file, train = params.get("model_file"), True
    if model_file:
        generator, config, steps, stored = load_model(model_file, device)
        train = bool(params.get("resume"))
        if not painted:  # applying a model alone: the keyframes it was trained on come with it
            painted = stored_keys(stored, len(paths), (height, width), bool(params.get("fit_sizes")), model_file,
                                  params.get("fit_sizes_setting", FIT_SIZES_SETTING))
        if config.guides and flow is None:
            raise TaskError(f"The model {os.path.basename(model_file)} follows the footage's motion, which needs the "
                            f"RIFE weights: {notes[-1]}")
    else:
        config = StyleConfig(guides=("key",) if flow else ()).with_settings(params.get("settings"))
        generator, steps = None, 0

    if not painted and config.guides:
        raise TaskError(f"The model {os.path.basename(model_file)} follows painted keyframes through the footage's "
                        "motion: place at least one painted keyframe on the footage")
    info = {"width": width, "height": height, "steps": steps, "notes": notes}
    if train:
        generator, trained = train_model(params, ctx, config, generator, steps, painted, frame, mask, flow, settings,
                                         notes)
        info.update(trained)
    generator.eval()
    fmt = output_format(footage_format)
    fmt = ImageFormat(fmt.extension, fmt.pixel_type, 4 if footage_format.has_alpha else 3)
    everything = [os.path.join(out_dir, f"{prefix}_{number:04d}{fmt.extension}") for number in range(1, len(paths) + 1)]
    own = chunks.frame_range(len(paths), params.get("chunk"))  # every frame, or a farm chunk's share
    todo = {index for index in own if chunks.wanted(everything[index], params.get("chunk"))}
    start, share = (TRAIN_SHARE, 1.0 - TRAIN_SHARE) if train else (0.0, 1.0)
    os.makedirs(out_dir, exist_ok=True)
    with torch.inference_mode():
        for done, (index, out) in enumerate(propagate(generator, config, frame, len(paths), painted, flow, mask,
                                                      ctx.half, batch=4 if device.type == "cuda" else 1,
                                                      wanted=todo.__contains__), start=1):
            write_image(everything[index], to_pixels(out), fmt)
            ctx.progress(start + share * done / len(todo), f"Stylized frame {done} of {len(todo)}",
                         preview=everything[index])
    outputs = [everything[index] for index in own]
    info.update(format=fmt.extension, pixel_type=fmt.pixel_type, guides=list(config.guides))
    return outputs, info


def train_model(params, ctx, config, generator, steps, painted, frame, mask, flow, settings, notes):
    """Train within params["seconds"] (stopping early when params["stop_file"] appears); save the model."""
    from .. import hub

    vgg = None
    if config.perceptual > 0 and ctx.device.type == "cpu":  # checked first: never fetch 575 MB that stays unused
        notes.append("perceptual loss off on the CPU: it would make each training step about 40x slower")
    elif config.perceptual > 0:
        try:
            vgg = load_vgg(settings)
        except hub.WeightsUnavailable as error:
            notes.append(f"perceptual loss off: VGG-19 weights not available: {error}")
    keys = [Keyframe(frame(i)[:, :3], image, mask(i)) for i, image in sorted(painted.items())]
    try:
        trainer = Trainer(keys, config, ctx.device, generator=generator, vgg=vgg, steps=steps)
    except ValueError as error:
        raise TaskError(str(error)) from error

    # The preview frame's guides are fixed during training: find its positions once.
    preview_index = min(max(int(params.get("preview_index", 0)), 0), len(params["frames"]) - 1)
    preview_input = None
    if not config.guides:
        preview_input = frame(preview_index)[:, :3]
    elif abs(preview_index - nearest_key(preview_index, list(painted))) <= 30:  # farther: too long a wait
        for index, key, positions in advected_positions(frame, len(params["frames"]), sorted(painted), flow):
            if index == preview_index:
                preview_input = network_input(config.guides, frame(index)[:, :3], positions, painted[key])
                break
    previews = os.path.join(params["output_dir"], "previews")
    last_preview = [time.perf_counter()]
    suffix = f" ({'; '.join(n.split(':')[0] for n in notes)})" if notes else ""

    def report(fraction: float, loss: float) -> None:
        path = None
        due = time.perf_counter() - last_preview[0] >= PREVIEW_EVERY or fraction >= 1.0  # and the final look
        if preview_input is not None and due:
            trainer.generator.eval()
            out = compose(run_generator(trainer.generator, preview_input, ctx.half), frame(preview_index)[:, :3],
                          mask(preview_index))
            trainer.generator.train()
            os.makedirs(previews, exist_ok=True)
            path = unique_path(previews, "preview", ".png")
            write_image(path, to_pixels(out), ImageFormat(".png", "uint8", 3))
            last_preview[0] = time.perf_counter()
        ctx.progress(TRAIN_SHARE * fraction, f"Training: step {trainer.steps}, loss {loss:.4f}{suffix}", preview=path)

    stop_file = params.get("stop_file")
    start = time.perf_counter()
    losses = trainer.train(float(params.get("seconds", 60.0)),
                           should_stop=lambda: bool(stop_file) and os.path.exists(stop_file), report=report)
    info = {"steps": trainer.steps, "train_seconds": time.perf_counter() - start,
            "loss": losses[-1] if losses else None, "stopped_early": bool(stop_file) and os.path.exists(stop_file)}
    if params.get("save_model"):
        trainer.save(params["save_model"], painted)
        info["model_file"] = params["save_model"]
    return trainer.generator, info
