"""Guide channels: what the generator sees besides the frame's RGB.

Every frame is tied to its nearest keyframe by *positions*: for each pixel, where that
point was in the keyframe, found by chaining optical flow frame by frame from the key
(Texler et al.'s advected guide, carrying exact coordinates instead of noise). From them:

- ``position`` (2 channels): the coordinates themselves, normalised to [-1, 1].
- ``key`` (3 channels): the painted keyframe sampled at those positions, i.e. the paint
  carried along the footage's motion. The generator learns to align and repair it (it is
  trained on keys whose positions are randomly misaligned, see train.py), which keeps the
  output tied to the painted strokes instead of re-inventing them each frame: less flicker.

Positions are chained (each frame's map is the previous map warped by one flow step, then
corrected by the flow from the key's footage carried so far to this frame, which stops drift)
and the key is sampled once at the end, so paint is not blurred by repeated resampling.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from ..motion.flow import Flow
from ..motion.warp import _base_grid, warp

GUIDE_CHANNELS = {"position": 2, "key": 3}


def identity_positions(height: int, width: int, device, dtype=torch.float32) -> torch.Tensor:
    """(1, 2, H, W) normalised pixel centres, x then y, as ``warp`` and ``grid_sample`` use them."""
    return _base_grid(torch.device(device), dtype, height, width).clone()


def guide_channels(kinds: tuple[str, ...], positions: torch.Tensor, painted: torch.Tensor) -> torch.Tensor:
    """(B, sum of GUIDE_CHANNELS, H, W) for positions (B, 2, H, W) into one painted key (1, 3, Hk, Wk)."""
    batch, _, height, width = positions.shape
    parts = []
    for kind in kinds:
        if kind == "position":
            parts.append(positions)
        elif kind == "key":
            # The B maps stacked as one tall grid sample the single key without copying it B times.
            grid = positions.permute(0, 2, 3, 1).reshape(1, batch * height, width, 2).to(painted.dtype)
            sampled = F.grid_sample(painted, grid, mode="bilinear", padding_mode="border", align_corners=True)
            parts.append(sampled.view(3, batch, height, width).transpose(0, 1))  # (B, 3, H, W)
        else:
            raise ValueError(f"Unknown guide {kind!r}; known: {', '.join(GUIDE_CHANNELS)}")
    return torch.cat(parts, 1) if parts else positions[:, :0]


def network_input(kinds: tuple[str, ...], rgb: torch.Tensor, positions: torch.Tensor,
                  painted: torch.Tensor) -> torch.Tensor:
    """The generator's input: frame RGB (B, 3, H, W), then the guides."""
    return torch.cat([rgb, guide_channels(kinds, positions, painted)], 1)


def nearest_key(index: int, key_indices: list[int]) -> int:
    """The key a frame follows: the closest in time, the earlier one on ties."""
    return min(key_indices, key=lambda k: (abs(k - index), k))


def key_weights(index: int, key_indices: list[int], blend: int = 0) -> dict[int, float]:
    """How much each key contributes to frame ``index``: {key: weight}, weights summing to 1.

    A frame follows its nearest key. Between two keys, ``blend`` frames each side of their
    midpoint cross-fade linearly from one key's result to the other's, so the handover is a
    dissolve rather than a pop (EbSynth blends neighbouring keys for the same reason).
    """
    keys = sorted(set(key_indices))
    earlier, later = [k for k in keys if k <= index], [k for k in keys if k > index]
    if not earlier or not later or index in keys:
        return {nearest_key(index, keys): 1.0}
    a, b = earlier[-1], later[0]
    middle, half = (a + b) / 2, min(blend, (b - a) / 2)  # the ramp never reaches past either key
    if half <= 0:
        return {a: 1.0} if index <= middle else {b: 1.0}
    share_b = min(max((index - middle) / (2 * half) + 0.5, 0.0), 1.0)
    return {k: w for k, w in ((a, 1.0 - share_b), (b, share_b)) if w > 0}


def propagation_order(count: int, key_indices: list[int], blend: int = 0) -> Iterator[tuple[int, int, int | None]]:
    """(frame, its key, the previous frame in its chain or None at the key), chain by chain.

    Each key walks outwards from itself in both directions over the frames it contributes to
    (``key_weights``), so every frame after the first of a chain has its neighbour's positions
    ready. With ``blend``, frames near a handover come once from each of the two keys.
    """
    keys = sorted(set(key_indices))
    for key in keys:
        yield key, key, None
        for step in (1, -1):
            previous, index = key, key + step
            while 0 <= index < count and key in key_weights(index, keys, blend):  # a key's frames are contiguous
                yield index, key, previous
                previous, index = index, index + step


def advected_positions(frames: Callable[[int], torch.Tensor], count: int, key_indices: list[int],
                       flow: Flow | None, blend: int = 0) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(frame index, key index, positions (1, 2, H, W)) for every frame, in ``propagation_order``.

    ``frames(i)`` returns frame i as (1, C, H, W); without a flow every frame keeps the key's
    own positions (a static-camera assumption, used only when no flow is available). With
    ``blend``, frames near a handover between keys are yielded once per key (``key_weights``).
    """
    heads: dict[tuple[int, int], torch.Tensor] = {}  # (key, frame): each key's own and its chain's newest
    for index, key, previous in propagation_order(count, key_indices, blend):
        if previous is None:
            height, width = frames(index).shape[-2:]
            current = identity_positions(height, width, frames(index).device)
        elif flow is None:
            current = heads[key, previous]
        else:
            current = warp(heads[key, previous], flow(frames(previous), frames(index)))
            # Anchor to the key: the key's own footage carried here should match this frame; the
            # flow between the two removes the drift that chaining accumulates (lynx, 512x288,
            # carried key vs style006: 30.7 dB chained, 32.4 dB anchored; vs style010: 27.3, 27.5).
            carried = guide_channels(("key",), current, frames(key)[:, :3])
            current = warp(current, flow(carried, frames(index)))
        if previous is not None and previous != key:
            del heads[key, previous]
        heads[key, index] = current
        yield index, key, current
