"""Loops from the generative model: the still is the first frame and the frame after the last, so the
loop closes; an Endless clip passes through the still once per model window (``window - 1`` frames),
each window's motion its own. The region (the mask) is VACE's spatial mask: only its pixels are
generated, and outside it every frame is the still's, bit for bit (composited at full size).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..generate.convert import from_model, has_alpha, to_model
from ..generate.matte import choose_matte
from ..generate.pipeline import load_for_task
from ..generate.video import KeyedVideo, grid_size


def still_positions(frames: int, window: int, endless: bool, seamless: bool) -> list[int]:
    """Where the video passes through the still: 0 and ``frames`` (a loop), or every ``window - 1`` frames
    (Endless; its end is the still only when ``seamless``)."""
    if not endless:
        return [0, frames]
    every = window - 1
    positions = list(range(0, frames + 1, every))
    if seamless and positions[-1] != frames:
        positions.append(frames)
    return positions


def generative_loop(params: dict, still: torch.Tensor, mask: np.ndarray | None, is_float: bool,
                    ctx) -> tuple[Iterator[torch.Tensor], dict]:
    """Frames 0 .. frames-1 (each (1, C, H, W) like ``still``) and notes for the job's info."""
    model = load_for_task(params, ctx)
    settings = model.settings
    frames = int(params["frames"])
    channels, (height, width) = still.shape[1], still.shape[-2:]
    grid = grid_size(width, height, settings.max_pixels)
    matte = choose_matte([still[0].float().cpu()]) if has_alpha(channels) else None
    view = to_model(still.cpu(), is_float, grid, matte)  # (3, h, w)
    region = inside = None
    if mask is not None:
        full = torch.from_numpy(mask)[None, None].float()  # (1, 1, H, W)
        inside = full.to(still.device) > 0
        region = F.adaptive_max_pool2d(full, (grid[1], grid[0]))[0] > 0  # (1, h, w): every cell the region touches
    anchors = still_positions(frames, settings.window, bool(params.get("endless")), bool(params.get("seamless")))
    video = KeyedVideo(model, {p: view for p in anchors}, max(anchors[-1], frames - 1) + 1, region=region, still=view,
                       progress=ctx.progress)

    def made() -> Iterator[torch.Tensor]:
        for position in range(frames):
            if position in anchors:  # the still itself, not the model's copy of it
                yield still
                continue
            frame = from_model(video.frame(position), channels, is_float, (width, height), matte).to(still)
            yield frame if inside is None else torch.where(inside, frame, still)

    return made(), {"anchors": anchors, "notes": model.notes}
