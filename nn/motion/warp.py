"""Backward warping with optical flow, in the convention the RIFE weights were trained with.

Flow is in pixels: output pixel (x, y) samples the source at (x + u, y + v), bilinearly,
clamping to the border. Coordinates are normalised with align_corners=True, i.e. -1 and +1
are the centres of the first and last pixels.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=32)
def _base_grid(device: torch.device, dtype: torch.dtype, height: int, width: int) -> torch.Tensor:
    """Normalised pixel-centre coordinates, (1, 2, H, W) with x in channel 0, y in channel 1."""
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype).view(1, 1, 1, width).expand(1, 1, height, width)
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype).view(1, 1, height, 1).expand(1, 1, height, width)
    return torch.cat([xs, ys], dim=1)


def warp(image: torch.Tensor, flow: torch.Tensor, first_row: int = 0) -> torch.Tensor:
    """Sample ``image`` (B, C, H, W) at each pixel plus ``flow``; any C.

    ``flow`` is (B, 2, H, W), or (B, 2, h, W) for the output rows ``first_row``
    to ``first_row + h`` only, so large frames can be warped in bands.
    """
    out_dtype = image.dtype
    if image.dtype in (torch.float16, torch.bfloat16):
        # A 16-bit grid cannot address sub-pixel positions on wide frames (the step 2/(W-1)
        # is close to fp16's resolution near 1), so sample in fp32; it is cheap next to the convs.
        image, flow = image.float(), flow.float()
    _, _, height, width = image.shape
    grid = _base_grid(image.device, image.dtype, height, width)[..., first_row:first_row + flow.shape[-2], :]
    # Pixels -> normalised units, with the same float ops as the original code (bit-exact
    # output); max() only guards 1-pixel-wide images against a division by zero.
    half_w, half_h = max(width - 1.0, 1.0) / 2.0, max(height - 1.0, 1.0) / 2.0
    flow = torch.cat([flow[:, 0:1] / half_w, flow[:, 1:2] / half_h], dim=1)
    grid = (grid + flow.to(image.dtype)).permute(0, 2, 3, 1)  # (B, H, W, 2)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return warped.to(out_dtype)
