"""Generative inbetweens and loops in real headless Blender, through the scripting API and the job core,
on the tiny random VACE pipeline (tests/tiny_vace.py) set as the Generative Model Folder. Its frames are
noise: these tests check the strips, files, refusals and cancel, never quality.
"""
import os

import bpy
import pytest

from conftest import FRAMEWEAVER, MODULE
from helpers import Unchanged, add_key_strips, image_sequence, moved_then_redrawn, write_keyframes
from nn.imageio import read_image
from test_faults import gone, tree_state, wait_until
from test_loop_operator import motion_mask, still

compat = FRAMEWEAVER.operators.compat
jobs = FRAMEWEAVER.operators.jobs


@pytest.fixture
def generative_prefs(tiny_vace):
    """The tiny pipeline as the Generative Model Folder, allowed on this GPU-less machine."""
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.generative_model_dir, prefs.generative_on_cpu = tiny_vace, True
    yield prefs
    prefs.generative_model_dir, prefs.generative_on_cpu = "", False


def strip_files(strip):
    return [os.path.join(bpy.path.abspath(strip.directory), element.filename) for element in strip.elements]


def test_generative_inbetweens_come_back_as_a_strip_with_the_keys_untouched(fw, scene, tmp_path, generative_prefs):
    keys = write_keyframes(str(tmp_path), count=3, step=6.0)  # RGBA
    before = {path: open(path, "rb").read() for path in keys}
    strips = add_key_strips(scene, keys, starts=[1, 5, 9])
    made = [fw.generate_inbetweens(scene, strips=strips, model="generative", steps=2, seed=seed, prompt="the sea")
            for seed in (7, 7)]
    for strip in made:
        assert compat.left_handle(strip) == 1 and compat.right_handle(strip) == 10  # frames 1..9, one each
        files = strip_files(strip)
        assert len(files) == 9 and all(read_image(path)[0].shape == (48, 64, 4) for path in files)
    first, second = (strip_files(strip) for strip in made)
    assert [open(p, "rb").read() for p in first] == [open(p, "rb").read() for p in second]  # same seed, same frames
    assert {path: open(path, "rb").read() for path in keys} == before  # keys untouched
    assert len(compat.strips(scene.sequence_editor)) == 5  # the three keys, and the two strips


def test_without_a_gpu_blender_refuses_the_generative_model_and_changes_nothing(fw, scene, tmp_path, tiny_vace):
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.generative_model_dir = tiny_vace  # weights present, the CPU not allowed (the default)
    try:
        add_key_strips(scene, write_keyframes(str(tmp_path), count=2), starts=[1, 5])
        with Unchanged(scene, tmp_path), pytest.raises(RuntimeError, match="needs a CUDA GPU and this machine has none"):
            fw.generate_inbetweens(scene, model="generative", steps=1)
    finally:
        prefs.generative_model_dir = ""


def test_retiming_a_clip_with_the_generative_model_is_refused(fw, scene, tmp_path, generative_prefs):
    image_sequence(scene, str(tmp_path))
    with Unchanged(scene, tmp_path), pytest.raises(ValueError, match="to retime a clip, use RIFE 4.25 or Key Motion"):
        fw.generate_inbetweens(scene, model="generative", mode="RETIME")


def test_a_generative_loop_in_blender_with_its_layers(fw, scene, tmp_path, generative_prefs):
    strip, pixels = still(scene, str(tmp_path))
    loop = fw.loop_still(scene, mask=motion_mask(), frames=5, motion_source="GENERATIVE", steps=1, layers=True)
    files = strip_files(loop)
    assert len(files) == 5 and read_image(files[0])[0].tobytes() == read_image(strip_io_path(strip))[0].tobytes()
    names = sorted(s.name for s in compat.strips(scene.sequence_editor))
    assert names == sorted(["still", loop.name, f"{loop.name} background", f"{loop.name} moving"])


def strip_io_path(strip):
    return os.path.join(bpy.path.abspath(strip.directory), strip.elements[0].filename)


def test_cancel_mid_denoising_stops_the_worker_and_removes_partial_frames(fw, scene, tmp_path, generative_prefs):
    add_key_strips(scene, write_keyframes(str(tmp_path), count=2, size=(96, 128)), starts=[1, 30])
    before = tree_state(tmp_path)
    scene_job = fw.operators.inbetween.prepare(scene, model="generative", steps=1000)  # the most nn/values.py allows
    job = scene_job.job
    assert wait_until(lambda: not job.poll() or "Generating: step" in job.message, 120), job.message
    assert "of 1000" in job.message
    assert "about" in job.message and "s left" in job.message  # the step, and an estimate of the time left
    job.cancel()
    with pytest.raises(RuntimeError, match="cancelled; nothing was changed"):
        scene_job.complete()
    assert job.state == jobs.Job.CANCELLED
    assert wait_until(lambda: gone(job.worker_pid))
    assert tree_state(tmp_path) == before  # no partial frame, no job folder
    assert len(compat.strips(scene.sequence_editor)) == 2


def test_auto_is_the_default_and_says_which_gaps_motion_does_not_explain(fw, scene, tmp_path, local_weights, capfd):
    strips = add_key_strips(scene, moved_then_redrawn(tmp_path), starts=[1, 4, 7])
    made = fw.generate_inbetweens(scene, strips=strips)  # the default model
    assert len(strip_files(made)) == 7
    assert ("Warning: Auto: motion does not explain the gaps between keys 2-3; the generative model would draw "
            "them, but it needs a CUDA GPU. Key Motion made them") in capfd.readouterr().err
