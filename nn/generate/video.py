"""A video through keys at given frame positions, generated window by window.

The model works on a grid: 4k+1 frames, sides in multiples of 16. ``grid_size`` maps any key size
onto it (scaled down to ``Settings.max_pixels`` at most, never up); a video longer than one window
is made in windows that overlap by ``Settings.overlap`` frames. Each window is conditioned on the keys
that fall in it and on the frames the previous window already made (VACE's mask: black keeps the given
pixels, white generates), and the overlap is cross-faded, so no seam shows at a window's edge.
A ``region`` (the loop's mask) limits generation to its pixels: outside it every frame shows ``still``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from ..worker import TaskError, is_out_of_memory
from .pipeline import OUT_OF_MEMORY, Prepared

GRID = 16  # VAE stride 8 times the transformer's patch 2
TIME_GRID = 4  # the VAE packs 4 frames into one latent after the first
UNKNOWN = 0.5  # the grey VACE is given where it must generate


def grid_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """(w, h) on the model's grid for a (width, height) frame: same shape, at most ``max_pixels``."""
    scale = min(1.0, math.sqrt(max_pixels / (width * height)))
    return tuple(max(GRID, round(side * scale / GRID) * GRID) for side in (width, height))


def frames_on_grid(count: int) -> int:
    """The smallest 4k+1 frame count that holds ``count`` frames."""
    return 1 + TIME_GRID * math.ceil(max(count - 1, 1) / TIME_GRID)


def windows(length: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(first position, frame count on the grid) of each window covering positions 0 .. length-1."""
    spans, start = [], 0
    while True:
        count = min(window, frames_on_grid(length - start))
        spans.append((start, count))
        if start + count >= length:
            return spans
        start += count - overlap


class KeyedVideo:
    """Frames 0 .. ``length``-1 (each (3, h, w) in [0, 1], at the grid size of the keys) through ``keys``.

    ``keys`` maps positions to (3, h, w) frames. Windows are made when a frame in them is first asked
    for, in order, so frames can be written as they come and memory holds about one window.
    ``progress(done, message)`` is called after every denoising step, ``done`` in [0, 1] of the whole video.
    """

    def __init__(self, model: Prepared, keys: dict[int, torch.Tensor], length: int, region: torch.Tensor | None = None,
                 still: torch.Tensor | None = None, progress: Callable[[float, str], None] | None = None):
        self.pipe, self.settings, self.device = model.pipe, model.settings, model.device
        self.embeddings = model.embeddings
        self.keys, self.length = keys, length
        self.region = region  # (1, h, w) bool: the pixels that may change
        self.still = still  # (3, h, w): what the frames show outside the region
        self.progress = progress or (lambda done, message: None)
        self.spans = windows(length, self.settings.window, self.settings.overlap)
        self.made: dict[int, torch.Tensor] = {}
        self.next_window = 0
        self.started = time.monotonic()

    def frame(self, position: int) -> torch.Tensor:
        if not 0 <= position < self.length:
            raise IndexError(f"position {position} outside 0..{self.length - 1}")
        while position not in self.made or self._may_change(position):
            self._make_window(self.next_window)
            self.next_window += 1
        for old in [p for p in self.made if p < position - self.settings.overlap]:
            del self.made[old]  # earlier frames are asked for once, in order
        return self.made[position]

    def _may_change(self, position: int) -> bool:
        """Whether the next window still blends into this frame (it lies in an overlap not made yet)."""
        if self.next_window >= len(self.spans):
            return False
        return position >= self.spans[self.next_window][0]

    def _conditions(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """VACE's video and mask (1, count, 3, h, w): keys and frames already made are kept, the rest made."""
        height, width = next(iter(self.keys.values())).shape[-2:]
        video = torch.full((count, 3, height, width), UNKNOWN)
        mask = torch.ones(count, 3, height, width)
        for offset in range(count):
            given = self.keys.get(start + offset, self.made.get(start + offset))
            if given is not None:
                video[offset], mask[offset] = given.float().cpu(), 0.0
            elif self.region is not None:  # only the region moves: the still is kept around it
                inside = self.region.cpu().expand(3, -1, -1)
                video[offset] = torch.where(inside, UNKNOWN, self.still.float().cpu())
                mask[offset] = inside.float()
        return video[None], mask[None]

    def _make_window(self, index: int) -> None:
        try:
            self._generate_window(index)
        except Exception as error:
            if is_out_of_memory(error):
                start, count = self.spans[index]
                height, width = next(iter(self.keys.values())).shape[-2:]
                raise TaskError(f"Out of memory generating {count} frames at {width}x{height} on {self.device}. "
                                f"{OUT_OF_MEMORY}") from error
            raise

    def _generate_window(self, index: int) -> None:
        start, count = self.spans[index]
        video, mask = self._conditions(start, count)
        steps = self.settings.steps
        covered = min(start + count, self.length)

        def on_step(pipe, step, timestep, tensors):
            done = (start + (step + 1) / steps * (covered - start)) / self.length
            elapsed = time.monotonic() - self.started
            left = elapsed / done * (1 - done) if done > 0 else 0.0
            window = f"window {index + 1} of {len(self.spans)}, " if len(self.spans) > 1 else ""
            self.progress(done, f"Generating: {window}step {step + 1} of {steps}, about {left:.0f} s left")
            return tensors

        positive, negative = self.embeddings
        height, width = video.shape[-2:]
        out = self.pipe(
            video=video, mask=mask, height=height, width=width, num_frames=count, num_inference_steps=steps,
            guidance_scale=self.settings.guidance, prompt_embeds=positive, negative_prompt_embeds=negative,
            generator=torch.Generator("cpu").manual_seed(int(self.settings.seed) + index), output_type="pt",
            callback_on_step_end=on_step)
        frames = out.frames[0].float().cpu()  # (count, 3, h, w)
        overlap = [p for p in range(start, start + count) if p in self.made and p not in self.keys]
        for offset in range(count):
            position = start + offset
            if position >= self.length:
                break
            if position in self.keys:
                self.made[position] = self.keys[position].float().cpu()
            elif position in overlap:  # cross-fade from the previous window's frame into this one's
                weight = (overlap.index(position) + 1) / (len(overlap) + 1)
                self.made[position] = self.made[position] * (1 - weight) + frames[offset] * weight
            else:
                self.made[position] = frames[offset]
