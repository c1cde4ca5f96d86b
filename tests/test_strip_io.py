"""Compatibility shims and reading frames from image-sequence and movie strips, on real Blender."""
import os
import warnings

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER
from helpers import image_sequence, render_movie
from nn.imageio import read_image

compat = FRAMEWEAVER.operators.compat
strip_io = FRAMEWEAVER.operators.strip_io


def test_compat_shims(scene):
    editor = scene.sequence_editor
    strip, _ = image_sequence(scene, bpy.path.abspath("//"))
    assert list(compat.strips(editor)) == [strip] and list(compat.all_strips(editor)) == [strip]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # 5.1+ warns of the timing properties that go in 6.0
        assert (compat.left_handle(strip), compat.right_handle(strip), compat.content_start(strip)) == (3, 7, 3)
        compat.set_duration(strip, 2)
        assert compat.right_handle(strip) == 5
    assert compat.sequencer_scene(bpy.context) == scene  # 5.0+: no workspace scene headless; falls back
    assert compat.selected_strips(scene) == [strip]


def test_image_frames_in_timeline_order(scene, tmp_path):
    strip, paths = image_sequence(scene, str(tmp_path))
    assert strip_io.image_frames(strip) == [(3 + i, p) for i, p in enumerate(paths)]


def test_movie_frames_match_the_source_frames(scene, tmp_path):
    movie_path = render_movie(scene, str(tmp_path), frames=4)
    movie = compat.strips(scene.sequence_editor).new_movie(name="clip", filepath=movie_path, channel=1, frame_start=10)
    out = tmp_path / "extracted"
    out.mkdir()
    frames = strip_io.movie_frames(movie, str(out))
    assert [f for f, _ in frames] == [10, 11, 12, 13]
    for index, (_, path) in enumerate(frames):
        pixels, fmt = read_image(path)
        assert fmt.pixel_type == "uint16" and pixels.shape == (64, 96, 3)
        expected = read_image(str(tmp_path / f"f_{index:04d}.png"))[0]
        assert np.abs(pixels - expected).mean() < 0.02  # H.264 works in YUV, so not bit-exact


def test_wrong_strip_kind_is_named(scene, tmp_path):
    strip, _ = image_sequence(scene, str(tmp_path))
    with pytest.raises(strip_io.StripInputError, match="'seq' is a image strip, not a movie strip"):
        strip_io.movie_frames(strip, str(tmp_path))


def test_new_job_folder_never_reuses(tmp_path):
    first = strip_io.new_job_folder(str(tmp_path), "inbetween A/B")
    second = strip_io.new_job_folder(str(tmp_path), "inbetween A/B")
    assert os.path.basename(first) == "inbetween_A_B" and os.path.basename(second) == "inbetween_A_B_2"
