"""Particle paths through a static velocity field: Euler steps forward, and the same path
replayed in reverse from a few checkpoints (for splatting backwards in time).
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .splat import sample


def integrate(velocity: torch.Tensor, start: torch.Tensor, steps: int, sign: float = 1.0) -> Iterator[torch.Tensor]:
    """Particle positions (P, 2) after 0, 1, ..., ``steps`` Euler steps of ``sign * velocity``."""
    positions = start
    yield positions
    for _ in range(steps):
        positions = positions + sign * sample(velocity, positions)
        yield positions


def integrate_reversed(velocity: torch.Tensor, start: torch.Tensor, steps: int, sign: float = 1.0
                       ) -> Iterator[torch.Tensor]:
    """Particle positions after ``steps``, ``steps`` - 1, ..., 0 Euler steps, in that order.

    Keeping the whole path would take 8 bytes per particle per step (4 GB for a 120-frame loop
    of a 4K still, half of it moving). Instead a first pass keeps every ``stride``-th position,
    and each stretch between two of them is integrated again when its turn comes: about
    2 * sqrt(steps) positions are held, for one extra integration of the path.
    """
    stride = max(1, math.isqrt(steps))
    checkpoints = [p for k, p in enumerate(integrate(velocity, start, steps, sign)) if k % stride == 0]
    for index in reversed(range(len(checkpoints))):
        stretch = list(integrate(velocity, checkpoints[index], min(stride - 1, steps - index * stride), sign))
        yield from reversed(stretch)
