"""Frames of any channels and encoding to the model's view and back.

The model sees display-referred RGB in [0, 1] at its grid size; a frame comes back with the
input's channels (grey, grey + alpha, RGB, RGBA), encoding (scene-linear float or display) and size.
Alpha goes through ``matte``: the model never sees it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..colour import to_display, to_linear
from .matte import key_out, over_matte


def has_alpha(channels: int) -> bool:
    return channels in (2, 4)


def as_rgba(frame: torch.Tensor) -> torch.Tensor:
    """(4, H, W) from (C, H, W) with C in 1..4: grey is spread to RGB, a missing alpha is 1."""
    colour = frame[:3] if frame.shape[0] >= 3 else frame[:1].expand(3, -1, -1)
    alpha = frame[-1:] if has_alpha(frame.shape[0]) else torch.ones_like(frame[:1])
    return torch.cat([colour, alpha], 0)


def to_model(frame: torch.Tensor, is_float: bool, size: tuple[int, int], matte: torch.Tensor | None) -> torch.Tensor:
    """(3, h, w) display RGB in [0, 1] at ``size`` (w, h) from a (1, C, H, W) frame; alpha over ``matte``."""
    rgba = as_rgba(frame[0].float())
    rgba = torch.cat([to_display(rgba[None, :3], is_float)[0].clamp(0, 1), rgba[3:].clamp(0, 1)], 0)
    rgb = over_matte(rgba, matte) if matte is not None else rgba[:3]
    return F.interpolate(rgb[None], size=(size[1], size[0]), mode="area")[0]


def from_model(frame: torch.Tensor, channels: int, is_float: bool, size: tuple[int, int],
               matte: torch.Tensor | None) -> torch.Tensor:
    """(1, C, H, W) at ``size`` (W, H) in the keys' channels and encoding from a model frame (3, h, w)."""
    rgba = key_out(frame, matte) if matte is not None else torch.cat([frame, torch.ones_like(frame[:1])], 0)
    rgba = F.interpolate(rgba[None].float(), size=(size[1], size[0]), mode="bilinear", align_corners=False)
    colour = to_linear(rgba[:, :3].clamp(0, 1), is_float)
    alpha = rgba[:, 3:].clamp(0, 1)
    if channels >= 3:
        return torch.cat([colour, alpha], 1) if channels == 4 else colour
    grey = colour.mean(dim=1, keepdim=True)
    return torch.cat([grey, alpha], 1) if channels == 2 else grey
