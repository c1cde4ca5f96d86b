"""Running a trained generator over whole frames: batched, fp16 on CUDA, tiled when large.

Tiles overlap and are blended with weights that ramp linearly across the overlap, so the
small differences at tile borders (the convolutions see padding there instead of the
neighbouring pixels) fade out instead of showing as seams.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from .guides import advected_positions, identity_positions, key_weights, network_input
from .network import GENERATOR_MULTIPLE

TILE = 1024  # px: frames larger than this on a side are run in tiles (1080p and up)
OVERLAP = 64  # px between tiles; about the generator's effective reach
# Frames each side of a handover between two keys that cross-fade their results. Lynx, keys 0
# and 99 (docs/BENCHMARKS.md): the worst frame-to-frame warping error falls from 8.44 (the pop at
# the handover) to 1.59 with 4 and 1.49 with 8, for 16 extra frames stylized per pair of keys.
KEY_BLEND = 8


def _padded_run(generator, inputs: torch.Tensor, half: bool) -> torch.Tensor:
    """(B, C, H, W) -> (B, 3, H, W) float32, padding by edge replication to the generator's multiple."""
    height, width = inputs.shape[-2:]
    pad = (0, -width % GENERATOR_MULTIPLE, 0, -height % GENERATOR_MULTIPLE)
    x = F.pad(inputs, pad, mode="replicate") if any(pad) else inputs
    with torch.autocast("cuda", dtype=torch.float16, enabled=half and inputs.device.type == "cuda"):
        out = generator(x.contiguous(memory_format=torch.channels_last))
    return out[..., :height, :width].float()


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    return starts + [size - tile]


def _ramp(length: int, overlap: int, fade_in: bool, fade_out: bool, device) -> torch.Tensor:
    weight = torch.ones(length, device=device)
    ramp = (torch.arange(overlap, device=device) + 0.5) / overlap  # never 0: every pixel keeps some weight
    if fade_in:
        weight[:overlap] = ramp
    if fade_out:
        weight[-overlap:] = torch.minimum(weight[-overlap:], ramp.flip(0))
    return weight


@torch.no_grad()
def run_generator(generator, inputs: torch.Tensor, half: bool = False, tile: int = TILE,
                  overlap: int = OVERLAP) -> torch.Tensor:
    """Stylized RGB (B, 3, H, W) in [0, 1] for network inputs (B, C, H, W)."""
    height, width = inputs.shape[-2:]
    if height <= tile and width <= tile:
        return _padded_run(generator, inputs, half).clamp(0.0, 1.0)
    total = torch.zeros(inputs.shape[0], 3, height, width, device=inputs.device)
    weights = torch.zeros(1, 1, height, width, device=inputs.device)
    ys, xs = _starts(height, tile, overlap), _starts(width, tile, overlap)
    for y in ys:
        for x in xs:
            h, w = min(tile, height), min(tile, width)
            out = _padded_run(generator, inputs[..., y:y + h, x:x + w], half)
            weight = (_ramp(h, overlap, y > 0, y + h < height, inputs.device)[:, None]
                      * _ramp(w, overlap, x > 0, x + w < width, inputs.device)[None, :])  # (h, w)
            total[..., y:y + h, x:x + w] += out * weight
            weights[..., y:y + h, x:x + w] += weight
    return (total / weights).clamp(0.0, 1.0)


def compose(stylized: torch.Tensor, frame: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The output frame: stylized RGB inside the mask, the footage's own RGB outside, its alpha kept.

    stylized (B, 3, H, W); frame (B, C, H, W) with C = 3 or 4 (RGBA); mask (B, 1, H, W) or None.
    """
    rgb = stylized if mask is None else torch.lerp(frame[:, :3], stylized, mask)  # exact where mask is 0 or 1
    return torch.cat([rgb, frame[:, 3:4]], 1)


def propagate(generator, config, frames: Callable[[int], torch.Tensor], count: int,
              painted: dict[int, torch.Tensor], flow=None, masks: Callable[[int], torch.Tensor | None] | None = None,
              half: bool = False, batch: int = 1, blend: int = KEY_BLEND,
              wanted: Callable[[int], bool] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """(frame index, output (1, C, H, W)) for every frame (or those ``wanted``), in ``guides.propagation_order``.

    ``frames(i)``: footage frame i as RGB(A) (1, C, H, W); ``painted``: key index -> painted
    RGB (1, 3, H, W); ``masks(i)``: (1, 1, H, W) or None. Frames are run ``batch`` at a time.
    Near a handover between two keys, ``blend`` frames each side are stylized from both and
    cross-faded (``guides.key_weights``); such a frame is yielded once both halves are in.
    """
    keys = sorted(painted)
    pending: list[tuple[int, int | None, torch.Tensor]] = []
    partial: dict[int, tuple[torch.Tensor, float]] = {}  # frame -> (weighted sum so far, weight so far)

    def flush():
        stylized = run_generator(generator, torch.cat([x for _, _, x in pending]), half)
        for (index, key, _), out in zip(pending, stylized):
            weight = key_weights(index, keys, blend)[key] if key is not None else 1.0
            if weight < 1.0:
                total, gathered = partial.pop(index, (0.0, 0.0))
                if gathered + weight < 1.0 - 1e-6:
                    partial[index] = (total + weight * out, gathered + weight)
                    continue
                out = total + weight * out
            mask = masks(index) if masks else None
            yield index, compose(out[None], frames(index), mask)
        pending.clear()

    # A model without guides needs no painted key: it is applied to any clip frame by frame.
    # Nor does it need motion: no flow is computed for it.
    if painted and config.guides:
        order = advected_positions(frames, count, keys, flow, blend)
    else:
        order = ((i, None, identity_positions(*frames(i).shape[-2:], frames(i).device)) for i in range(count))
    for index, key, positions in order:
        if wanted and not wanted(index):
            continue  # the motion is still followed through it: later frames' guides depend on it
        pending.append((index, key, network_input(config.guides, frames(index)[:, :3], positions, painted.get(key))))
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()
