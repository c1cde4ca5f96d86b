"""Particles and images: bilinear sampling of an image at particle positions, and forward
splatting of particle values back onto a pixel grid. Positions are (P, 2) x, y in pixels,
pixel centres at integers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sample(field: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Bilinear values (P, C) of ``field`` (1, C, H, W) at pixel positions (P, 2); zero off the frame."""
    height, width = field.shape[-2:]
    scale = positions.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    grid = (positions * scale - 1.0).view(1, 1, -1, 2)  # pixel centres at -1 .. +1 (align_corners)
    return F.grid_sample(field, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0, :, 0].T


def splat(positions: torch.Tensor, weights: torch.Tensor, values: torch.Tensor, height: int,
          width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward bilinear splatting of particle ``values`` (P, C) to ``positions`` (P, 2), weighted (P,).

    Returns the weighted sum (1, C, H, W) and the total weight (1, 1, H, W) per pixel. One
    index_add_ for all four corners, so it runs wherever torch runs.
    """
    corner = positions.floor()
    frac = positions - corner  # (P, 2)
    corner = corner.long()
    indices, shares = [], []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        x, y = corner[:, 0] + dx, corner[:, 1] + dy
        share = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1]) * weights
        on_frame = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        indices.append(torch.where(on_frame, y * width + x, 0))  # off-frame shares add 0 to pixel 0
        shares.append(share * on_frame)
    share = torch.cat(shares)[:, None]  # (4 * P, 1)
    contribution = torch.cat([values.repeat(4, 1) * share, share], 1)
    accumulated = values.new_zeros(height * width, values.shape[1] + 1).index_add_(0, torch.cat(indices), contribution)
    image = accumulated.T.reshape(1, -1, height, width)  # (1, C + 1, H, W), a channels-last view
    return image[:, :-1], image[:, -1:]
