"""Inbetweens from the generative model: every run of moving gaps is one video through its keys,
each key at its exact place on the timeline (a gap of n frames puts the next key n + 1 frames on).

Frames on the gap's even grid (t = j / (n + 1)) are the model's own; a time between two of them
(a timing curve's eased spacing) cross-fades its two neighbours. Keys with alpha are generated over a
matte colour absent from them, which is keyed out again (``nn.generate.matte``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..generate.convert import from_model, has_alpha, to_model
from ..generate.matte import choose_matte
from ..generate.pipeline import Prepared
from ..generate.video import KeyedVideo, grid_size

ON_GRID = 1e-6  # a position this close to a whole frame is that frame


@dataclass
class Generative:
    """``load_model``'s "generative": the prepared model, and where its progress goes."""

    prepared: Prepared
    progress: Callable[[float, str], None]


class GenerativeSequence:
    """``frame(a, b, t)`` for a job's gaps, as Key Motion's ``KeySequence``: ``gaps`` maps each moving
    gap (a, a + 1) to its length in frames; frames must be asked for in timeline order."""

    def __init__(self, model: Generative, key: Callable[[int], torch.Tensor], is_float: bool,
                 gaps: dict[tuple[int, int], float]):
        self.model, self.key, self.is_float, self.gaps = model, key, is_float, gaps
        self.segment_start: tuple[int, ...] = ()  # keys of the segment whose video is alive
        self.video: KeyedVideo | None = None

    def _segment(self, a: int) -> list[int]:
        """The keys of the run of moving gaps that holds gap (a, a + 1)."""
        first = a
        while (first - 1, first) in self.gaps:
            first -= 1
        keys = [first]
        while (keys[-1], keys[-1] + 1) in self.gaps:
            keys.append(keys[-1] + 1)
        return keys

    def _open(self, keys: list[int]) -> None:
        first = self.key(keys[0])  # (1, C, H, W)
        channels, (height, width) = first.shape[1], first.shape[-2:]
        self.size = (width, height)
        self.channels = channels
        grid = grid_size(width, height, self.model.prepared.settings.max_pixels)
        self.matte = choose_matte([self.key(k)[0].float() for k in keys]) if has_alpha(channels) else None
        self.positions, position = {}, 0
        for k in keys:
            self.positions[k] = position
            position += round(self.gaps.get((k, k + 1), 0))
        frames = {self.positions[k]: to_model(self.key(k), self.is_float, grid, self.matte) for k in keys}
        self.video = KeyedVideo(self.model.prepared, frames, position + 1, progress=self.model.progress)
        self.segment_start = tuple(keys)

    def frame(self, a: int, b: int, t: float) -> torch.Tensor:
        keys = self._segment(a)
        if tuple(keys) != self.segment_start:
            self._open(keys)
        place = self.positions[a] + t * (self.positions[b] - self.positions[a])
        below = int(place + ON_GRID)
        share = place - below
        frame = self.video.frame(below)
        if share > ON_GRID:
            frame = frame * (1 - share) + self.video.frame(below + 1) * share
        return from_model(frame, self.channels, self.is_float, self.size, self.matte)
