"""Render a seamless loop from a still and its static velocity field, by symmetric splatting.

Holynski et al. 2021: every pixel of the motion region is a particle that follows the static
field (Euler steps, one per frame). Frame t splats the still's pixels to where their particles
are after t steps; on its own that leaves holes upstream and never returns to the start. So
frame t also splats the still along the field integrated *backward* for N - t steps (where the
particles must start to arrive home at frame N) and blends the two with weights (N - t) / N and
t / N: at times 0 and N both are the still, so the last frame flows into the first, and each
direction fills the other's holes. Frames are rendered at times 1/2, 3/2, ..., N - 1/2. Pixels
outside the mask are the still's, exactly.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..motion.particles import integrate, integrate_reversed
from ..motion.splat import MIN_COVERAGE, blur, fill_gaps, sample, splat
from .hints import extend

DEPTH_FROM_SPEED = 4.0  # where splats overlap, the faster pixel wins by up to e^4 (it is likely in front)
OUTSIDE_MARGIN = 8  # pixels the field reaches past the mask, so particles leave instead of piling up
MAX_DETAIL_GAIN = 2.0  # most the fine detail lost to resampling and blending is boosted back


def source_pixels(mask: torch.Tensor) -> torch.Tensor:
    """(P, 2) x, y of the pixels inside ``mask`` (1, 1, H, W): the particles."""
    ys, xs = torch.nonzero(mask[0, 0] > 0, as_tuple=True)
    return torch.stack([xs, ys], 1).float()


def detail(image: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) detail finer than about 1.2 pixels: the image minus its binomial blur."""
    return image - blur(image, [1, 6, 15, 20, 15, 6, 1])


def local_mean(image: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(image, 5, 1, 2, count_include_pad=False)


class Loop:
    """The N frames of a loop, rendered in order by iterating: ``for frame in Loop(...)``.

    ``still`` (1, C, H, W), any C: alpha travels with the colour. ``mask`` (1, 1, H, W) is 1 where
    pixels may move; ``velocity`` (1, 2, H, W) in pixels per frame. Memory: a few sets of particle
    positions, 8 bytes per masked pixel each (``integrate_reversed`` keeps about 2 * sqrt(N) sets).
    """

    def __init__(self, still: torch.Tensor, mask: torch.Tensor, velocity: torch.Tensor, frames: int):
        self.still, self.frames = still, frames
        self.inside = mask > 0
        self.velocity = extend(velocity, self.inside, steps=OUTSIDE_MARGIN)
        self.start = source_pixels(mask)
        # Each particle carries its colour and the energy of the still's fine detail around it, so
        # every frame knows how much detail it should have (bilinear splats and blends lose some).
        energy = detail(still).pow(2).mean(1, keepdim=True)  # (1, 1, H, W)
        self.values = sample(torch.cat([still, energy], 1), self.start)  # exact: pixel centres
        speed = sample(velocity, self.start).norm(dim=1)
        self.depth = torch.exp(DEPTH_FROM_SPEED * speed / speed.max().clamp(min=1e-6))  # (P,)

    def render(self, layers) -> torch.Tensor:
        """Frame (1, C, H, W) from [(positions, time weight), ...], holes and outside from the still."""
        _, channels, height, width = self.still.shape
        # Each direction is splatted and normalised on its own, then the two are blended by time
        # alone. Normalising them jointly let each pixel's mix follow the sub-pixel phase of two
        # unrelated particle lattices, which drew moire wherever the field is not uniform.
        blended, weights = 0.0, 0.0
        for positions, time_weight in layers:
            total, coverage = fill_gaps(*splat(positions, self.depth, self.values, height, width), self.inside)
            covered = time_weight * (coverage > MIN_COVERAGE).float()  # (1, 1, H, W)
            blended = blended + covered * total / coverage.clamp(min=MIN_COVERAGE)
            weights = weights + covered
        splatted = blended / weights.clamp(min=MIN_COVERAGE)  # (1, C + 1, H, W)
        moving = self.inside & (weights > 0)
        frame = torch.where(moving, splatted[:, :channels], self.still)
        # Give the detail back the energy its particles brought (Heitz & Neyret 2018 restore
        # variance after blending textures alike): bilinear splats and the two-way blend lose some.
        fine = detail(frame)
        present = local_mean(fine.pow(2).mean(1, keepdim=True))
        gain = (local_mean(splatted[:, channels:]) / present.clamp(min=1e-10)).sqrt().clamp(1.0, MAX_DETAIL_GAIN)
        restored = frame + (gain - 1) * fine
        return torch.where(moving, restored, self.still)

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[torch.Tensor]:
        # Frames sit half a step off the integer times (t + 1/2): then no frame is the still
        # itself, every frame is resampled alike, and the jump from the last frame to the first
        # is one ordinary step (with frame 0 the exact still, that jump was 5-9% larger).
        n = self.frames
        # Frame t blends the particles t steps forward with those n - t - 1 steps backward.
        backward = integrate_reversed(self.velocity, self.start, n - 1, sign=-1.0)
        for t, (forward, home) in enumerate(zip(integrate(self.velocity, self.start, n - 1), backward)):
            ahead = forward + 0.5 * sample(self.velocity, forward)
            behind = home - 0.5 * sample(self.velocity, home)
            time = t + 0.5
            yield self.render([(ahead, (n - time) / n), (behind, time / n)])
