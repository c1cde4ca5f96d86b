"""Retime mode, scene cuts and repeated frames, on real Blender with the real worker.

The cross-fade model needs no weights, so every output frame has a value
known in advance: which frames were paired, and at what t.
"""
import os

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER, SHARED, needs_shared
from helpers import Unchanged, gradient_image, render_movie
from nn.imageio import ImageFormat, read_image, write_image

compat = FRAMEWEAVER.operators.compat
inbetween = FRAMEWEAVER.operators.inbetween
PNG = ImageFormat(".png", "uint16", 3)


def write_clip(folder, frames):
    """An image sequence clip_0000.png... from float pictures."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for index, pixels in enumerate(frames):
        paths.append(os.path.join(folder, f"clip_{index:04d}.png"))
        write_image(paths[-1], pixels, PNG)
    return paths


def add_sequence(scene, paths, start=1):
    strip = compat.strips(scene.sequence_editor).new_image(
        name="clip", filepath=paths[0], channel=1, frame_start=start)
    for path in paths[1:]:
        strip.elements.append(os.path.basename(path))
    strip.select = True
    return strip


def result_frames(strip):
    folder = bpy.path.abspath(strip.directory)
    return [read_image(os.path.join(folder, e.filename))[0] for e in strip.elements]


def retime(seq_ctx, scene, **options):
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_generate_inbetweens(model="blend", mode="RETIME", **options) == {"FINISHED"}
    return scene.sequence_editor.active_strip


def moving(count, step=3.0):
    return [gradient_image(48, 64, channels=3, shift=i * step) for i in range(count)]


def test_plan_retime_times_every_output_frame():
    plan = inbetween.plan_retime(frame_start=5, source_frames=3, ratio=2.0)
    assert plan.frames == [(0, 1, 0.0), (0, 1, 0.5), (1, 2, 0.0), (1, 2, 0.5), (2, 2, 0.0), (2, 2, 0.0)]
    fps = inbetween.plan_retime(frame_start=1, source_frames=4, ratio=60 / 24)
    assert len(fps.frames) == 10 and fps.frames[1] == (0, 1, pytest.approx(0.4))


def test_retime_doubles_an_image_sequence(scene, seq_ctx, tmp_path):
    source = moving(4)
    add_sequence(scene, write_clip(str(tmp_path / "clip"), source), start=3)
    strip = retime(seq_ctx, scene, retime_rate="2")
    assert (compat.left_handle(strip), compat.right_handle(strip), strip.channel) == (3, 11, 2)
    frames = result_frames(strip)
    assert len(frames) == 8
    np.testing.assert_allclose(frames[2], source[1], atol=1e-4)  # source frames pass through
    np.testing.assert_allclose(frames[3], (source[1] + source[2]) / 2, atol=2e-4)  # t = 0.5 between them
    np.testing.assert_allclose(frames[7], source[3], atol=1e-4)  # the last frame is held to fill the duration


def test_retime_a_movie_strip(scene, seq_ctx, tmp_path):
    movie = compat.strips(scene.sequence_editor).new_movie(
        name="movie", filepath=render_movie(scene, str(tmp_path), frames=3), channel=1, frame_start=1)
    movie.select = True
    strip = retime(seq_ctx, scene, retime_rate="2")
    frames = result_frames(strip)
    assert len(frames) == 6 and frames[0].shape == (64, 96, 3)
    assert frames[2].mean() != frames[0].mean()  # the movie's own frames, in order
    decoded = os.path.join(bpy.path.abspath(strip.directory), FRAMEWEAVER.operators.strip_io.DECODED_FOLDER)
    assert not os.path.exists(decoded)  # decoded movie frames cleaned up


def test_retime_to_a_target_fps(scene, seq_ctx, tmp_path):
    scene.render.fps, scene.render.fps_base = 24, 1.0
    add_sequence(scene, write_clip(str(tmp_path / "clip"), moving(4)))
    strip = retime(seq_ctx, scene, retime_rate="FPS", target_fps=60.0)
    assert len(strip.elements) == 10  # 4 frames at 24 fps last as long as 10 at 60 fps


def test_target_fps_below_the_scene_rate_is_refused(scene, seq_ctx, tmp_path):
    scene.render.fps = 30
    add_sequence(scene, write_clip(str(tmp_path / "clip"), moving(3)))
    with Unchanged(scene, tmp_path), seq_ctx(scene), pytest.raises(RuntimeError, match="not above the scene's 30 fps"):
        bpy.ops.sequencer.frameweaver_generate_inbetweens(model="blend", mode="RETIME", retime_rate="FPS", target_fps=25)


def test_retime_needs_one_clip(scene, seq_ctx, tmp_path):
    paths = write_clip(str(tmp_path / "clip"), moving(2))
    add_sequence(scene, paths[:1], start=1)
    add_sequence(scene, paths[1:], start=10)
    with seq_ctx(scene), pytest.raises(RuntimeError, match="exactly one image-sequence or movie strip"):
        bpy.ops.sequencer.frameweaver_generate_inbetweens(model="blend", mode="RETIME")


def other_shot(shift):
    """A different scene: other colours, other layout."""
    pixels = 1.0 - gradient_image(48, 64, channels=3, shift=shift)[::-1] * [0.3, 1.0, 0.5]
    return np.ascontiguousarray(pixels, dtype=np.float32)


def test_a_cut_is_held_not_morphed_and_reported(scene, seq_ctx, tmp_path, capsys):
    source = moving(2) + [other_shot(0.0), other_shot(3.0)]
    add_sequence(scene, write_clip(str(tmp_path / "clip"), source))
    frames = result_frames(retime(seq_ctx, scene, retime_rate="4"))
    np.testing.assert_allclose(frames[1], source[0] * 0.75 + source[1] * 0.25, atol=2e-4)  # within a shot: moves
    for index, expected in ((5, source[1]), (6, source[2]), (7, source[2])):  # across the cut: held
        np.testing.assert_allclose(frames[index], expected, atol=1e-4)
    np.testing.assert_allclose(frames[9], source[2] * 0.75 + source[3] * 0.25, atol=2e-4)
    assert "Scene cut between 'frame 2' → 'frame 3': not morphed" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["BLEND", "IGNORE"])
def test_a_cut_cross_fades_or_morphs_on_request(scene, seq_ctx, tmp_path, local_weights, mode):
    source = moving(1) + [other_shot(0.0)]
    add_sequence(scene, write_clip(str(tmp_path / "clip"), source))
    with seq_ctx(scene):
        bpy.ops.sequencer.frameweaver_generate_inbetweens(model="rife-v4.25", mode="RETIME", cuts=mode)
    middle = result_frames(scene.sequence_editor.active_strip)[1]
    distance = np.abs(middle - (source[0] + source[1]) / 2).max()
    assert (distance < 2e-4) == (mode == "BLEND"), distance  # BLEND: exactly the dissolve; IGNORE: the network's


def test_repeated_frames_are_timed_over(scene, seq_ctx, tmp_path):
    first, second = moving(2, step=6.0)
    source = [first, first.copy(), second]  # a stutter: the middle frame repeats the first
    add_sequence(scene, write_clip(str(tmp_path / "clip"), source))
    frames = result_frames(retime(seq_ctx, scene, retime_rate="2"))
    for index, t in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):  # one even move from 0 to 2, not hold-then-jump
        np.testing.assert_allclose(frames[index], first * (1 - t) + second * t, atol=2e-4)


def test_cut_detection_on_synthetic_pictures():
    import torch

    from nn.inbetween import cuts

    view = lambda pixels: torch.from_numpy(pixels).permute(2, 0, 1)[None]  # noqa: E731
    a, moved = (cuts.thumbnail(view(gradient_image(72, 128, 3, shift=s))) for s in (0.0, 9.0))
    other = cuts.thumbnail(view(np.ascontiguousarray(1.0 - gradient_image(72, 128, 3)[::-1] * [0.3, 1.0, 0.5],
                                                     dtype=np.float32)))
    assert not cuts.compare(a, moved).is_cut and not cuts.compare(a, moved).is_duplicate
    assert cuts.compare(a, other).is_cut
    assert cuts.compare(a, a).is_duplicate
    assert cuts.distinct_positions([a, a, moved, moved, other]) == [0, 2, 4]
    assert cuts.remap_over_duplicates(1.0, [0, 2, 4]) == (0, 2, 0.5)
    assert cuts.remap_over_duplicates(5.0, [0, 2, 4]) == (4, 4, 0.0)


@needs_shared()
@pytest.mark.torch
def test_the_five_cuts_of_bikes_are_found_and_nothing_else(scene, tmp_path):
    """bikes.mp4 (640x272, 250 frames) has hard cuts after frames 29, 75, 136, 186 and 241."""
    import torch

    from nn.inbetween import cuts

    strip_io = FRAMEWEAVER.operators.strip_io
    movie = compat.strips(scene.sequence_editor).new_movie(
        name="bikes", filepath=str(SHARED / "data" / "video" / "bikes.mp4"), channel=1, frame_start=0)
    frames = strip_io.movie_frames(movie, str(tmp_path / "frames"))
    assert len(frames) == 250
    views = [torch.from_numpy(read_image(path)[0]).permute(2, 0, 1)[None] for _, path in frames]
    thumbnails = [cuts.thumbnail(v) for v in views]
    found = [i for i in range(249) if cuts.compare(thumbnails[i], thumbnails[i + 1]).is_cut]
    assert found == [29, 75, 136, 186, 241]


def test_banded_warp_equals_whole_frame_warp(monkeypatch):
    import torch

    from nn.motion import rife as models

    frames = [torch.from_numpy(gradient_image(50, 40, 4, shift=s)).permute(2, 0, 1)[None] for s in (0, 5)]
    flow = torch.randn(1, 4, 50, 40) * 3
    mask = torch.rand(1, 1, 50, 40)
    whole = models.Interpolator.synthesize(*frames, flow, mask)
    monkeypatch.setattr(models, "WARP_BAND_PIXELS", 40 * 7)  # bands of 7 rows, the last one short
    assert torch.equal(models.Interpolator.synthesize(*frames, flow, mask), whole)
