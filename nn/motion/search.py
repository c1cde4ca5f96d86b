"""Global search for large displacements: exhaustive block matching on a coarse copy.

Flow networks refine from a coarse pyramid level whose reach is a few coarse pixels, so an
object that jumps further than that between two keys is lost. Here every displacement within
``SEARCH_RADIUS`` coarse pixels is tried for every coarse pixel, scored by the mean absolute
difference over a window, and the best kept. The displacements that compact groups of pixels
share are the motion modes: objects that jump, each with its box, which the flow network then
refines on the keys moved by the mode (``nn.inbetween.keymotion``). Only modes found from both
keys are kept, since a chance match of real footage is rarely found again the other way.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SEARCH_PIXELS = 48  # the coarse copy's longer side
SEARCH_RADIUS = 24  # coarse pixels tried each way: half the frame
WINDOW = 3  # coarse pixels a match is scored over
DISTANCE_COST = 1e-3  # per coarse pixel of displacement: ties (flat areas) go to the shortest move
MODE_COUNT = 6  # large motions looked for between two keys (objects that jump), beyond standing still
MODE_REACH = 1.5  # coarse pixels: a motion this short is the flow network's to find
MODE_SHARE = 2e-3  # of the coarse pixels that must share a motion for it to count (4 of a 48x27 copy: 1.5x1.5 blocks)
MODE_MIN_PIXELS = 3
MODE_DENSITY = 0.25  # of its box that a mode's pixels must fill
MODE_MARGIN = 1  # coarse pixels a mode's box is grown by, for the parts of the object that matched worse
MODE_AGREEMENT = 2.0  # coarse pixels by which a mode and its reverse from the other key may differ
MODE_OVERLAP = 0.25  # of the smaller box that a mode's box, moved by its shift, and its reverse's must share


def coarse_search(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each coarse pixel's best displacement (1, 2, h, w), in coarse pixels, of ``source`` towards
    ``target`` (both (1, C, H, W)), and the gain (1, 2, 1, 1) from coarse to full-size pixels."""
    height, width = source.shape[-2:]
    factor = max(height, width) / SEARCH_PIXELS
    size = (max(round(height / factor), 1), max(round(width / factor), 1))
    small_source, small_target = (F.interpolate(image.float(), size=size, mode="area") for image in (source, target))
    r = SEARCH_RADIUS
    padded = F.pad(small_target, (r, r, r, r), mode="replicate")
    # Every shift of the target at once: (1, C * h * w, S) for the S = (2r + 1)^2 displacements.
    shifted = F.unfold(padded, kernel_size=size).view(1, -1, *size, (2 * r + 1) ** 2)
    difference = (small_source[..., None] - shifted).abs().mean(1)  # (1, h, w, S)
    cost = F.avg_pool2d(difference.permute(0, 3, 1, 2), WINDOW, 1, WINDOW // 2, count_include_pad=False)[0]  # (S, h, w)
    steps = torch.arange(-r, r + 1, dtype=cost.dtype)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")  # unfold runs over rows of shifts, then columns
    cost = cost + DISTANCE_COST * (dx * dx + dy * dy).sqrt().flatten()[:, None, None]
    choice = cost.argmin(0)  # (h, w)
    best = torch.stack([dx.flatten()[choice], dy.flatten()[choice]])[None]  # (1, 2, h, w)
    return best, best.new_tensor([width / size[1], height / size[0]]).view(1, 2, 1, 1)


@dataclass
class Mode:
    """A motion that a part of the frame shares: ``shift`` (dx, dy) whole pixels, for the pixels of
    ``box`` (top, bottom, left, right: rows top..bottom - 1, columns left..right - 1); ``members``
    (1, 1, H, W) marks the pixels whose coarse pixel chose it (the object itself), and ``reach`` the
    same grown by ``MODE_MARGIN`` (the parts of the object that matched worse)."""
    shift: tuple[int, int]
    box: tuple[int, int, int, int]
    members: torch.Tensor
    reach: torch.Tensor


def motion_modes(source: torch.Tensor, target: torch.Tensor, count: int = MODE_COUNT) -> list[Mode]:
    """Up to ``count`` large motions that many coarse pixels of ``source`` share on their way to
    ``target``, most shared first: objects that jump further between two keys than a flow network
    reaches. Motions within ``MODE_REACH`` of standing still are left to the network."""
    height, width = source.shape[-2:]
    best, gain = coarse_search(source, target)  # (1, 2, h, w) coarse pixels
    r, side = SEARCH_RADIUS, 2 * SEARCH_RADIUS + 1
    index = ((best[0, 1] + r) * side + best[0, 0] + r).long()  # (h, w) into the (side, side) displacements
    moving = best[0].float().pow(2).sum(0).sqrt() >= MODE_REACH  # standing pixels vote for nothing
    votes = torch.bincount(index[moving], minlength=side * side).view(1, 1, side, side).float()
    # A turning or scaling object's blocks scatter over neighbouring displacements: count them together.
    votes = F.avg_pool2d(votes, 3, 1, 1, count_include_pad=False)[0, 0] * 9  # (side, side)
    steps = torch.arange(-r, r + 1, dtype=torch.float32)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    votes[(dx * dx + dy * dy).sqrt() < MODE_REACH] = 0
    modes = []
    for _ in range(3 * count):
        if len(modes) == count:
            break
        peak = int(votes.argmax())
        if votes.flatten()[peak] < max(MODE_SHARE * index.numel(), MODE_MIN_PIXELS):
            break
        my, mx = peak // side - r, peak % side - r
        votes[max(my + r - 2, 0):my + r + 3, max(mx + r - 2, 0):mx + r + 3] = 0  # one motion, one mode
        near = ((best[0, 0] - mx).abs() <= 1) & ((best[0, 1] - my).abs() <= 1)  # (h, w)
        # An object's pixels lie together: a pixel with fewer than 3 like it in its 3x3 matched by chance.
        near &= F.avg_pool2d(near[None, None].float(), 3, 1, 1)[0, 0] * 9 >= 3
        if not near.any():
            continue
        rows, columns = near.any(1).nonzero().flatten(), near.any(0).nonzero().flatten()
        if near.sum() < MODE_DENSITY * (rows[-1] - rows[0] + 1) * (columns[-1] - columns[0] + 1):
            continue  # matches scattered over the frame by chance (repeating texture), not one object
        shift = best[0][:, near].float().mean(1) * gain.flatten()  # the mean of its pixels: finer than one block
        gy, gx = float(gain[0, 1]), float(gain[0, 0])
        box = (max(int((rows[0] - MODE_MARGIN) * gy), 0), min(int((rows[-1] + 1 + MODE_MARGIN) * gy + 0.5), height),
               max(int((columns[0] - MODE_MARGIN) * gx), 0), min(int((columns[-1] + 1 + MODE_MARGIN) * gx + 0.5), width))
        grown = F.max_pool2d(near[None, None].float(), 2 * MODE_MARGIN + 1, 1, MODE_MARGIN)  # (1, 1, h, w)
        members, reach = (F.interpolate(mask, size=(height, width), mode="nearest") > 0
                          for mask in (near[None, None].float(), grown))
        modes.append(Mode((round(float(shift[0])), round(float(shift[1]))), box, members, reach))
    return modes


def mutual_modes(source: torch.Tensor, target: torch.Tensor) -> list[Mode]:
    """The ``motion_modes`` of ``source`` towards ``target`` that a mode of ``target`` back towards
    ``source`` confirms: the opposite shift, from about where the first one lands. An object that
    really jumps is found both ways; a chance match (a hand entering the frame, a face matching
    skin elsewhere) is rarely found again from the other side."""
    gain = max(source.shape[-2:]) / SEARCH_PIXELS  # full-size pixels per coarse pixel
    returns = motion_modes(target, source)

    def area(top, bottom, left, right):
        return max(bottom - top, 0) * max(right - left, 0)

    def confirms(mode: Mode, back: Mode) -> bool:
        (dx, dy), (top, bottom, left, right) = mode.shift, mode.box
        if max(abs(dx + back.shift[0]), abs(dy + back.shift[1])) > MODE_AGREEMENT * gain:
            return False
        landed = (top + dy, bottom + dy, left + dx, right + dx)
        b_top, b_bottom, b_left, b_right = back.box
        shared = area(max(landed[0], b_top), min(landed[1], b_bottom), max(landed[2], b_left), min(landed[3], b_right))
        return shared >= MODE_OVERLAP * min(area(*mode.box), area(*back.box))

    return [mode for mode in motion_modes(source, target) if any(confirms(mode, back) for back in returns)]

