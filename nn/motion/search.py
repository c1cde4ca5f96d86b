"""Global search for large displacements: exhaustive block matching on a coarse copy.

Flow networks refine from a coarse pyramid level whose reach is a few coarse pixels, so an
object that jumps further than that between two keys is lost. Here every displacement within
``radius`` coarse pixels is tried for every coarse pixel, scored by the mean absolute
difference over a window, and the best kept: the coarse motion that a finer estimate then
refines (``nn.inbetween.keymotion``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .warp import warp

SEARCH_PIXELS = 48  # the coarse copy's longer side
SEARCH_RADIUS = 24  # coarse pixels tried each way: half the frame
WINDOW = 3  # coarse pixels a match is scored over
REFINE_RADIUS = 2  # full-size pixels each side of the window that re-chooses a pixel's block
DISTANCE_COST = 1e-3  # per coarse pixel of displacement: ties (flat areas) go to the shortest move


def block_search(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(1, 2, H, W) flow in pixels at ``source``'s pixels towards where they are in ``target``,
    both (1, C, H, W); piecewise constant at the coarse copy's resolution, smoothly upsampled."""
    height, width = source.shape[-2:]
    factor = max(height, width) / SEARCH_PIXELS
    size = (max(round(height / factor), 1), max(round(width / factor), 1))
    small_source, small_target = (F.interpolate(image.float(), size=size, mode="area") for image in (source, target))
    r = SEARCH_RADIUS
    padded = F.pad(small_target, (r, r, r, r), mode="replicate")
    # Every shift of the target at once: (1, C * h * w, S) for the S = (2r + 1)^2 displacements.
    shifted = F.unfold(padded, kernel_size=size).view(1, -1, *size, (2 * r + 1) ** 2)
    difference = (small_source[..., None] - shifted).abs().mean(1)  # (1, h, w, S)
    cost = F.avg_pool2d(difference.permute(0, 3, 1, 2), WINDOW, 1, WINDOW // 2, count_include_pad=False)[0]  # (S, h, w)
    steps = torch.arange(-r, r + 1, dtype=cost.dtype)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")  # unfold runs over rows of shifts, then columns
    cost = cost + DISTANCE_COST * (dx * dx + dy * dy).sqrt().flatten()[:, None, None]
    choice = cost.argmin(0)  # (h, w)
    best = torch.stack([dx.flatten()[choice], dy.flatten()[choice]])[None]  # (1, 2, h, w)
    gain = best.new_tensor([width / size[1], height / size[0]]).view(1, 2, 1, 1)
    coarse = F.interpolate(best * gain, size=(height, width), mode="nearest")  # (1, 2, H, W), blocks
    return sharpened(source.float(), target.float(), coarse, (round(height / size[0]), round(width / size[1])))


def sharpened(source: torch.Tensor, target: torch.Tensor, coarse: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """Blocky ``coarse`` flow with each pixel's displacement re-chosen among its own and the neighbouring
    blocks', by the match of a small window at full size: the motion's edges then follow the picture's."""
    best_cost, best = None, coarse
    for dy in (-block[0], 0, block[0]):
        for dx in (-block[1], 0, block[1]):
            candidate = torch.roll(coarse, (dy, dx), (-2, -1))
            difference = (source - warp(target, candidate)).abs().mean(1, keepdim=True)
            cost = F.avg_pool2d(difference, 2 * REFINE_RADIUS + 1, 1, REFINE_RADIUS, count_include_pad=False)
            if best_cost is None:
                best_cost, best = cost, candidate
            else:
                better = cost < best_cost
                best_cost, best = torch.where(better, cost, best_cost), torch.where(better, candidate, best)
    return best.to(source.dtype)
