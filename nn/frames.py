"""Frames between files and tensors, for every feature: pixels (H, W, C) as read by ``nn.imageio``
become tensors (1, C, H, W) and back, and outputs keep the inputs' format unless it is lossy.
"""
from __future__ import annotations

import numpy as np
import torch

from .imageio import ImageFormat

LOSSY_EXTENSIONS = {".jpg", ".jpeg", ".webp"}


def output_format(key_format: ImageFormat) -> ImageFormat:
    """Same format as the inputs, except lossy files, which become PNG rather than lose more."""
    if key_format.extension in LOSSY_EXTENSIONS:
        return ImageFormat(".png", "uint8", key_format.channels)
    return key_format


def to_tensor(pixels: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).to(device)  # (1, C, H, W)


def to_pixels(frame: torch.Tensor) -> np.ndarray:
    return frame[0].permute(1, 2, 0).float().cpu().numpy()  # (H, W, C)


def premultiplied(image: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) with alpha last (C = 2 or 4): colour times alpha, so hidden colour weighs nothing when
    frames are blended, warped or splatted."""
    return torch.cat([image[:, :-1] * image[:, -1:], image[:, -1:]], 1)


def straight(image: torch.Tensor) -> torch.Tensor:
    """Back from ``premultiplied``; fully transparent pixels get colour 0."""
    alpha = image[:, -1:]
    return torch.cat([torch.where(alpha > 1e-6, image[:, :-1] / alpha.clamp(min=1e-6), 0.0), alpha], 1)
