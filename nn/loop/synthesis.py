"""Render a seamless loop from a still and its static velocity field, by symmetric splatting.

Holynski et al. 2021: every pixel of the motion region is a particle that follows the static
field (Euler steps, one per frame). Frame t splats the still's pixels to where their particles
are after t steps; on its own that leaves holes upstream and never returns to the start. So
frame t also splats the still along the field integrated *backward* for N - t steps (where the
particles must start to arrive home at frame N) and blends the two with weights (N - t) / N and
t / N: at times 0 and N both are the still, so the last frame flows into the first, and each
direction fills the other's holes. Frames are rendered at times 1/2, 3/2, ..., N - 1/2. Pixels
outside the mask are the still's, exactly.

The same blend runs between any two *anchors*, times at which the clip passes through the still:
an Endless clip (``endless``) is a chain of such stretches under a field that evolves over time,
so no particle ever travels further from the still than one stretch.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from ..motion.particles import Field, field_at, integrate, integrate_reversed
from ..motion.splat import MIN_COVERAGE, box_around, fill_gaps, sample, splat
from .hints import extend

DEPTH_FROM_SPEED = 4.0  # where splats overlap, the faster pixel wins by up to e^4 (it is likely in front)
OUTSIDE_MARGIN = 8  # pixels the field reaches past the mask, so particles leave instead of piling up
DETAIL_GAIN = (0.5, 4.0)  # the range the finest detail may be scaled by to give back the still's energy
# How far restore_detail looks: detail of detail (2 px) under a 5x5 mean (2 px more).
RESTORE_REACH = 4


def source_pixels(mask: torch.Tensor) -> torch.Tensor:
    """(P, 2) x, y of the pixels inside ``mask`` (1, 1, H, W): the particles."""
    ys, xs = torch.nonzero(mask[0, 0] > 0, as_tuple=True)
    return torch.stack([xs, ys], 1).float()


def detail(image: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) the finest detail: each pixel minus the mean of its four neighbours (edges replicated).

    This is the band that a sub-pixel splat and a blend of two textures lose most, and that the
    Laplacian, our sharpness measure, weighs most.
    """
    channels = image.shape[1]
    kernel = image.new_tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]]).expand(channels, 1, 3, 3)
    return image - F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), kernel, groups=channels)


def local_mean(image: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) mean over channels and a 5x5 neighbourhood."""
    return F.avg_pool2d(image.mean(1, keepdim=True), 5, 1, 2, count_include_pad=False)


def restore_detail(frame: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """``frame`` (1, C, H, W) with its finest detail scaled until its local energy is ``energy`` (1, 1, H, W).

    Scaling the detail d by g does not scale the detail measured afterwards by g: that is
    d + (g - 1) detail(d). So g - 1 is solved from the quadratic |d + u detail(d)|^2 = energy
    per 5x5 neighbourhood (the nearer root; the closest it can get where none is real).
    """
    fine = detail(frame)
    finer = detail(fine)
    a, b, c = local_mean(finer * finer), local_mean(fine * finer), local_mean(fine * fine)
    u = (-b + (b * b + a * (energy - c)).clamp(min=0).sqrt()) / a.clamp(min=1e-12)
    low, high = DETAIL_GAIN
    return frame + u.clamp(low - 1, high - 1) * fine


class Loop:
    """The frames of a loop, rendered in order by iterating: ``for frame in Loop(...)``.

    ``still`` (1, C, H, W), any C: alpha travels with the colour. ``mask`` (1, 1, H, W) is 1 where
    pixels may move; ``velocity`` in pixels per frame: a (1, 2, H, W) tensor, or a field that
    evolves over time (``endless.EvolvingField``). ``anchors`` are the times at which the clip
    passes through the still (default 0 and ``frames``, a seamless loop); they may run past
    ``frames``, which then cuts the clip. Memory: a few sets of particle positions, 8 bytes per
    masked pixel each (``integrate_reversed`` keeps about 2 * sqrt(stretch) sets).
    """

    def __init__(self, still: torch.Tensor, mask: torch.Tensor, velocity: Field, frames: int,
                 anchors: Sequence[int] | None = None):
        self.still, self.frames = still, frames
        self.anchors = list(anchors) if anchors is not None else [0, frames]
        self.inside = mask > 0
        # The detail restore runs only on the region's box: outside it every pixel is the still's.
        self.restore_box = box_around(self.inside, RESTORE_REACH) or (...,)
        if isinstance(velocity, torch.Tensor):
            self.velocity = extend(velocity, self.inside, steps=OUTSIDE_MARGIN)
        else:
            self.velocity = velocity.extended(self.inside, OUTSIDE_MARGIN)
        self.start = source_pixels(mask)
        # Each particle carries its colour and the energy of the still's finest detail around it,
        # so every frame knows how much detail it should have (bilinear splats and blends lose some).
        energy = detail(still).pow(2).mean(1, keepdim=True)  # (1, 1, H, W)
        self.values = sample(torch.cat([still, energy], 1), self.start)  # exact: pixel centres
        speed = sample(field_at(self.velocity, 0), self.start).norm(dim=1)
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
        box, moving = self.restore_box, self.inside & (weights > 0)
        inner = torch.where(moving[box], splatted[box][:, :channels], self.still[box])
        # Give the detail back the energy its particles brought (Heitz & Neyret 2018 restore
        # variance after blending textures alike): bilinear splats and the two-way blend lose some.
        restored = restore_detail(inner, local_mean(splatted[box][:, channels:]))
        frame = self.still.clone()
        frame[box] = torch.where(moving[box], restored, self.still[box])
        return frame

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (frame for _, frame in self.rendered(range(self.frames)))

    def rendered(self, wanted: Sequence[int]) -> Iterator[tuple[int, torch.Tensor]]:
        """(t, frame t) for the times in ``wanted``, in order. Particles are followed from the start
        either way (a frame depends on every step before it), but only wanted frames are splatted:
        a farm chunk renders its own share (``farm/chunks.py``)."""
        wanted = set(wanted)
        # Frames sit half a step off the integer times (t + 1/2): then no frame is the still
        # itself, every frame is resampled alike, and the jump from the last frame to the first
        # is one ordinary step (with frame 0 the exact still, that jump was 5-9% larger).
        for begin, end in zip(self.anchors[:-1], self.anchors[1:]):
            if begin >= self.frames or not wanted or begin > max(wanted):
                return
            length = end - begin
            # Frame t blends the particles t - begin steps on from the still at ``begin`` with those
            # end - t - 1 steps back from the still at ``end``; both move with the field of time t.
            forward = integrate(self.velocity, self.start, length - 1, time=begin)
            backward = integrate_reversed(self.velocity, self.start, length - 1, sign=-1.0, time=end)
            for t, (ahead, home) in enumerate(zip(forward, backward), begin):
                if t >= self.frames:
                    return
                if t not in wanted:
                    continue
                field = field_at(self.velocity, t)
                ahead = ahead + 0.5 * sample(field, ahead)
                behind = home - 0.5 * sample(field, home)
                time = t + 0.5
                yield t, self.render([(ahead, (end - time) / length), (behind, (time - begin) / length)])
