"""Alpha for a model that makes RGB only: RGBA keys are laid over a flat matte colour that none of
their visible pixels is near, the video is generated over it, and the matte is keyed out again.

Where a frame shows the matte exactly, alpha is 0; it rises to 1 within ``SOFTNESS`` of it, and the
colour of the part-covered pixels is unmixed from the matte (straight, not premultiplied, like the keys).
"""
from __future__ import annotations

import torch

# Saturated colours, far apart: the one farthest from every visible key pixel is the matte.
CANDIDATES = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0],
                           [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
SOFTNESS = 0.25  # RGB distance over which alpha goes from 0 at the matte to 1
VISIBLE = 0.05  # key pixels with less alpha than this do not count when the matte is chosen


def choose_matte(keys: list[torch.Tensor]) -> torch.Tensor:
    """(3,) the candidate colour whose nearest visible pixel of ``keys`` (each (4, H, W)) is farthest."""
    visible = torch.cat([key[:3].flatten(1)[:, key[3].flatten() >= VISIBLE] for key in keys], 1).T  # (N, 3)
    if visible.shape[0] == 0:
        return CANDIDATES[0].clone()
    visible = visible[:: max(1, visible.shape[0] // 20000)].float()  # a sample is enough to find a free colour
    nearest = torch.cdist(CANDIDATES, visible).min(dim=1).values  # (8,)
    return CANDIDATES[int(nearest.argmax())].clone()


def over_matte(key: torch.Tensor, matte: torch.Tensor) -> torch.Tensor:
    """(3, H, W): the RGBA ``key`` (4, H, W) composited over the flat ``matte`` colour."""
    alpha = key[3:4].clamp(0, 1)
    return key[:3] * alpha + matte.view(3, 1, 1) * (1 - alpha)


def key_out(frame: torch.Tensor, matte: torch.Tensor) -> torch.Tensor:
    """(4, H, W) straight RGBA from an RGB ``frame`` (3, H, W) made over ``matte``."""
    alpha = ((frame - matte.view(3, 1, 1)).norm(dim=0, keepdim=True) / SOFTNESS).clamp(0, 1)  # (1, H, W)
    colour = (frame - matte.view(3, 1, 1) * (1 - alpha)) / alpha.clamp(min=1e-6)
    return torch.cat([torch.where(alpha > 0, colour.clamp(0, 1), 0.0), alpha], 0)
