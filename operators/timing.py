"""Timing of the inbetweens in a gap, as animators chart it: how far the motion has got at each inbetween.

A timing maps the time through a gap (x: 0 at the first key, 1 at the next) to the fraction of the
gap's motion shown then (y, the t that the worker interpolates at). The eases are Blender's quadratic
F-curve easings, so *Ease In* starts slowly out of the first key, as it does in the Graph Editor.
Pure Python, no bpy: scripts pass a custom curve as (x, y) points, and the UI samples its curve
widget into points the same way.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Callable

from ..nn import values

TIMINGS = [
    ("EVEN", "Even", "Even spacing: the motion runs at one speed through the gap"),
    ("EASE_IN", "Ease In", "Starts slowly out of the first key and speeds up: spacing close near the first key"),
    ("EASE_OUT", "Ease Out", "Leaves the first key fast and slows into the next: spacing close near the next key"),
    ("EASE_IN_OUT", "Ease In-Out", "Slow out of the first key and into the next, fastest mid-gap"),
    ("CUSTOM", "Custom", "Spacing from the custom timing curve: time through the gap across, motion done up"),
]

EASES: dict[str, Callable[[float], float]] = {  # Blender's QUAD easings (the F-curve Ease In/Out menu)
    "EVEN": lambda x: x,
    "EASE_IN": lambda x: x * x,
    "EASE_OUT": lambda x: 1 - (1 - x) ** 2,
    "EASE_IN_OUT": lambda x: 2 * x * x if x < 0.5 else 1 - 2 * (1 - x) ** 2,
}

# Blender's curve widget with automatic handles overshoots a level stretch by up to about 1%;
# clipped to 0..1 its dips stay under this, and such dips are levelled rather than refused.
LEVEL_TOLERANCE = 0.005


class TimingError(ValueError):
    """A timing that cannot be used; the message says why, for the user."""


def custom_curve(points) -> Callable[[float], float]:
    """The timing through (x, y) points, straight between them and level beyond the ends.

    Refuses points out of order, values outside 0..1 and a curve that runs backwards: that would
    move the inbetweens back towards the first key, which no spacing chart means.
    """
    points = values.check_curve_points(points)
    if len(points) < 2:
        raise TimingError("A custom timing curve needs at least two (x, y) points, e.g. [(0, 0), (1, 1)]")
    xs, ys = [x for x, _ in points], [y for _, y in points]
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise TimingError("The custom timing curve's points must be in order of x (time through the gap), "
                          "each x larger than the one before")
    highest = 0
    for index in range(1, len(ys)):
        if ys[index] < ys[highest] - LEVEL_TOLERANCE:
            lowest = index
            while lowest + 1 < len(ys) and ys[lowest + 1] < ys[lowest]:  # to the foot of the fall
                lowest += 1
            raise TimingError(
                f"The custom timing curve runs backwards between x = {xs[highest]:.2f} and x = {xs[lowest]:.2f} "
                f"(it falls from {ys[highest]:.2f} to {ys[lowest]:.2f}): the inbetweens would move back towards "
                "the first key. Make the curve rise, or stay level for a hold, from left to right")
        if ys[index] > ys[highest]:
            highest = index
    level = [max(ys[: index + 1]) for index in range(len(ys))]  # small automatic-handle dips, levelled

    def timing(x: float) -> float:
        index = bisect_right(xs, x)
        if index == 0:
            return level[0]
        if index == len(xs):
            return level[-1]
        x0, x1 = xs[index - 1], xs[index]
        return level[index - 1] + (level[index] - level[index - 1]) * (x - x0) / (x1 - x0)

    return timing


def gap_timings(names: list[str], curve_points=None) -> list[Callable[[float], float]]:
    """One timing function per gap from each gap's timing name; the custom ones share ``curve_points``."""
    custom = custom_curve(curve_points) if curve_points is not None and "CUSTOM" in names else None
    functions = []
    for name in names:
        if name == "CUSTOM":
            if custom is None:
                raise TimingError("Custom timing needs a curve: press 'Add Timing Curve' in the Inbetweens panel, "
                                  "or pass timing_curve=[(x, y), ...] in a script")
            functions.append(custom)
        elif name in EASES:
            functions.append(EASES[name])
        else:
            raise TimingError(f"Unknown timing '{name}'; use one of {', '.join(t[0] for t in TIMINGS)}")
    return functions


def retime_frames(frames: list[tuple[int, int, float]], timings: list[Callable[[float], float]]) -> list:
    """Each inbetween (key_a, key_a + 1, t) of a keyframe plan moves to its gap's timing of t.

    A timing that reaches a key (a hold at either end of a custom curve) shows that key itself.
    """
    timed = []
    for a, b, t in frames:
        if a == b:
            timed.append((a, b, t))
            continue
        y = timings[a](t)
        timed.append((a, a, 0.0) if y <= 0 else (b, b, 0.0) if y >= 1 else (a, b, y))
    return timed


CURVE_NODE = "ShaderNodeFloatCurve"
CURVE_SAMPLES = 257  # every 1/256 of the gap: finer than any gap has frames


def curve_node(node_group):
    """The Float Curve node that holds a timing curve (made by Add Timing Curve), or None."""
    return next((node for node in node_group.nodes if node.bl_idname == CURVE_NODE), None)


def curve_points(source) -> list[tuple[float, float]] | None:
    """(x, y) points of a custom timing: given as points, or sampled from a node group's curve widget."""
    if source is None or not hasattr(source, "nodes"):
        return source
    node = curve_node(source)
    if node is None:
        raise TimingError(f"The timing curve '{source.name}' has no Float Curve node; press 'Add Timing Curve'")
    mapping = node.mapping
    mapping.initialize()
    curve = mapping.curves[0]
    samples = [(i / (CURVE_SAMPLES - 1), mapping.evaluate(curve, i / (CURVE_SAMPLES - 1))) for i in range(CURVE_SAMPLES)]
    return [(x, min(max(y, 0.0), 1.0)) for x, y in samples]  # the widget clips what it shows to 0..1
