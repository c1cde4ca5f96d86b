"""Scene cuts and repeated frames, told apart from motion on small thumbnails.

A cut changes both the colours present (histogram) and the pixels in place;
fast motion changes pixels but keeps the colours. Thresholds were set on
``bikes.mp4`` (5 hard cuts in 250 frames): every cut scores at least 0.24 /
0.20 there, and no other pair above 0.13 / 0.09 (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

THUMBNAIL_SIZE = (72, 128)
HISTOGRAM_BINS = 8  # per channel, so 512 colour bins
CUT_HISTOGRAM_DISTANCE = 0.18  # 1 - histogram intersection
CUT_PIXEL_DIFFERENCE = 0.12  # mean absolute difference, [0, 1] units
DUPLICATE_PIXEL_DIFFERENCE = 0.003  # below this a frame repeats its predecessor (codec noise only)


@dataclass(frozen=True)
class Thumbnail:
    pixels: torch.Tensor  # (3, 72, 128), display-referred RGB in [0, 1]
    histogram: torch.Tensor  # (512,), sums to 1


def thumbnail(view: torch.Tensor) -> Thumbnail:
    """Summarise a (1, 3, H, W) motion view (see ``nn.motion.flow.motion_view``)."""
    pixels = F.interpolate(view.float(), size=THUMBNAIL_SIZE, mode="area")[0]  # (3, 72, 128)
    bins = (pixels.clamp(0.0, 1.0 - 1e-6) * HISTOGRAM_BINS).long()
    index = (bins[0] * HISTOGRAM_BINS + bins[1]) * HISTOGRAM_BINS + bins[2]
    histogram = torch.bincount(index.flatten(), minlength=HISTOGRAM_BINS ** 3).float()
    return Thumbnail(pixels.cpu(), (histogram / histogram.sum()).cpu())


@dataclass(frozen=True)
class PairChange:
    histogram_distance: float
    pixel_difference: float

    @property
    def is_cut(self) -> bool:
        return self.histogram_distance > CUT_HISTOGRAM_DISTANCE and self.pixel_difference > CUT_PIXEL_DIFFERENCE

    @property
    def is_duplicate(self) -> bool:
        return self.pixel_difference < DUPLICATE_PIXEL_DIFFERENCE


def compare(a: Thumbnail, b: Thumbnail) -> PairChange:
    return PairChange(
        histogram_distance=1.0 - torch.minimum(a.histogram, b.histogram).sum().item(),
        pixel_difference=(a.pixels - b.pixels).abs().mean().item(),
    )


def distinct_positions(thumbnails: Iterable[Thumbnail]) -> list[int]:
    """Indices of the frames that do not repeat their predecessor (the first always counts)."""
    distinct, previous = [], None
    for index, current in enumerate(thumbnails):
        if previous is None or not compare(previous, current).is_duplicate:
            distinct.append(index)
        previous = current
    return distinct


def remap_over_duplicates(position: float, distinct: list[int]) -> tuple[int, int, float]:
    """(a, b, t) between the distinct frames around ``position`` on a uniformly timed sequence.

    A clip that repeats frames (animation on twos, a stuttering capture) moves in
    jumps; timing each inbetween over the whole span between real changes gives
    even motion instead of holds followed by lurches. After the last distinct
    frame there is nothing to move towards, so it is held.
    """
    slot = bisect.bisect_right(distinct, position)  # distinct[slot - 1] <= position < distinct[slot]
    before = distinct[slot - 1]
    if slot == len(distinct):
        return before, before, 0.0
    after = distinct[slot]
    return before, after, (position - before) / (after - before)
