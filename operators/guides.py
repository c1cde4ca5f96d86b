"""Guide strokes for hard gaps: strokes drawn on two keys that show where things go, as point pairs for the worker.

Each key strip can have a Guide Mask (its Frameweaver settings), drawn over that key in the Mask editor.
Mask splines have no names, so a Mask's layers name the strokes: the splines of the layer "arm" on one
key match those of the layer "arm" on the next key, in order. Both strokes are sampled at the same
arc-length fractions, so the j-th point of one corresponds to the j-th point of the other. A point
(a spline of one point) pairs with a point.
"""
from __future__ import annotations

import math

from . import mask_space, strip_io

BEZIER_STEPS = 16  # straight pieces per spline segment: under 0.1 px from the curve at these sizes
PAIR_SPACING = 8.0  # pixels between point pairs along the longer of two strokes
MAX_PAIRS = 64  # per pair of strokes


def bezier(controls, s: float) -> tuple[float, float]:
    a, b, c, d = controls
    u = 1 - s
    return tuple(u ** 3 * a[i] + 3 * u * u * s * b[i] + 3 * u * s * s * c[i] + s ** 3 * d[i] for i in range(2))


def spline_line(spline, width: int, height: int) -> list[list[float]]:
    """A Mask spline as a dense polyline in pixels, its segments evaluated as the Bezier curves Blender draws."""
    points = list(spline.points)
    segments = list(zip(points, points[1:]))
    if spline.use_cyclic and len(points) > 1:
        segments.append((points[-1], points[0]))
    line = [mask_space.to_pixels(points[0].co, width, height)]
    for p, q in segments:
        controls = (p.co, p.handle_right, q.handle_left, q.co)
        line += [mask_space.to_pixels(bezier(controls, step / BEZIER_STEPS), width, height)
                 for step in range(1, BEZIER_STEPS + 1)]
    return line


def layer_strokes(mask, width: int, height: int) -> dict[str, list]:
    """Stroke name (layer name) -> its splines as pixel polylines; hidden layers and empty ones are left out."""
    strokes = {}
    for layer in mask.layers:
        lines = [spline_line(spline, width, height) for spline in layer.splines if len(spline.points)]
        if lines and not layer.hide_render:  # render off: a sketch layer, as for the loop's strokes
            strokes[layer.name] = lines
    return strokes


def cumulative_length(line) -> list[float]:
    lengths = [0.0]
    for (x0, y0), (x1, y1) in zip(line, line[1:]):
        lengths.append(lengths[-1] + math.hypot(x1 - x0, y1 - y0))
    return lengths


def at_fraction(line, lengths, fraction: float) -> tuple[float, float]:
    """The point a ``fraction`` of the way along a polyline, by arc length."""
    target = fraction * lengths[-1]
    for index in range(1, len(line)):
        if lengths[index] >= target and lengths[index] > lengths[index - 1]:
            s = (target - lengths[index - 1]) / (lengths[index] - lengths[index - 1])
            (x0, y0), (x1, y1) = line[index - 1], line[index]
            return x0 + s * (x1 - x0), y0 + s * (y1 - y0)
    return tuple(line[-1])


def point_pairs(line_a, line_b) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Corresponding points of two strokes, at the same arc-length fractions of each."""
    lengths_a, lengths_b = cumulative_length(line_a), cumulative_length(line_b)
    longest = max(lengths_a[-1], lengths_b[-1])
    count = 1 if longest == 0 else min(MAX_PAIRS, max(2, math.ceil(longest / PAIR_SPACING) + 1))
    fractions = [j / (count - 1) for j in range(count)] if count > 1 else [0.0]
    return [(at_fraction(line_a, lengths_a, f), at_fraction(line_b, lengths_b, f)) for f in fractions]


def key_guides(keys: list[tuple[str, object, tuple[int, int]]]) -> dict[str, list[list[float]]]:
    """Point pairs per gap for the worker, from (strip name, Guide Mask or None, image size) per key.

    Gap g maps to [[x0, y0, x1, y1], ...]: points on key g and key g + 1, in pixels of the first
    key's size, x right and y down, with the top-left pixel's centre at (0, 0). Refuses a stroke
    drawn on one key only, strokes that do not pair up, and one Mask shared by neighbouring keys.
    """
    first_width, first_height = keys[0][2]
    strokes = []
    for name, mask, (width, height) in keys:
        if mask is not None and not width:
            raise strip_io.StripInputError(f"The size of '{name}' is unknown, so its Guide Mask cannot be placed")
        strokes.append(layer_strokes(mask, width, height) if mask is not None else {})
    for index, (name, mask, _) in enumerate(keys):
        neighbours = [keys[j] for j in (index - 1, index + 1) if 0 <= j < len(keys)]
        for other_name, other_mask, _ in neighbours:
            if mask is not None and mask == other_mask:
                raise strip_io.StripInputError(
                    f"'{name}' and '{other_name}' use the same Guide Mask '{mask.name}'; draw each key's guide "
                    "strokes in a Mask of its own, over that key")
        for stroke in strokes[index]:
            if not any(stroke in strokes[j] for j in (index - 1, index + 1) if 0 <= j < len(keys)):
                keys_named = " or ".join(f"'{other[0]}'" for other in neighbours)
                raise strip_io.StripInputError(
                    f"The guide stroke '{stroke}' is drawn only on '{name}' (Guide Mask '{mask.name}'): draw a layer "
                    f"named '{stroke}' in the Guide Mask of {keys_named} too, or delete it")

    def first_key_pixels(point, size) -> list[float]:
        return [point[0] * first_width / size[0] - 0.5, point[1] * first_height / size[1] - 0.5]

    guides = {}
    for gap in range(len(keys) - 1):
        pairs = []
        for stroke in sorted(strokes[gap].keys() & strokes[gap + 1].keys()):
            lines_a, lines_b = strokes[gap][stroke], strokes[gap + 1][stroke]
            if len(lines_a) != len(lines_b):
                raise strip_io.StripInputError(
                    f"The guide stroke '{stroke}' has {len(lines_a)} spline(s) on '{keys[gap][0]}' but "
                    f"{len(lines_b)} on '{keys[gap + 1][0]}'; its splines pair up in order, so draw as many on both")
            for line_a, line_b in zip(lines_a, lines_b):
                pairs += [first_key_pixels(a, keys[gap][2]) + first_key_pixels(b, keys[gap + 1][2])
                          for a, b in point_pairs(line_a, line_b)]
        if pairs:
            guides[str(gap)] = pairs
    return guides
