"""Key Motion end to end on real Blender: operator -> worker -> strip, with timing, guide strokes and identical keys.

Key Motion (model "keymotion") estimates motion with the RIFE networks' flow, so these use the
reference checkpoints in ../shared/weights, as test_inbetween_models.py does. The keys are small
RGBA pictures whose true inbetweens are known: a textured square sliding over transparency.
"""
import os

import bpy
import numpy as np

from conftest import FRAMEWEAVER
from helpers import add_key_strips, gradient_image, guide_mask
from nn.imageio import ImageFormat, read_image, write_image

timing = FRAMEWEAVER.operators.timing
WIDTH, HEIGHT, SIDE = 96, 64, 14
RGBA = ImageFormat(".png", "uint8", 4)


def square_key(folder, name, left):
    """A textured square, SIDE pixels across, with its left edge at ``left``, over transparency."""
    pixels = np.zeros((HEIGHT, WIDTH, 4), np.float32)
    top = (HEIGHT - SIDE) // 2
    pixels[top:top + SIDE, left:left + SIDE, :3] = gradient_image(SIDE, SIDE, channels=3)
    pixels[top:top + SIDE, left:left + SIDE, 3] = 1.0
    path = os.path.join(folder, f"{name}.png")
    write_image(path, pixels, RGBA)
    return path


def frames_of(strip):
    folder = bpy.path.abspath(strip.directory)
    return [read_image(os.path.join(folder, e.filename))[0] for e in strip.elements]


def square_left(frame) -> float:
    """Where the square's left edge is, from the alpha-weighted centre of the frame."""
    alpha = frame[..., 3]
    return float((alpha.sum(0) * np.arange(WIDTH)).sum() / alpha.sum()) - (SIDE - 1) / 2


def test_identical_keys_are_held_and_reported(scene, seq_ctx, tmp_path, local_weights, capsys):
    path = square_key(str(tmp_path), "pose", 20)
    strips = add_key_strips(scene, [path] * 3, starts=[1, 5, 9])
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_generate_inbetweens(model="keymotion") == {"FINISHED"}
    assert "Warning: All keyframes are identical: wrote holds" in capsys.readouterr().out
    frames = frames_of(scene.sequence_editor.active_strip)
    assert len(frames) == 9 and all(np.array_equal(frame, read_image(path)[0]) for frame in frames)
    assert len(strips) == 3


def test_key_motion_crosses_a_large_gap_along_the_guides(scene, seq_ctx, tmp_path, local_weights):
    start, end, gap = 8, 72, 7  # 64 pixels in 8 steps: far beyond what per-t RIFE follows
    keys = [square_key(str(tmp_path), "a", start), square_key(str(tmp_path), "b", end)]
    strips = add_key_strips(scene, keys, starts=[1, 2 + gap])
    top, bottom = (HEIGHT - SIDE) // 2, (HEIGHT + SIDE) // 2
    for strip, left in zip(strips, (start, end)):  # the square's left and right sides, on each key
        strip.frameweaver.guide_mask = guide_mask(
            f"guides {strip.name}", {"left side": [[(left, top), (left, bottom)]],
                                     "right side": [[(left + SIDE, top), (left + SIDE, bottom)]]},
            size=(WIDTH, HEIGHT))
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_generate_inbetweens(model="keymotion") == {"FINISHED"}
    frames = frames_of(scene.sequence_editor.active_strip)
    assert len(frames) == gap + 2
    key_alpha = read_image(keys[0])[0][..., 3].sum()
    for j, frame in enumerate(frames[1:-1], start=1):
        t = j / (gap + 1)
        assert abs(square_left(frame) - (start + t * (end - start))) < 2.0, (j, square_left(frame))
        assert abs(frame[..., 3].sum() - key_alpha) < 0.15 * key_alpha  # one square, no ghost of it


def test_key_motion_follows_the_gap_timing(scene, seq_ctx, tmp_path, local_weights):
    start, end, gap = 16, 48, 5
    keys = [square_key(str(tmp_path), "a", start), square_key(str(tmp_path), "b", end)]
    add_key_strips(scene, keys, starts=[1, 2 + gap])
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_generate_inbetweens(model="keymotion", timing="EASE_IN_OUT") == {"FINISHED"}
    frames = frames_of(scene.sequence_editor.active_strip)
    for j, frame in enumerate(frames[1:-1], start=1):
        done = timing.EASES["EASE_IN_OUT"](j / (gap + 1))
        assert abs(square_left(frame) - (start + done * (end - start))) < 1.5, (j, square_left(frame))
