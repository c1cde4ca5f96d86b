"""A slow change of light over the loop that comes back: dusk falling and lifting, say.

Parametric, no network (in the spirit of Endo et al. 2019, "Animating Landscape", which
changes colour statistics over time): the still's colour statistics are moved towards a
target, a plain colour or a reference image's, by the weight strength * sin^2(pi t / N),
which is 0 at frame 0 and again at frame N, so the loop stays seamless. The statistics are
the mean and standard deviation of each channel in an opponent space (luma and two colour
differences) of display-encoded RGB, like Reinhard et al.'s colour transfer.

It applies to the whole image, mask or not: light falls on the rocks as well as the water.
Alpha is left alone. With no appearance change, nothing here runs and static pixels stay exact.
"""
from __future__ import annotations

import math

import torch

from ..colour import to_display, to_linear

# display RGB -> (luma, blue difference, red difference); orthogonal rows, so the inverse is simple
OPPONENT = torch.tensor([[0.299, 0.587, 0.114], [-0.169, -0.331, 0.5], [0.5, -0.419, -0.081]])


def opponent(rgb: torch.Tensor) -> torch.Tensor:
    return torch.einsum("oc,bchw->bohw", OPPONENT.to(rgb), rgb)


def from_opponent(values: torch.Tensor) -> torch.Tensor:
    return torch.einsum("oc,bchw->bohw", torch.linalg.inv(OPPONENT).to(values), values)


def statistics(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (1, 3, 1, 1) of display RGB (1, 3, H, W) in the opponent space."""
    values = opponent(rgb)
    return values.mean((2, 3), keepdim=True), values.std((2, 3), keepdim=True)


class LightChange:
    """Frame t -> frame t under the changed light. ``still`` and ``reference`` are (1, C, H, W)."""

    def __init__(self, still: torch.Tensor, frames: int, strength: float, is_float: bool,
                 target_rgb=None, reference: torch.Tensor | None = None, curve=None):
        """``curve`` maps a frame to a weight in [0, 1] (Endless: one that never repeats); default sin^2."""
        self.frames, self.strength, self.is_float = frames, float(strength), is_float
        self.curve = curve or (lambda t: math.sin(math.pi * t / self.frames) ** 2)
        self.mean, self.std = statistics(to_display(still[:, :3], is_float))
        if reference is not None:
            self.target_mean, self.target_std = statistics(to_display(reference[:, :3], is_float))
        else:  # a colour: the scene's average moves to it, contrast is kept
            colour = torch.tensor(target_rgb, dtype=still.dtype).view(1, 3, 1, 1)
            self.target_mean, self.target_std = opponent(colour), self.std

    def weight(self, t: int) -> float:
        return self.strength * self.curve(t)

    def __call__(self, frame: torch.Tensor, t: int) -> torch.Tensor:
        weight = self.weight(t)
        if weight == 0:
            return frame
        values = opponent(to_display(frame[:, :3], self.is_float))
        moved = (values - self.mean) / self.std.clamp(min=1e-6) * self.target_std + self.target_mean
        rgb = to_linear(from_opponent(values + weight * (moved - values)), self.is_float)
        rgb = rgb if self.is_float else rgb.clamp(0, 1)
        return torch.cat([rgb, frame[:, 3:]], 1)
