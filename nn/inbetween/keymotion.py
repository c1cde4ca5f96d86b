"""Key Motion (model "keymotion"): inbetweens for keys far apart, from one motion per gap.

The motion between two keys is estimated once per gap, both ways: F01 on key a's pixels and
F10 on key b's, from RIFE v4.25's flow at the middle moment (``nn.motion.flow.key_flows``) at
several pyramid scales. Coarse scales find large displacements that the fine one misses, fine
ones keep detail; each pixel takes the scale whose two flows agree best (forward-backward
consistency over a small window). Every inbetween then splats both keys forward along their
pixels' paths (``nn.motion.trajectory``: straight and even between two keys, C1 through several)
by softmax splatting (Niklaus & Liu 2020): where pixels land on one another, the one that matches
the other key wins, so what that key occludes gives way. The two splats are normalised apart and
blended by time and by how well each pixel's flows agree; holes are closed from neighbours, and
what neither key shows comes from both keys warped backwards. All channels, alpha included, ride
along (alpha premultiplied, so hidden colour never bleeds). So inbetweens are evenly timed, agree
with one another, and cost one motion estimate per gap instead of one network run per frame.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..motion.flow import key_flows, motion_view
from ..motion.splat import MIN_COVERAGE, fill_gaps, splat
from ..motion.trajectory import hermite, key_velocity
from ..motion.warp import warp

FLOW_SCALES = (1.0, 0.5, 0.25)  # RIFE pyramid scales tried per gap (Flow Scale set by the user: that one only)
MID_ITERATIONS = 3  # fixed-point steps moving the middle moment's flow to each key's pixels
CHOICE_WINDOW = 9  # pixels over which a scale's consistency is judged
SPLAT_SHARPNESS = 10.0  # softmax splatting weight exp(-10 * brightness-constancy error), error in [0, 1]
MAX_SPLAT_ERROR = 0.5  # so a weight never falls below e^-5 and a badly matched pixel still fills a hole
TRUST_PIXELS = 2.0  # a pixel whose two flows disagree by this many pixels counts e^-1 as much in the blend
MIN_TRUST = 1e-2
GAP_CACHE = 4  # gap motions kept at once (each 8 channels of floats per pixel)
GUIDE_REACH = 0.15  # guide points move the flow within about this fraction of the frame's diagonal


@dataclass
class GapMotion:
    """The motion of one gap, shared by all its inbetweens."""
    forward: torch.Tensor  # (1, 2, H, W) key a -> key b, at key a's pixels
    backward: torch.Tensor  # (1, 2, H, W) key b -> key a, at key b's pixels
    weight_a: torch.Tensor  # (1, 1, H, W) softmax splatting weight of key a's pixels
    weight_b: torch.Tensor
    trust_a: torch.Tensor  # (1, 1, H, W) in (0, 1]: how well key a's pixel's two flows agree
    trust_b: torch.Tensor


def consistency_error(flow: torch.Tensor, reverse: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) pixels by which going along ``flow`` and back along ``reverse`` misses home."""
    return (flow + warp(reverse, flow)).norm(dim=1, keepdim=True)


def pick_per_pixel(candidates: list[torch.Tensor], errors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel's candidate flow with the least error over a ``CHOICE_WINDOW`` window, and that error."""
    smoothed = torch.cat([F.avg_pool2d(e, CHOICE_WINDOW, 1, CHOICE_WINDOW // 2, count_include_pad=False)
                          for e in errors], 1)  # (1, K, H, W)
    best = smoothed.argmin(1, keepdim=True)  # (1, 1, H, W)
    flows = torch.stack(candidates, 1)  # (1, K, 2, H, W)
    chosen = flows.gather(1, best[:, :, None].expand(-1, -1, 2, -1, -1))[:, 0]
    return chosen, torch.cat(errors, 1).gather(1, best)


def guided(flow: torch.Tensor, points: torch.Tensor, displacements: torch.Tensor) -> torch.Tensor:
    """``flow`` (1, 2, H, W) bent to move each guide point (G, 2) by exactly its displacement (G, 2).

    The flow's miss at each point is spread by inverse-distance weights (exact at the points) and
    faded out with distance, so far from the guides the estimated flow stays.
    """
    height, width = flow.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=flow.dtype), torch.arange(width, dtype=flow.dtype),
                            indexing="ij")
    pixels = torch.stack([xs, ys], -1).reshape(-1, 1, 2)  # (HW, 1, 2)
    at_points = flow[0, :, points[:, 1].round().long().clamp(0, height - 1),
                     points[:, 0].round().long().clamp(0, width - 1)].T  # (G, 2)
    miss = displacements - at_points
    distance2 = (pixels - points[None]).pow(2).sum(-1)  # (HW, G)
    shares = 1.0 / (distance2 + 1e-6)
    shares = shares / shares.sum(1, keepdim=True)
    reach2 = (GUIDE_REACH * (height ** 2 + width ** 2) ** 0.5) ** 2
    fade = torch.exp(-distance2.min(1).values / (2 * reach2))  # (HW,)
    correction = (shares @ miss) * fade[:, None]  # (HW, 2)
    return flow + correction.T.reshape(1, 2, height, width)


class KeyMotion:
    """The "keymotion" model: ``inbetween(keys, times, is_float, guides)`` for a whole sequence of keys,
    or ``model(key_a, key_b, t, is_float)`` for one frame of a lone gap, like the other models."""

    def __init__(self, interpolator, flow_scale: float = 0.0):
        self.interpolator = interpolator
        self.flow_scales = (flow_scale,) if flow_scale > 0 else FLOW_SCALES

    def motion(self, key_a: torch.Tensor, key_b: torch.Tensor, is_float: bool, guides=None) -> GapMotion:
        """Both flows of a gap, chosen per pixel among the pyramid scales; ``guides`` [[x0, y0, x1, y1], ...]."""
        view_a, view_b = motion_view(key_a, is_float).float(), motion_view(key_b, is_float).float()
        forwards, backwards = [], []
        for scale in self.flow_scales:
            mid_flow, _ = self.interpolator.estimate(view_a, view_b, 0.5, flow_scale=scale)
            forward, backward = key_flows(mid_flow.float(), MID_ITERATIONS)
            forwards.append(forward)
            backwards.append(backward)
        candidates = list(zip(forwards, backwards))
        forward, _ = pick_per_pixel(forwards, [consistency_error(f, b) for f, b in candidates])
        backward, _ = pick_per_pixel(backwards, [consistency_error(b, f) for f, b in candidates])
        if guides:
            points = torch.tensor(guides, dtype=forward.dtype).reshape(-1, 4)
            forward = guided(forward, points[:, :2], points[:, 2:] - points[:, :2])
            backward = guided(backward, points[:, 2:], points[:, :2] - points[:, 2:])

        def splat_weight(view, other, flow):  # brightness constancy: a pixel hidden in the other key matches badly
            error = (view - warp(other, flow)).abs().mean(1, keepdim=True).clamp(max=MAX_SPLAT_ERROR)
            return torch.exp(-SPLAT_SHARPNESS * error)

        def trust(flow, reverse):
            return torch.exp(-consistency_error(flow, reverse) / TRUST_PIXELS).clamp(min=MIN_TRUST)

        return GapMotion(forward, backward, splat_weight(view_a, view_b, forward), splat_weight(view_b, view_a, backward),
                         trust(forward, backward), trust(backward, forward))

    def frame(self, key_a: torch.Tensor, key_b: torch.Tensor, motion: GapMotion, t: float,
              tangents_a: tuple[torch.Tensor, torch.Tensor], tangents_b: tuple[torch.Tensor, torch.Tensor]
              ) -> torch.Tensor:
        """The inbetween at time t of a gap. ``tangents_a``: the start and end tangents (pixels per gap) of
        the paths of key a's pixels; ``tangents_b`` those of key b's, in the same direction of time."""
        height, width = key_a.shape[-2:]
        alpha = key_a.shape[1] == 4
        layers = []
        keys = [premultiplied(k.float()) if alpha else k.float() for k in (key_a, key_b)]
        # Key b's pixels run their path backwards, from key b (time 0 of the reversed path) to key a.
        shifts = (hermite(motion.forward, *tangents_a, t), hermite(motion.backward, -tangents_b[1], -tangents_b[0], 1 - t))
        for key, shift, weight, trust, time_weight in ((keys[0], shifts[0], motion.weight_a, motion.trust_a, 1.0 - t),
                                                      (keys[1], shifts[1], motion.weight_b, motion.trust_b, t)):
            values = torch.cat([key, trust], 1)
            positions = (pixel_grid(height, width) + shift[0].reshape(2, -1).T)  # (HW, 2)
            total, coverage = splat(positions, weight.flatten(), values[0].reshape(values.shape[1], -1).T, height, width)
            total, coverage = fill_gaps(total, coverage, torch.ones_like(coverage, dtype=torch.bool))
            normalised = total / coverage.clamp(min=MIN_COVERAGE)
            blend = time_weight * normalised[:, -1:] * (coverage > MIN_COVERAGE)  # (1, 1, H, W)
            layers.append((normalised[:, :-1], blend))
        (image_a, blend_a), (image_b, blend_b) = layers
        blended = (image_a * blend_a + image_b * blend_b) / (blend_a + blend_b).clamp(min=1e-8)
        # What neither key's splats reach (wide disocclusions, the frame's edge): both keys warped back.
        fallback = (1.0 - t) * warp(keys[0], -t * motion.forward) + t * warp(keys[1], -(1.0 - t) * motion.backward)
        image = torch.where(blend_a + blend_b > 1e-6, blended, fallback)
        return (straight(image) if alpha else image).to(key_a.dtype)

    def inbetween(self, keys: list[torch.Tensor], times: list[list[float]], is_float: bool,
                  guides: dict | None = None) -> list[list[torch.Tensor]]:
        """Inbetweens of every gap: ``times[g]`` in (0, 1) between ``keys[g]`` and ``keys[g + 1]``;
        ``guides`` {gap index: [[x0, y0, x1, y1], ...]} corresponding points in pixels."""
        gaps = {(g, g + 1): len(times[g]) + 1.0 for g in range(len(keys) - 1)}
        sequence = KeySequence(self, keys.__getitem__, is_float, gaps, {(g, g + 1): v for g, v in (guides or {}).items()})
        return [[sequence.frame(g, g + 1, float(t)) for t in gap_times] for g, gap_times in enumerate(times)]

    def __call__(self, key_a: torch.Tensor, key_b: torch.Tensor, t: float, is_float: bool) -> torch.Tensor:
        return self.inbetween([key_a, key_b], [[t]], is_float)[0][0]


class KeySequence:
    """Motion through a sequence of keys for one job: each gap's motion is estimated once, when first
    needed, and the last ``GAP_CACHE`` are kept (a gap needs its neighbours' for the keys' velocities).

    ``gaps`` maps each gap (a, b) that moves to its length in frames; a gap missing from it (a cut,
    a repeated key) leaves its keys without a neighbour on that side.
    """

    def __init__(self, model: KeyMotion, key: Callable[[int], torch.Tensor], is_float: bool,
                 gaps: dict[tuple[int, int], float], guides: dict[tuple[int, int], list] | None = None):
        self.model, self.key, self.is_float, self.gaps, self.guides = model, key, is_float, gaps, guides or {}
        self.previous = {b: a for a, b in gaps}
        self.next = {a: b for a, b in gaps}
        self.motion = lru_cache(maxsize=GAP_CACHE)(self._motion)
        self.velocity = lru_cache(maxsize=2)(self._velocity)

    def _motion(self, a: int, b: int) -> GapMotion:
        return self.model.motion(self.key(a), self.key(b), self.is_float, self.guides.get((a, b)))

    def _velocity(self, index: int) -> torch.Tensor | None:
        """Pixels per frame of key ``index``'s pixels, or None at the end of a run of keys."""
        before, after = self.previous.get(index), self.next.get(index)
        if before is None or after is None:
            return None
        return key_velocity(self.motion(index, after).forward, self.motion(before, index).backward,
                            self.gaps[index, after], self.gaps[before, index])

    def frame(self, a: int, b: int, t: float) -> torch.Tensor:
        motion, frames = self.motion(a, b), self.gaps[a, b]
        velocity_a, velocity_b = self.velocity(a), self.velocity(b)

        def tangent(velocity, flow, at):  # pixels per gap; a key without neighbour: the pixel's own chord
            return flow if velocity is None else frames * (velocity if at is None else warp(velocity, at))

        # Key a's pixels start at key a and end on key b at x + F01; key b's start at y + F10 on key a.
        tangents_a = (tangent(velocity_a, motion.forward, None), tangent(velocity_b, motion.forward, motion.forward))
        tangents_b = (tangent(velocity_a, -motion.backward, motion.backward), tangent(velocity_b, -motion.backward, None))
        return self.model.frame(self.key(a), self.key(b), motion, t, tangents_a, tangents_b)


@lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> torch.Tensor:
    """(H * W, 2) x, y of every pixel centre, row by row."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], 1)


def premultiplied(image: torch.Tensor) -> torch.Tensor:
    return torch.cat([image[:, :3] * image[:, 3:4], image[:, 3:]], 1)


def straight(image: torch.Tensor) -> torch.Tensor:
    alpha = image[:, 3:4]
    return torch.cat([torch.where(alpha > 1e-6, image[:, :3] / alpha.clamp(min=1e-6), 0.0).clamp(0.0, None), image[:, 3:]], 1)
