"""Endless clips: motion that never repeats, with every frame's displacement from the still bounded.

Two ideas from StyleSV ("Towards Smooth Video Composition", Zhang et al. 2023), without a network:
- **Low-rank motion codes.** The field at time t is the base field (hints or learned) plus a few
  fixed perturbation fields weighted by codes c(t): a turn of the base direction, a change of its
  speed, and two smooth random swirls, each as strong as the base wherever it moves.
- **B-spline codes.** The codes are random control points interpolated by a uniform cubic
  B-spline, whose velocity and acceleration are continuous: linear interpolation would jolt the
  motion at every control point.

The still anchors the clip every ``WINDOW`` frames or so (jittered, so no lag lines the anchors
up); between two anchors, ``synthesis.Loop`` blends the still carried forward from the first with
the still carried backward from the second, by the symmetric-splatting weights. No particle
travels further than one window, so texture never stretches, and memory and time per frame do
not grow with the length. Seamless: the codes, the anchors and the light curve all repeat with
the clip's length, so its last frame flows into its first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..motion.flow import length
from .hints import extend

WINDOW = 48  # mean frames between two passes through the still; also the shortest Endless clip
WINDOW_JITTER = 0.25  # each window is 1 -/+ this times WINDOW long
CODE_SPACING = 36  # frames between two control points of the motion codes
CODE_SCALE = (0.3, 0.25, 0.35, 0.35)  # spread of the codes: turn (radians), speed change, two swirls
LIGHT_SPACING = 96  # frames between two control points of the light curve
SWIRL_CELLS = 6  # the random swirls vary over about this many cells across the picture


def bspline(controls: torch.Tensor, time: float, spacing: float, periodic: bool) -> torch.Tensor:
    """Uniform cubic B-spline through ``controls`` (M, R) at ``time``, knots ``spacing`` apart.

    Periodic: control indices wrap around, so the curve repeats every M * spacing. Otherwise
    control k sits at time (k - 1) * spacing, and M must cover ``time`` + 2 spacings.
    """
    u = time / spacing
    index = int(u // 1)
    f = u - index
    weights = ((1 - f) ** 3 / 6, (3 * f ** 3 - 6 * f ** 2 + 4) / 6, (-3 * f ** 3 + 3 * f ** 2 + 3 * f + 1) / 6,
               f ** 3 / 6)  # sum to 1
    count = controls.shape[0]
    rows = [(index + k - 1) % count if periodic else index + k for k in range(4)]
    return sum(w * controls[r] for w, r in zip(weights, rows))


def knots(frames: int, spacing: int, periodic: bool) -> tuple[int, float]:
    """How many control points cover ``frames``, and their spacing (exact divisions when periodic)."""
    if periodic:
        count = max(4, round(frames / spacing))
        return count, frames / count
    return frames // spacing + 4, float(spacing)


def perturbations(base: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(R, 2, H, W) fields to add to ``base`` (1, 2, H, W): a turn, a speed change and two swirls."""
    _, _, height, width = base.shape
    turn = torch.stack([-base[:, 1], base[:, 0]], 1)  # base rotated a quarter turn
    speed = length(base)  # (1, 1, H, W)
    cells = (max(2, round(SWIRL_CELLS * height / max(height, width))), max(2, round(SWIRL_CELLS * width / max(height, width))))
    swirls = []
    for _ in range(2):
        coarse = torch.randn(1, 2, *cells, generator=generator).to(base)
        smooth = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
        smooth = smooth / length(smooth).mean().clamp(min=1e-6)  # unit speed on average
        swirls.append(smooth * speed)  # as fast as the base where it moves, still where it is still
    return torch.cat([turn, base, *swirls], 0)


class EvolvingField:
    """The velocity (1, 2, H, W) of each step: ``base`` + sum of codes(t) times ``basis`` (R, 2, H, W)."""

    def __init__(self, base: torch.Tensor, basis: torch.Tensor, controls: torch.Tensor, spacing: float,
                 periodic: bool):
        self.base, self.basis, self.controls = base, basis, controls
        self.spacing, self.periodic = spacing, periodic
        self._cached: tuple[int, torch.Tensor] | None = None

    @classmethod
    def random(cls, base: torch.Tensor, frames: int, periodic: bool, generator: torch.Generator) -> "EvolvingField":
        count, spacing = knots(frames, CODE_SPACING, periodic)
        controls = torch.randn(count, len(CODE_SCALE), generator=generator) * torch.tensor(CODE_SCALE)
        return cls(base, perturbations(base, generator), controls.to(base), spacing, periodic)

    def codes(self, step: int) -> torch.Tensor:
        """(R,) codes for the step from ``step`` to ``step + 1`` (taken at its middle)."""
        return bspline(self.controls, step + 0.5, self.spacing, self.periodic)

    def extended(self, inside: torch.Tensor, steps: int) -> "EvolvingField":
        """The same field grown ``steps`` pixels out of ``inside`` (extend is linear, so per part)."""
        return EvolvingField(extend(self.base, inside, steps), torch.cat([extend(f[None], inside, steps) for f in self.basis]),
                             self.controls, self.spacing, self.periodic)

    def __call__(self, step: int) -> torch.Tensor:
        if self._cached is None or self._cached[0] != step:  # a frame asks for its step's field twice
            flat = torch.addmm(self.base.reshape(1, -1), self.codes(step)[None], self.basis.reshape(len(self.basis), -1))
            self._cached = step, flat.view_as(self.base)
        return self._cached[1]


def anchors(frames: int, periodic: bool, generator: torch.Generator) -> list[int]:
    """Times at which the clip passes through the still: 0, then windows of jittered length.

    They run past ``frames`` (the clip is cut there), or, periodic, end at ``frames`` exactly.
    """
    count = max(1, round(frames / WINDOW)) if periodic else frames // WINDOW + 2
    lengths = WINDOW * (1 + WINDOW_JITTER * (2 * torch.rand(count, generator=generator) - 1))
    if periodic:
        lengths = lengths * frames / lengths.sum()
    times = torch.cat([torch.zeros(1), lengths.cumsum(0)]).round().long().tolist()
    return times


def light_curve(frames: int, periodic: bool, generator: torch.Generator):
    """A smooth weight in [0, 1] for each frame that never repeats (or repeats with the clip)."""
    count, spacing = knots(frames, LIGHT_SPACING, periodic)
    controls = torch.rand(count, 1, generator=generator)

    def weight(t: int) -> float:
        return float(bspline(controls, t, spacing, periodic)[0])

    return weight


def endless_motion(velocity: torch.Tensor, frames: int, seamless: bool, seed: int = 0):
    """(field, anchors, light curve) of an Endless clip of ``frames`` from the base ``velocity`` (1, 2, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    times = anchors(frames, seamless, generator)
    field = EvolvingField.random(velocity, times[-1], seamless, generator)  # the last window may end past the clip
    return field, times, light_curve(frames, seamless, generator)
