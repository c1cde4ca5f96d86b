"""Worker task ``loop``: animate a still into a seamless loop of N frames, written in order.

``endless`` makes a clip of any length that never repeats instead (``endless.py``), optionally
``seamless`` as well; ``layers`` also writes the moving region alone, as RGBA frames whose alpha is
the mask feathered outwards, to lay over an untouched copy of the still.

The user marks what may move (a mask image and/or polygons) and how (arrows and strokes);
``hints`` turns that into one static velocity field, ``synthesis`` renders the loop by symmetric
splatting, and ``appearance`` optionally changes the light over it. Alpha is splatted along with
the colour, premultiplied (a transparent pixel's hidden colour must not tint its neighbours), so a
cut-out keeps its shape where it moves; outside the mask every channel is the
still's, bit for bit, unless a light change is asked for (that covers the whole image).
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from .. import hub
from ..farm import chunks
from ..imageio import ImageFormat, read_image, write_image
from ..motion.flow import length
from ..frames import output_format, premultiplied, straight, to_pixels, to_tensor
from ..worker import TaskError
from .appearance import LightChange
from .endless import WINDOW, endless_motion
from .generative import generative_loop
from .motion_net import load_predictor, predict_velocity
from .hints import all_arrows, arrows_in_mask, rasterize_polygons, velocity_field
from .preview import field_arrows
from .synthesis import Loop

MIN_SIDE = 32
FEATHER = 3  # pixels over which a layer's alpha falls from 1 at the region's edge to 0 outside it
PREDICTED_MOTION = 0.25  # without a mask, pixels moving at this share of the fast end of the model's field move


def has_region(params: dict) -> bool:
    return bool(params.get("mask") or params.get("mask_polygons"))


def motion_mask(params: dict, width: int, height: int) -> np.ndarray | None:
    """(H, W) bool: the union of the mask image (non-zero first channel) and the polygons; None without either."""
    if not has_region(params):
        return None
    mask = np.zeros((height, width), dtype=bool)
    if params.get("mask"):
        pixels, _ = read_image(params["mask"])
        mask |= fitted_mask(pixels[..., 0], os.path.basename(params["mask"]), width, height)
    if params.get("mask_polygons"):
        mask |= rasterize_polygons(params["mask_polygons"], width, height)
    return mask


def fitted_mask(values: np.ndarray, name: str, width: int, height: int) -> np.ndarray:
    """(H, W) bool from a mask channel (h, w): resampled when it only differs in resolution."""
    mask_height, mask_width = values.shape
    if (mask_height, mask_width) == (height, width):
        return values > 0.5
    if abs(mask_width / mask_height - width / height) > 0.01 * width / height:
        raise TaskError(f"The mask {name} is {mask_width}x{mask_height} but the image is {width}x{height}: "
                        "their shapes differ, so it cannot be lined up. Use a mask of the image's shape.")
    resized = F.interpolate(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None],
                            size=(height, width), mode="bilinear", align_corners=False)
    return resized[0, 0].numpy() > 0.5


def check_inputs(params: dict, width: int, height: int, channels: int) -> None:
    has_mask = has_region(params)
    has_hints = bool(params.get("hints") or params.get("strokes"))
    # A motion model supplies hints and, if need be, the mask; the generative model needs neither.
    modelled = params.get("motion_source", "hints") in ("learned", "generative")
    if not modelled and (not has_mask or not has_hints):
        missing = " and ".join(name for name, present in (("a mask", has_mask), ("a hint", has_hints)) if not present)
        raise TaskError(f"Missing {missing}. A loop needs a mask of what may move (a mask image or polygons) "
                        "and at least one arrow or stroke drawn in the direction of motion, or a trained motion model.")
    if min(width, height) < MIN_SIDE:
        raise TaskError(f"The image is {width}x{height}; a loop needs at least {MIN_SIDE} pixels on each side.")
    if int(params.get("frames", 0)) < 2:
        raise TaskError(f"A loop needs at least 2 frames (got {params.get('frames')}).")
    if params.get("endless") and int(params["frames"]) < WINDOW:
        raise TaskError(f"An Endless clip needs at least {WINDOW} frames, one window between two passes through "
                        f"the still (got {params['frames']}). Make it longer, or turn Endless off for a short loop.")
    if params.get("layers"):
        if not has_mask:
            raise TaskError("Layers separate the region that may move from the still, and no region was given (a "
                            "closed spline in the Mask, or a mask image), so there is nothing to separate. Draw the "
                            "region, or turn Layers off.")
        if params.get("appearance") and float(params["appearance"].get("strength", 0)) > 0:
            raise TaskError("Layers lay the moving region over an untouched copy of the still, but a light change "
                            "alters the whole picture. Turn the light change off, or turn Layers off.")
        if channels in (2, 4):
            raise TaskError("Layers need an opaque still: laid over a copy of a transparent still, the moving layer "
                            "would show the copy through its own transparent parts. Turn Layers off for this still.")


def feathered(mask: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) alpha: 1 on ``mask`` (1, 1, H, W), falling linearly to 0 over FEATHER pixels outside it.

    Feathered outwards only: every pixel that can move stays opaque, and outside the region the
    layer shows the still's own pixels, so the layer over the still is the composite exactly.
    """
    grown = [F.max_pool2d(mask, 2 * k + 1, 1, k) for k in range(FEATHER + 1)]
    return sum(grown) / len(grown)


def hinted_motion(params: dict, still: torch.Tensor, mask: np.ndarray, speed: float) -> tuple[torch.Tensor, dict]:
    """The velocity (1, 2, H, W) spread from the user's arrows and strokes over ``mask``."""
    arrows = all_arrows(params.get("hints") or [], params.get("strokes") or [])
    if len(arrows) == 0:
        raise TaskError("Every arrow and stroke has zero length; drag in the direction of motion.")
    touching = arrows_in_mask(arrows, mask)
    if not touching.any():
        raise TaskError("Every arrow and stroke lies outside the motion mask, so nothing would move. "
                        "Draw them on the region that may move.")
    velocity = velocity_field(still, torch.from_numpy(mask)[None, None].float(), arrows, speed)
    return velocity, {"hints_outside_mask": int((~touching).sum()), "hints": len(arrows)}


def learned_motion(params: dict, still: torch.Tensor, mask: np.ndarray | None, speed: float, is_float: bool,
                   ctx) -> tuple[torch.Tensor, np.ndarray, dict]:
    """Velocity (1, 2, H, W) and region (H, W) from the motion model, scaled to ``speed`` px/frame on average.

    Without a mask from the user, what moves is where the model predicts real motion.
    """
    path = params.get("motion_model")
    if not path:
        try:
            path = hub.resolve(hub.REGISTRY["loop-motion"], hub.HubSettings(**params["hub"]))
        except (hub.WeightsUnavailable, hub.WeightsRejected) as error:
            raise TaskError(str(error)) from error
    converted = os.path.join(params["hub"]["cache_dir"], "converted") if params.get("hub") else None
    velocity = predict_velocity(load_predictor(path, ctx.device, converted), still, ctx.device, is_float).cpu()
    magnitude = length(velocity)[0, 0]  # (H, W)
    if mask is None:
        mask = (magnitude >= PREDICTED_MOTION * torch.quantile(magnitude.flatten()[::97], 0.95)).numpy()
    mean = float(magnitude[torch.from_numpy(mask)].mean()) if mask.any() else 0.0
    if mean < 1e-3:
        raise TaskError(f"The motion model {os.path.basename(path)} sees no motion in the region that may move. "
                        "Draw the motion with hints instead.")
    velocity = velocity * torch.from_numpy(mask)[None, None] * (speed / mean)
    return velocity, mask, {"motion_model": path, "predicted_speed": round(mean, 4)}


def light_change(params: dict, still: torch.Tensor, is_float: bool, ctx, curve=None) -> LightChange | None:
    settings = params.get("appearance")
    if not settings or float(settings.get("strength", 0)) <= 0:
        return None
    if still.shape[1] < 3:
        raise TaskError("A light change needs a colour image; this one is greyscale.")
    reference = None
    if settings.get("reference"):
        reference = to_tensor(read_image(settings["reference"])[0], ctx.device)
        if reference.shape[1] < 3:
            raise TaskError("The appearance reference must be a colour image.")
    elif settings.get("target_rgb") is None:
        raise TaskError("A light change needs a target colour or a reference image.")
    return LightChange(still, int(params["frames"]), float(settings["strength"]), is_float,
                       target_rgb=settings.get("target_rgb"), reference=reference, curve=curve)


def run(params: dict, ctx) -> tuple[list[str], dict]:
    pixels, still_format = read_image(params["image"])
    height, width = pixels.shape[:2]
    check_inputs(params, width, height, pixels.shape[2])
    frames = int(params["frames"])
    fmt = output_format(still_format)
    mask = motion_mask(params, width, height)
    still = to_tensor(pixels, ctx.device).float()
    out_dir, prefix = params["output_dir"], params.get("prefix", "loop")
    chunk = params.get("chunk")
    own = chunks.frame_range(frames, chunk)  # every frame, or a farm chunk's share (farm/chunks.py)
    first_number = int(params.get("first_number", 1))  # the command line counts from 0
    outputs = [os.path.join(out_dir, f"{prefix}_{first_number + t:04d}{fmt.extension}") for t in own]
    layers = [os.path.join(out_dir, "layers", f"{prefix}_layer_{first_number + t:04d}{fmt.extension}")
              for t in own] if params.get("layers") else []
    # A frame and its layer are written together; the layer goes first, so a frame that exists has its layer.
    todo = [t for t, path in zip(own, outputs) if chunks.wanted(path, chunk)]
    if params.get("motion_source") == "generative":
        if params.get("field_only"):
            raise TaskError("The generative model makes no motion field to preview; animate the loop instead.")
        made, notes = generative_loop(params, still, mask, fmt.is_float, ctx)
        made = enumerate(made)  # one video: never split into chunks
        mask = np.ones((height, width), bool) if mask is None else mask
        light = light_change(params, still, fmt.is_float, ctx)
        info = {"width": width, "height": height, "frames": frames, "moving_fraction": round(float(mask.mean()), 4),
                **notes}
        os.makedirs(out_dir, exist_ok=True)
    else:
        made, info, light, mask = follow_motion(params, pixels, still, mask, fmt.is_float, ctx, todo)
        if params.get("field_only"):
            return [info["motion_field"]], info
    mask_tensor = torch.from_numpy(mask)[None, None].float().to(ctx.device)
    if layers:
        os.makedirs(os.path.join(out_dir, "layers"), exist_ok=True)
        alpha = feathered(mask_tensor)
        layer_format = ImageFormat(fmt.extension, fmt.pixel_type, still.shape[1] + 1)
    with torch.inference_mode():
        for done, (t, frame) in enumerate(made, start=1):
            frame = light(frame, t) if light else frame
            if layers and chunks.wanted(layers[t - own.start], chunk):
                write_image(layers[t - own.start], to_pixels(torch.cat([frame, alpha], 1)), layer_format)
            write_image(outputs[t - own.start], to_pixels(frame), fmt)
            ctx.progress(done / len(todo), f"Frame {t + 1} of {frames}", preview=outputs[t - own.start])
    if layers:
        info["layers"] = layers
    return outputs, {**info, "format": fmt.extension, "pixel_type": fmt.pixel_type}


def follow_motion(params: dict, pixels: np.ndarray, still: torch.Tensor, mask: np.ndarray | None, is_float: bool,
                  ctx, wanted: list[int]) -> tuple:
    """The hinted or learned motion's (t, frame t) for the ``wanted`` times (a lazy iterator), the job's info,
    its light change and region.

    Writes the motion field's arrows first (``motion_field.png``): shown first, and all a preview wants
    (of a farm job's chunks, the first writes it).
    """
    frames, speed = int(params["frames"]), float(params.get("speed", 1.0))
    height, width = pixels.shape[:2]
    if params.get("motion_source", "hints") == "learned":
        ctx.progress(0.0, "Predicting the motion")
        velocity, mask, notes = learned_motion(params, still, mask, speed, is_float, ctx)
    else:
        ctx.progress(0.0, "Spreading the motion hints")
        velocity, notes = hinted_motion(params, still, mask, speed)
    velocity = velocity.to(ctx.device)
    mask_tensor = torch.from_numpy(mask)[None, None].float().to(ctx.device)
    mean_speed = float(length(velocity)[0, 0][mask_tensor[0, 0] > 0].mean()) if mask.any() else 0.0
    has_alpha = still.shape[1] in (2, 4)
    endless = bool(params.get("endless"))
    field, times, curve = velocity, None, None
    if endless:
        field, times, curve = endless_motion(velocity, frames, bool(params.get("seamless")), int(params.get("seed", 0)))
    light = light_change(params, still, is_float, ctx, curve)

    out_dir = params["output_dir"]
    os.makedirs(out_dir, exist_ok=True)
    arrows_path = os.path.join(out_dir, "motion_field.png")
    chunk = params.get("chunk")
    if not chunk or (chunk[0] == 1 and chunks.wanted(arrows_path, chunk)):
        write_image(arrows_path, field_arrows(pixels, velocity[0].cpu().numpy()), ImageFormat(".png", "uint8", 3))
    info = {"width": width, "height": height, "frames": frames, "mean_speed": round(mean_speed, 4),
            "moving_fraction": round(float(mask.mean()), 4), "motion_field": arrows_path,
            **notes}
    if endless:
        info["anchors"] = [t for t in times if t <= frames]
    if not params.get("field_only"):
        ctx.progress(0.0, "Following the motion", preview=arrows_path)
    inside = mask_tensor > 0
    loop = Loop(premultiplied(still) if has_alpha else still, mask_tensor, field, frames, times)
    made = ((t, torch.where(inside, straight(frame), still) if has_alpha else frame)  # outside: bit for bit
            for t, frame in loop.rendered(wanted))
    return made, info, light, mask
