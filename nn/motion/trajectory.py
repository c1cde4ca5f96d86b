"""Per-pixel paths through a sequence of keys: C1 across each key (QVI-style, but cubic).

Between keys a and b every pixel follows a cubic Hermite curve from its place on key a to its
place on key b. The tangent at a key is the pixel's velocity there, the derivative of the
quadratic through its positions on the previous, this and the next key (a non-uniform
Catmull-Rom tangent, so unequal gaps are timed by their length in frames). Both gaps that meet
at a key use the same velocity, so motion carries through the key instead of jolting. Where a
key has no neighbour on one side, the pixel's own chord of the gap is its tangent, and with two
keys the path is the straight line at even speed.
"""
from __future__ import annotations

import torch


def key_velocity(to_next: torch.Tensor, to_previous: torch.Tensor, frames_next: float,
                 frames_previous: float) -> torch.Tensor:
    """Velocity in pixels per frame (1, 2, H, W) of each pixel of a key, from its flows to the keys
    ``frames_next`` frames after and ``frames_previous`` frames before it."""
    total = frames_next + frames_previous
    return (frames_previous / total) * to_next / frames_next - (frames_next / total) * to_previous / frames_previous


def hermite(end: torch.Tensor, start_tangent: torch.Tensor, end_tangent: torch.Tensor, t: float) -> torch.Tensor:
    """Displacement at time t in [0, 1] along the cubic from 0 to ``end`` with the given tangents
    (pixels per gap); equal tangents equal to ``end`` give the straight line, ``t * end``."""
    t2, t3 = t * t, t * t * t
    return (3 * t2 - 2 * t3) * end + (t3 - 2 * t2 + t) * start_tangent + (t3 - t2) * end_tangent
