"""Particle paths through a velocity field: Euler steps forward, and the same path replayed in
reverse from a few checkpoints (for splatting backwards in time).

The field is a (1, 2, H, W) tensor held fixed, or a callable ``field(step)`` returning the
(1, 2, H, W) field that moves particles from integer time ``step`` to ``step + 1`` (a field that
evolves over time). Paths start at ``time``; a negative ``sign`` walks back in time, so its
first step uses the field of ``time - 1``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from .splat import sample

Field = torch.Tensor | Callable[[int], torch.Tensor]


def field_at(velocity: Field, step: int) -> torch.Tensor:
    """The (1, 2, H, W) field moving particles from time ``step`` to ``step + 1``."""
    return velocity if isinstance(velocity, torch.Tensor) else velocity(step)


def integrate(velocity: Field, start: torch.Tensor, steps: int, sign: float = 1.0, time: int = 0
              ) -> Iterator[torch.Tensor]:
    """Particle positions (P, 2) after 0, 1, ..., ``steps`` Euler steps of ``sign * velocity`` from ``time``."""
    positions = start
    yield positions
    for k in range(steps):
        step = time + k if sign > 0 else time - 1 - k
        positions = positions + sign * sample(field_at(velocity, step), positions)
        yield positions


def integrate_reversed(velocity: Field, start: torch.Tensor, steps: int, sign: float = 1.0, time: int = 0
                       ) -> Iterator[torch.Tensor]:
    """Particle positions after ``steps``, ``steps`` - 1, ..., 0 Euler steps, in that order.

    Keeping the whole path would take 8 bytes per particle per step (4 GB for a 120-frame loop
    of a 4K still, half of it moving). Instead a first pass keeps every ``stride``-th position,
    and each stretch between two of them is integrated again when its turn comes: about
    2 * sqrt(steps) positions are held, for one extra integration of the path.
    """
    stride = max(1, math.isqrt(steps))
    direction = 1 if sign > 0 else -1
    checkpoints = [p for k, p in enumerate(integrate(velocity, start, steps, sign, time)) if k % stride == 0]
    for index in reversed(range(len(checkpoints))):
        stretch = list(integrate(velocity, checkpoints[index], min(stride - 1, steps - index * stride), sign,
                                 time + direction * index * stride))
        yield from reversed(stretch)
