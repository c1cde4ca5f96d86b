"""User hints -> one static velocity field: arrows, strokes, polygons and labelme files.

The field is the motion of every pixel in pixels per frame, held fixed for the whole loop
(Holynski et al. 2021, "Animating Pictures with Eulerian Motion Fields"). Sparse hints are
spread over the motion mask by edge-aware diffusion: neighbours pass motion to each other in
proportion to how alike their colours are, so motion fills a body of water but stops at the
rock beside it. The diffusion is solved coarse to fine (Jacobi sweeps at each level of a small
pyramid), which reaches across the whole region in well under a second at 1280x720.
"""
from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F

WORK_SIZE = 320  # longest side the diffusion is solved at; the field is smooth, so upsampling loses nothing
COARSEST_SIZE = 12  # the pyramid stops before its shortest side drops below this
EDGE_SIGMA = 0.08  # colour difference (0..1 display RGB) at which neighbours stop sharing motion
HINT_WEIGHT = 10.0  # how firmly hinted pixels hold their value against their neighbours
SWEEPS = 150  # Jacobi sweeps per level; the coarsest level gets twice as many


def stroke_arrows(stroke) -> np.ndarray:
    """(K, 4) local arrows between consecutive points, each as long as the whole stroke.

    Direction comes from each segment, strength from the stroke's length, so a stroke drawn
    with unevenly spaced points asks for one speed: that of an arrow of the same length.
    """
    points = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
    starts, steps = points[:-1], np.diff(points, axis=0)  # (K, 2)
    lengths = np.linalg.norm(steps, axis=1)
    keep = lengths > 0
    starts, steps, lengths = starts[keep], steps[keep], lengths[keep]
    return np.concatenate([starts, starts + steps / lengths[:, None] * lengths.sum()], axis=1)


def all_arrows(arrows, strokes) -> np.ndarray:
    """(K, 4) arrows [x0, y0, x1, y1] from arrows and strokes; zero-length ones dropped."""
    parts = [np.asarray(arrows, dtype=np.float64).reshape(-1, 4)] + [stroke_arrows(s) for s in strokes]
    joined = np.concatenate(parts, axis=0)
    return joined[np.linalg.norm(joined[:, 2:] - joined[:, :2], axis=1) > 0]


def rasterize_polygons(polygons, width: int, height: int) -> np.ndarray:
    """(H, W) bool: pixels whose centre lies inside any polygon (even-odd rule per polygon).

    Scanline fill: every edge crossing a row's centre line toggles "inside" from the first
    pixel centre to its right on; a cumulative sum of the toggles gives the parity.
    """
    mask = np.zeros((height, width), dtype=bool)
    centres = np.arange(height) + 0.5  # (H,)
    for polygon in polygons:
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(points) < 3:
            continue
        # labelme stores vertices in pixel units with pixel i spanning [i, i + 1); centres at i + 0.5
        (x0, y0), (x1, y1) = points.T, np.roll(points, -1, axis=0).T  # (E,) each
        crosses = (y0[None] <= centres[:, None]) != (y1[None] <= centres[:, None])  # (H, E)
        rows, edges = np.nonzero(crosses)
        t = (centres[rows] - y0[edges]) / (y1[edges] - y0[edges])
        x = x0[edges] + t * (x1[edges] - x0[edges])
        first_inside = np.clip(np.ceil(x - 0.5), 0, width).astype(np.int64)
        toggles = np.zeros((height, width + 1), dtype=np.int64)
        np.add.at(toggles, (rows, first_inside), 1)
        mask |= (np.cumsum(toggles[:, :width], axis=1) % 2).astype(bool)
    return mask


def read_labelme(path: str) -> tuple[list, list, tuple[int, int] | None]:
    """(region polygons, strokes, (width, height) or None) from a labelme JSON file.

    Shapes labelled "hint..." are strokes in the direction of motion; every other polygon
    (rectangles included) is part of the motion region.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    region, strokes = [], []
    for shape in data.get("shapes", []):
        points, kind = shape.get("points", []), shape.get("shape_type", "polygon")
        if shape.get("label", "").lower().startswith("hint"):
            strokes.append(points)
        elif kind == "rectangle" and len(points) == 2:
            (xa, ya), (xb, yb) = points
            region.append([[xa, ya], [xb, ya], [xb, yb], [xa, yb]])
        elif kind == "polygon":
            region.append(points)
    size = (int(data["imageWidth"]), int(data["imageHeight"])) if "imageWidth" in data else None
    return region, strokes, size


def hint_constraints(arrows: np.ndarray, speed: float, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocities asked for along each arrow: (1, 2, H, W) summed velocity, (1, 1, H, W) count.

    An arrow of the mean hint length asks for ``speed`` pixels per frame; longer ones for more.
    """
    vectors = arrows[:, 2:] - arrows[:, :2]  # (K, 2)
    velocities = vectors / np.linalg.norm(vectors, axis=1).mean() * speed
    total = np.zeros((2, height, width))
    count = np.zeros((height, width))
    for (x0, y0, x1, y1), velocity in zip(arrows, velocities):
        samples = int(np.ceil(2 * np.hypot(x1 - x0, y1 - y0))) + 1  # every half pixel along the arrow
        xs = np.linspace(x0, x1, samples).astype(np.int64)  # pixel i spans [i, i + 1)
        ys = np.linspace(y0, y1, samples).astype(np.int64)
        inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
        pixels = np.unique(ys[inside] * width + xs[inside])
        rows, cols = np.divmod(pixels, width)
        total[:, rows, cols] += velocity[:, None]
        count[rows, cols] += 1
    return torch.from_numpy(total).float()[None], torch.from_numpy(count).float()[None, None]


def arrows_in_mask(arrows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(K,) bool: which arrows touch ``mask`` (H, W) anywhere along their length, not just at the start."""
    height, width = mask.shape
    touching = np.zeros(len(arrows), dtype=bool)
    for index, (x0, y0, x1, y1) in enumerate(arrows):
        samples = int(np.ceil(2 * np.hypot(x1 - x0, y1 - y0))) + 1  # every half pixel, as hint_constraints
        xs = np.linspace(x0, x1, samples).astype(np.int64)
        ys = np.linspace(y0, y1, samples).astype(np.int64)
        on_image = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
        touching[index] = mask[ys[on_image], xs[on_image]].any()
    return touching


def _neighbour_weights(guide: torch.Tensor, inside: torch.Tensor) -> list[torch.Tensor]:
    """Weights (1, 1, h, w) to the right, left, lower and upper neighbour; zero off the region."""
    padded_guide = F.pad(guide, (1, 1, 1, 1), mode="replicate")
    padded_inside = F.pad(inside, (1, 1, 1, 1))  # the frame border is outside: no flow from it
    weights = []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        h, w = guide.shape[-2:]
        other = padded_guide[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        other_inside = padded_inside[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        similarity = torch.exp(-((guide - other) ** 2).sum(1, keepdim=True) / (2 * EDGE_SIGMA**2))
        weights.append(similarity * inside * other_inside)
    return weights


def _shifted(values: torch.Tensor) -> list[torch.Tensor]:
    """values at the right, left, lower and upper neighbour (matching _neighbour_weights)."""
    padded = F.pad(values, (1, 1, 1, 1), mode="replicate")
    h, w = values.shape[-2:]
    return [padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]


def _diffuse(velocity, guide, inside, wanted, hold, sweeps: int) -> torch.Tensor:
    """Jacobi sweeps of: each pixel = similarity-weighted mean of its neighbours, pulled to its hint."""
    weights = _neighbour_weights(guide, inside)
    norm = sum(weights) + HINT_WEIGHT * hold
    norm = torch.where(norm > 0, norm, torch.ones_like(norm))
    pull = HINT_WEIGHT * hold * wanted  # (1, 2, h, w)
    for _ in range(sweeps):
        velocity = (sum(w * v for w, v in zip(weights, _shifted(velocity))) + pull) / norm
    return velocity


def velocity_field(image: torch.Tensor, mask: torch.Tensor, arrows: np.ndarray, speed: float) -> torch.Tensor:
    """Static velocity (1, 2, H, W) in pixels per frame, zero outside ``mask``.

    ``image`` (1, C, H, W) guides the edges (its first three channels, clamped to 0..1);
    ``mask`` (1, 1, H, W) is 1 where pixels may move; ``arrows`` (K, 4) in pixels.
    """
    height, width = image.shape[-2:]
    colour = image[:, :3] if image.shape[1] >= 3 else image[:, :1].expand(-1, 3, -1, -1)
    colour, mask = colour.float().clamp(0, 1).cpu(), mask.float().cpu()
    total, count = hint_constraints(arrows, speed, width, height)
    count = count * mask  # hints outside the region ask nothing
    scale = min(1.0, WORK_SIZE / max(height, width))
    sizes = [(max(1, round(height * scale)), max(1, round(width * scale)))]
    while min(sizes[-1]) // 2 >= COARSEST_SIZE:
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    velocity = None
    for level, size in enumerate(reversed(sizes)):
        area = lambda t: F.adaptive_avg_pool2d(t, size)  # noqa: E731  area average to this level
        inside = (area(mask) >= 0.5).float()
        hold = area(count)
        wanted = area(total * mask) / hold.clamp(min=1e-6)  # mean hinted velocity where hinted
        hold = (hold > 0).float() * inside
        velocity = torch.zeros(1, 2, *size) if velocity is None else F.interpolate(
            velocity, size=size, mode="bilinear", align_corners=False)
        velocity = _diffuse(velocity, area(colour), inside, wanted, hold, SWEEPS * (2 if level == 0 else 1))
    # Carry the edge values one work pixel outwards first, so upsampling does not slow the border.
    velocity = extend(velocity, inside, steps=2)
    velocity = F.interpolate(velocity, size=(height, width), mode="bilinear", align_corners=False)
    return velocity * mask


def extend(velocity: torch.Tensor, inside: torch.Tensor, steps: int) -> torch.Tensor:
    """``velocity`` (1, 2, H, W) with values outside ``inside`` (1, 1, H, W) grown ``steps`` pixels out.

    Each step gives a pixel just outside the mean of its neighbours that already have a value.
    """
    known = inside.float()
    for _ in range(steps):
        coverage = F.avg_pool2d(known, 3, 1, 1, count_include_pad=False)
        spread = F.avg_pool2d(velocity * known, 3, 1, 1, count_include_pad=False) / coverage.clamp(min=1e-6)
        velocity = torch.where(known > 0, velocity, spread * (coverage > 0))
        known = (coverage > 0).float()
    return velocity
