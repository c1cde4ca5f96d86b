"""The motion field drawn as arrows over the still, so users check the motion before rendering."""
from __future__ import annotations

import numpy as np

ARROW_SPACING = 24  # pixels between arrows
LONGEST_ARROW = 0.8  # of the spacing, for the fastest motion
ARROW_COLOUR = np.array([1.0, 0.85, 0.1], np.float32)


def _draw_segment(canvas: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
    steps = int(np.ceil(np.abs(end - start).max())) + 1
    points = np.round(start + np.linspace(0.0, 1.0, steps)[:, None] * (end - start)).astype(int)
    height, width = canvas.shape[:2]
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    canvas[points[inside, 1], points[inside, 0]] = ARROW_COLOUR


def field_arrows(still: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """(H, W, 3) picture: the still's colour, dimmed, with one arrow per grid cell that moves.

    ``velocity`` is (2, H, W) in pixels per frame; arrow lengths are scaled to the fastest.
    """
    canvas = np.ascontiguousarray(still[..., :3] * 0.6, dtype=np.float32)
    if canvas.shape[-1] == 1:
        canvas = np.repeat(canvas, 3, -1)
    height, width = canvas.shape[:2]
    fastest = float(np.linalg.norm(velocity, axis=0).max())
    if fastest == 0:
        return canvas
    gain = LONGEST_ARROW * ARROW_SPACING / fastest
    for y in range(ARROW_SPACING // 2, height, ARROW_SPACING):
        for x in range(ARROW_SPACING // 2, width, ARROW_SPACING):
            move = velocity[:, y, x] * gain
            if np.hypot(*move) < 1.0:
                continue
            start, end = np.array([x, y], np.float64), np.array([x, y], np.float64) + move
            _draw_segment(canvas, start, end)
            back = -move / np.hypot(*move) * min(5.0, np.hypot(*move) / 2)
            for angle in (0.5, -0.5):  # the arrowhead: two short strokes back from the tip
                rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
                _draw_segment(canvas, end, end + rotation @ back)
    return canvas
