"""The sRGB transfer curve, for scene-linear float images (EXR): networks and colour statistics
work on display-referred values, as the eye sees them; 8- and 16-bit files already are."""
from __future__ import annotations

import torch


def to_display(rgb: torch.Tensor, is_float: bool) -> torch.Tensor:
    """Display-referred RGB: float (scene-linear) images get the sRGB curve, others pass unchanged."""
    if not is_float:
        return rgb
    return torch.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * rgb.clamp(min=1e-8) ** (1 / 2.4) - 0.055)


def to_linear(rgb: torch.Tensor, is_float: bool) -> torch.Tensor:
    """The inverse of ``to_display``."""
    if not is_float:
        return rgb
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp(min=0) + 0.055) / 1.055) ** 2.4)
