"""Key Motion (model "keymotion"): inbetweens for keys far apart, from one motion per gap.

The motion between two keys is estimated once per gap, both ways: F01 on key a's pixels and
F10 on key b's, from RIFE v4.25's flow at the middle moment (``nn.motion.flow.key_flows``).
Candidates: the network on the whole frame; and for each object that jumps beyond the network's
reach (a motion mode of a global search on a coarse copy, ``nn.motion.search``: up to half the
frame, found from both keys), the network on its box with key b moved by the jump, kept where it
explains the box clearly better. Each pixel takes the candidate whose two flows
agree best and whose warp matches best, over a small window. Every inbetween then splats both keys forward along their
pixels' paths (``nn.motion.trajectory``: straight and even between two keys, C1 through several)
by softmax splatting (Niklaus & Liu 2020): where pixels land on one another, the one that matches
the other key wins, so what that key occludes gives way. The two splats are normalised apart and
blended by time and by how well each pixel's flows agree; holes are closed from neighbours, and
what neither key shows comes from both keys warped backwards. Where the two splats disagree in colour
(appearance that no motion explains: a turning limb, light, a wrong match) the motion is not to be
trusted, and the inbetween leans towards RIFE v4.25 run at that t, which sees both keys
at that moment. All channels, alpha included, ride along (alpha premultiplied, so hidden colour never
bleeds). So inbetweens are evenly timed and agree with one another wherever the motion explains the keys.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..frames import premultiplied, straight
from ..motion.search import Mode, mutual_modes
from ..motion.flow import auto_flow_scale, key_flows, length, motion_view
from ..motion.splat import MIN_COVERAGE, fill_gaps, splat
from ..motion.trajectory import hermite, key_velocity
from ..motion.warp import warp
from .task import FlowModel

MID_ITERATIONS = 3  # fixed-point steps moving the middle moment's flow to each key's pixels
CHOICE_WINDOW = 9  # pixels over which a candidate flow's error is judged
MISMATCH_PIXELS = 50.0  # a candidate's error: forward-backward miss in pixels + this * brightness mismatch in [0, 1]
RANK_PENALTY = 0.25  # a jump must be this much better than the network on its pixels to be chosen
MODE_GAIN = 0.25  # a jump found by the global search must leave at most this share of the network's error on its object
SPLAT_SHARPNESS = 10.0  # softmax splatting weight exp(-10 * brightness-constancy error), error in [0, 1]
DEPTH_FROM_MOTION = 4.0  # a pixel moving unlike the frame's dominant motion outweighs one that follows it by up to e^4
DEPTH_PIXELS = 4.0  # ... relative to the fastest (99th percentile), or to this many pixels when all is slow
MAX_SPLAT_ERROR = 0.5  # so a weight never falls below e^-5 and a badly matched pixel still fills a hole
TRUST_PIXELS = 2.0  # a pixel whose two flows disagree by this many pixels counts e^-1 as much in the blend
MIN_TRUST = 1e-2
GAP_CACHE = 4  # gap motions kept at once (each 8 channels of floats per pixel)
DISAGREEMENT = 0.1  # splats this far apart in colour (mean of the channels in [0, 1]) keep e^-1 of the motion's share
ALL_AGREE = 0.99  # when every pixel's share of the motion is above this, the network at t is not run
AT_T_ESTIMATE_PIXELS = 640 * 360  # the network at t estimates its motion on at most this many pixels: at 720p that
# costs a third as much for the same PSNR (docs/BENCHMARKS.md); its frame is still warped at full size
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
    guided: bool = False  # the user marked where things go: the motion holds even where colours differ


def consistency_error(flow: torch.Tensor, reverse: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) pixels by which going along ``flow`` and back along ``reverse`` misses home."""
    return length(flow + warp(reverse, flow))


def pick_per_pixel(candidates: list[torch.Tensor], errors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel's candidate flow with the least error over a ``CHOICE_WINDOW`` window, and that error."""
    smoothed = torch.cat([F.avg_pool2d(e, CHOICE_WINDOW, 1, CHOICE_WINDOW // 2, count_include_pad=False)
                          for e in errors], 1)  # (1, K, H, W)
    best = smoothed.argmin(1, keepdim=True)  # (1, 1, H, W)
    flows = torch.stack(candidates, 1)  # (1, K, 2, H, W)
    chosen = flows.gather(1, best[:, :, None].expand(-1, -1, 2, -1, -1))[:, 0]
    return chosen, torch.cat(errors, 1).gather(1, best)


def guided(flow: torch.Tensor, points: torch.Tensor, displacements: torch.Tensor) -> torch.Tensor:
    """``flow`` (1, 2, H, W) taken over near the guide points (G, 2) by their displacements (G, 2).

    The guides' displacements are spread by inverse-distance weights (exact at the points) and
    blended in with a Gaussian falloff of ``GUIDE_REACH``, so a point moves by exactly what its
    guide says, what lies between guides moves as they do, and far from them the estimated flow
    stays. The user's word wins over brightness: guides hold where the picture changes too much to match.
    """
    height, width = flow.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=flow.dtype), torch.arange(width, dtype=flow.dtype),
                            indexing="ij")
    pixels = torch.stack([xs, ys], -1).reshape(-1, 1, 2)  # (HW, 1, 2)
    distance2 = (pixels - points[None]).pow(2).sum(-1)  # (HW, G)
    shares = 1.0 / (distance2 + 1e-6)
    spread = (shares / shares.sum(1, keepdim=True)) @ displacements  # (HW, 2)
    reach2 = (GUIDE_REACH * (height ** 2 + width ** 2) ** 0.5) ** 2
    fade = torch.exp(-distance2.min(1).values / (2 * reach2))[:, None]  # (HW, 1), 1 at the points
    return flow * (1 - fade.T.reshape(1, 1, height, width)) + (spread * fade).T.reshape(1, 2, height, width)


class KeyMotion:
    """The "keymotion" model: ``inbetween(keys, times, is_float, guides)`` for a whole sequence of keys,
    or ``model(key_a, key_b, t, is_float)`` for one frame of a lone gap, like the other models."""

    def __init__(self, interpolator, flow_scale: float = 0.0, size: tuple[int, int] | None = None):
        """``flow_scale``: RIFE's pyramid scale; 0 is Auto (1, and 0.5 at 2K and above). Coarser scales as
        further candidates lost 0.1-0.6 dB on the keyframe benchmark's shots (docs/BENCHMARKS.md)."""
        self.interpolator = interpolator
        self.flow_scale = auto_flow_scale({"flow_scale": flow_scale, "size": size or (0, 0)})
        # Where the motion does not explain the keys. On its copy of at most AT_T_ESTIMATE_PIXELS the automatic
        # pyramid scale is 1 whatever the frame's size; a scale the user chose is kept.
        self.per_t = FlowModel(interpolator.estimating_at_most(AT_T_ESTIMATE_PIXELS), flow_scale or 1.0)

    def motion(self, key_a: torch.Tensor, key_b: torch.Tensor, is_float: bool, guides=None) -> GapMotion:
        """Both flows of a gap, chosen per pixel among the candidates; ``guides`` [[x0, y0, x1, y1], ...]."""
        view_a, view_b = motion_view(key_a, is_float).float(), motion_view(key_b, is_float).float()
        network = key_flows(self.interpolator.estimate(view_a, view_b, 0.5, flow_scale=self.flow_scale)[0].float(),
                            MID_ITERATIONS)

        def error(flow, reverse, view, other):  # pixels
            mismatch = (view - warp(other, flow)).abs().mean(1, keepdim=True)
            return consistency_error(flow, reverse) + MISMATCH_PIXELS * mismatch

        # Each large motion of the global search, refined by the network, that explains its object
        # clearly better than the network alone: an object that jumped beyond the network's reach.
        network_error = error(*network, view_a, view_b)
        jumps = []
        for mode in mutual_modes(view_a, view_b):
            flows = self.moved(view_a, view_b, network, mode)
            if error(*flows, view_a, view_b)[mode.members].mean() <= MODE_GAIN * network_error[mode.members].mean():
                jumps.append(flows)
        # Candidates with their ranks: the network (0), the jumps (1, which must beat it by RANK_PENALTY).
        candidates = [(network, 0), *((flows, 1) for flows in jumps)]
        forwards, backwards = [f for (f, _), _ in candidates], [b for (_, b), _ in candidates]
        ea = [error(f, b, view_a, view_b) * (1 + RANK_PENALTY * rank) for (f, b), rank in candidates]
        eb = [error(b, f, view_b, view_a) * (1 + RANK_PENALTY * rank) for (f, b), rank in candidates]
        forward, _ = pick_per_pixel(forwards, ea)
        backward, _ = pick_per_pixel(backwards, eb)
        if guides:
            points = torch.tensor(guides, dtype=forward.dtype).reshape(-1, 4)
            forward = guided(forward, points[:, :2], points[:, 2:] - points[:, :2])
            backward = guided(backward, points[:, 2:], points[:, :2] - points[:, 2:])

        def splat_weight(view, other, flow):
            # Brightness constancy: a pixel hidden in the other key matches badly. Depth order: what moves
            # unlike most of the frame (the camera) is likely in front, and covers what it lands on.
            error = (view - warp(other, flow)).abs().mean(1, keepdim=True).clamp(max=MAX_SPLAT_ERROR)
            dominant = flow.flatten(2).median(2).values[..., None, None]  # (1, 2, 1, 1)
            apart = length(flow - dominant)
            fastest = torch.quantile(apart.flatten()[::max(apart.numel() // 65536, 1)], 0.99).clamp(min=DEPTH_PIXELS)
            return torch.exp(-SPLAT_SHARPNESS * error + DEPTH_FROM_MOTION * (apart / fastest).clamp(max=1.0))

        def trust(flow, reverse):
            return torch.exp(-consistency_error(flow, reverse) / TRUST_PIXELS).clamp(min=MIN_TRUST)

        return GapMotion(forward, backward, splat_weight(view_a, view_b, forward), splat_weight(view_b, view_a, backward),
                         trust(forward, backward), trust(backward, forward), bool(guides))

    def moved(self, view_a: torch.Tensor, view_b: torch.Tensor, network: tuple[torch.Tensor, torch.Tensor],
              mode: Mode) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``network`` flows (F01, F10) with ``mode``'s object taken over by its shift plus the network's
        estimate between key a's box and key b's box moved by the shift, which leaves only the small
        motion (turning, scaling, parts) that the network reaches. One run on a crop gives both ways.
        Outside the object the network's flow stays, so the jump cannot win on a background it does not fit."""
        (dx, dy), (top, bottom, left, right) = mode.shift, mode.box
        height, width = view_a.shape[-2:]
        rows = (torch.arange(top, bottom) + dy).clamp(0, height - 1)
        columns = (torch.arange(left, right) + dx).clamp(0, width - 1)
        moved_b = view_b[..., rows, :][..., columns]  # (1, 3, h, w) where the box went, the frame's edge repeated
        mid_flow, _ = self.interpolator.estimate(view_a[..., top:bottom, left:right], moved_b, 0.5,
                                                 flow_scale=self.flow_scale)
        forward_box, backward_box = key_flows(mid_flow.float(), MID_ITERATIONS)
        shift = view_a.new_tensor([dx, dy]).view(1, 2, 1, 1)
        forward, backward = network[0].clone(), network[1].clone()
        forward[..., top:bottom, left:right] = forward_box + shift
        landed = torch.zeros_like(mode.reach)  # the object's pixels on key b
        # On key b the box lies moved by the shift: its part on the frame.
        b_top, b_bottom, b_left, b_right = max(top + dy, 0), min(bottom + dy, height), max(left + dx, 0), min(right + dx, width)
        if b_top < b_bottom and b_left < b_right:
            inside = (..., slice(b_top - top - dy, b_bottom - top - dy), slice(b_left - left - dx, b_right - left - dx))
            backward[..., b_top:b_bottom, b_left:b_right] = backward_box[inside] - shift
            landed[..., b_top:b_bottom, b_left:b_right] = mode.reach[..., top:bottom, left:right][inside]
        return torch.where(mode.reach, forward, network[0]), torch.where(landed, backward, network[1])

    def frame(self, key_a: torch.Tensor, key_b: torch.Tensor, motion: GapMotion, t: float,
              tangents_a: tuple[torch.Tensor, torch.Tensor], tangents_b: tuple[torch.Tensor, torch.Tensor],
              is_float: bool) -> torch.Tensor:
        """The inbetween at time t of a gap. ``tangents_a``: the start and end tangents (pixels per gap) of
        the paths of key a's pixels; ``tangents_b`` those of key b's, in the same direction of time."""
        alpha = key_a.shape[1] == 4
        keys = [premultiplied(k.float()) if alpha else k.float() for k in (key_a, key_b)]
        (image_a, blend_a), (image_b, blend_b) = self.splats(keys, motion, t, tangents_a, tangents_b)
        blended = (image_a * blend_a + image_b * blend_b) / (blend_a + blend_b).clamp(min=1e-8)
        # What neither key's splats reach (wide disocclusions, the frame's edge): both keys warped back.
        fallback = (1.0 - t) * warp(keys[0], -t * motion.forward) + t * warp(keys[1], -(1.0 - t) * motion.backward)
        image = torch.where(blend_a + blend_b > 1e-6, blended, fallback)
        if not motion.guided:
            # The motion's share: 1 where both splats show the same colour, less as they differ (Gaussian, so
            # the small differences of resampling a fine texture twice cost nothing). What only one key shows
            # (a disocclusion) that key gives: the network at t would ghost it there.
            disagreement = seen_difference(image_a, image_b, alpha, is_float)
            share = torch.where((blend_a > 0) & (blend_b > 0), torch.exp(-(disagreement / DISAGREEMENT) ** 2), 1.0)
            if not bool((share > ALL_AGREE).all()):
                at_t = self.per_t(key_a, key_b, t, is_float).float()  # (1, C, H, W), straight alpha
                image = share * image + (1.0 - share) * (premultiplied(at_t) if alpha else at_t)
        return (straight(image) if alpha else image).to(key_a.dtype)

    @staticmethod
    def splats(keys: list[torch.Tensor], motion: GapMotion, t: float, tangents_a: tuple[torch.Tensor, torch.Tensor],
               tangents_b: tuple[torch.Tensor, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each key (premultiplied where it has alpha) splatted to time t: (image (1, C, H, W), blend (1, 1, H, W))."""
        height, width = keys[0].shape[-2:]
        layers = []
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
        return layers

    def unexplained(self, key_a: torch.Tensor, key_b: torch.Tensor, motion: GapMotion, is_float: bool) -> float:
        """The share of the gap's change that its motion does not explain: of the pixels where the keys differ
        in place or where the two keys, splatted to the middle along straight paths, differ, those where the
        splats still differ by more than ``DISAGREEMENT`` (a turn, an occlusion, a redrawn pose; 0 for a move)."""
        alpha = key_a.shape[1] == 4
        keys = [premultiplied(k.float()) if alpha else k.float() for k in (key_a, key_b)]
        straight_a, straight_b = (motion.forward, motion.forward), (-motion.backward, -motion.backward)
        (image_a, blend_a), (image_b, blend_b) = self.splats(keys, motion, 0.5, straight_a, straight_b)
        disagree = ((blend_a > 0) & (blend_b > 0)) & (seen_difference(image_a, image_b, alpha, is_float) > DISAGREEMENT)
        changed = seen_difference(keys[0], keys[1], alpha, is_float) > DISAGREEMENT
        considered = int((changed | disagree).sum())
        return float(disagree.sum()) / considered if considered else 0.0

    def inbetween(self, keys: list[torch.Tensor], times: list[list[float]], is_float: bool,
                  guides: dict | None = None) -> list[list[torch.Tensor]]:
        """Inbetweens of every gap: ``times[g]`` in (0, 1) between ``keys[g]`` and ``keys[g + 1]``;
        ``guides`` {gap index: [[x0, y0, x1, y1], ...]} corresponding points in pixels."""
        sequence = self.sequence(keys, times, is_float, guides)
        return [[sequence.frame(g, g + 1, float(t)) for t in gap_times] for g, gap_times in enumerate(times)]

    def sequence(self, keys: list[torch.Tensor], times: list[list[float]], is_float: bool,
                 guides: dict | None = None) -> "KeySequence":
        """What ``inbetween`` draws from, for callers that write each frame as it comes."""
        gaps = {(g, g + 1): len(times[g]) + 1.0 for g in range(len(keys) - 1)}
        return KeySequence(self, keys.__getitem__, is_float, gaps, {(int(g), int(g) + 1): v for g, v in (guides or {}).items()})

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
        return self.model.frame(self.key(a), self.key(b), motion, t, tangents_a, tangents_b, self.is_float)


@lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> torch.Tensor:
    """(H * W, 2) x, y of every pixel centre, row by row."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], 1)


def seen_difference(image_a: torch.Tensor, image_b: torch.Tensor, alpha: bool, is_float: bool) -> torch.Tensor:
    """(1, 1, H, W) mean RGB difference of two splats as people see them (display-referred, so float
    frames compare like 8-bit ones). RGBA splats are premultiplied: they are compared in straight colour
    where both are opaque, so a transparent neighbour that mixed into one, or a nearly clear pixel, does not count."""
    if not alpha:
        return (motion_view(image_a, is_float) - motion_view(image_b, is_float)).abs().mean(1, keepdim=True)
    a, b = straight(image_a), straight(image_b)
    opaque = torch.minimum(a[:, 3:], b[:, 3:])
    return (motion_view(a, is_float) - motion_view(b, is_float)).abs().mean(1, keepdim=True) * opaque


