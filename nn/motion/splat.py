"""Particles and images: bilinear sampling of an image at particle positions, and forward
splatting of particle values back onto a pixel grid. Positions are (P, 2) x, y in pixels,
pixel centres at integers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_COVERAGE = 1e-3  # splat weight below which a pixel counts as a hole
GAP_FILL_STEPS = 2  # a hole up to twice this wide, between particles the flow spread apart, is filled


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
    index_add_ per corner, so it runs wherever torch runs; four of (P, C + 1) rather than one of
    (4P, C + 1) take 0.6x the time at 720p (no copy of every value four times), with the same sums.
    """
    corner = positions.floor()
    frac = positions - corner  # (P, 2)
    corner = corner.long()
    weighted = torch.cat([values, torch.ones_like(values[:, :1])], 1)  # (P, C + 1): the weight rides along
    accumulated = values.new_zeros(height * width, values.shape[1] + 1)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        x, y = corner[:, 0] + dx, corner[:, 1] + dy
        share = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1]) * weights
        on_frame = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        # Off-frame shares add 0 to pixel 0.
        accumulated.index_add_(0, torch.where(on_frame, y * width + x, 0), weighted * (share * on_frame)[:, None])
    image = accumulated.T.reshape(1, -1, height, width)  # (1, C + 1, H, W), a channels-last view
    return image[:, :-1], image[:, -1:]


def blur(image: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """(1, C, H, W) separable blur with normalised ``taps``, edges replicated."""
    kernel = image.new_tensor(taps) / sum(taps)
    channels, radius = image.shape[1], len(taps) // 2
    # Channels-last: PyTorch's CPU depthwise convolution of 3 or 4 channels is about 15x faster in
    # that layout (720p), and then 3x faster than avg_pool2d; one channel is fastest in avg_pool2d.
    padded = F.pad(image.contiguous(memory_format=torch.channels_last), (radius, radius, radius, radius),
                   mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def box_around(inside: torch.Tensor, margin: int) -> tuple | None:
    """Index (..., rows, columns) of the bounding box of ``inside`` (1, 1, H, W) grown by ``margin``
    pixels (within the frame); None when ``inside`` is empty."""
    rows, columns = inside[0, 0].any(1).nonzero(), inside[0, 0].any(0).nonzero()
    if len(rows) == 0:
        return None
    return (..., slice(max(int(rows[0]) - margin, 0), int(rows[-1]) + 1 + margin),
            slice(max(int(columns[0]) - margin, 0), int(columns[-1]) + 1 + margin))


def fill_gaps(total: torch.Tensor, coverage: torch.Tensor, inside: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Splat sums (1, C, H, W) and weights (1, 1, H, W) with small holes in ``inside`` filled from neighbours.

    Where the field spreads particles more than a pixel apart, bilinear splats leave gaps between
    them; taking those from the still would stripe the picture. Each step gives every empty
    pixel the mean of its 3x3 neighbourhood's splats (weights and sums alike, so colours stay
    normalised), closing gaps up to 2 * GAP_FILL_STEPS pixels wide; wider holes stay holes.
    """
    both = torch.cat([total, coverage], 1)  # (1, C + 1, H, W): one pooling moves sums and weights together
    # Only the box around ``inside`` (and a pixel more, the holes' neighbours) is filtered. It is
    # the same box at every call: a box around each call's holes changed size every frame, and
    # allocations of ever new sizes fragmented the heap, so a long clip's memory grew with its
    # length (+17% from frame 120 to 600 of a 720p Endless clip) while its live tensors did not.
    box = box_around(inside, 1)
    if box is None:
        return total, coverage
    for _ in range(GAP_FILL_STEPS):
        empty = (both[:, -1:] <= MIN_COVERAGE) & inside  # outside the region nothing is splatted, nor needed
        if not empty.any():
            break
        both[box] = torch.where(empty[box], blur(both[box], [1, 1, 1]), both[box])  # a 3x3 box
    return both[:, :-1], both[:, -1:]
