"""Generate Inbetweens end to end on real Blender: operator -> worker (real torch) -> one new strip.

These use the cross-fade model, which needs no weights; the RIFE models are
covered with the reference weights in test_inbetween_models.py.
"""
import os
import signal
import time

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER
from helpers import add_key_strips, colour_strip, write_keyframes
from nn.imageio import ImageFormat, read_image

compat = FRAMEWEAVER.operators.compat


def run_operator(seq_ctx, scene, **options):
    with seq_ctx(scene):
        return bpy.ops.sequencer.frameweaver_generate_inbetweens(model="blend", **options)


def strip_names(scene):
    return sorted(s.name for s in compat.all_strips(scene.sequence_editor))


def frameweaver_dir(tmp_path):
    return tmp_path / "frameweaver"


def test_operator_fills_gap_with_one_selected_strip(scene, seq_ctx, tmp_path):
    keys = write_keyframes(str(tmp_path))
    add_key_strips(scene, keys, starts=[1, 5])
    assert run_operator(seq_ctx, scene) == {"FINISHED"}

    new = [s for s in compat.all_strips(scene.sequence_editor) if s.channel == 2]
    assert len(new) == 1
    strip = new[0]
    assert (compat.left_handle(strip), compat.right_handle(strip)) == (1, 6)
    assert strip.select and scene.sequence_editor.active_strip == strip
    assert all(not s.select for s in compat.all_strips(scene.sequence_editor) if s != strip)
    files = [os.path.join(bpy.path.abspath(strip.directory), e.filename) for e in strip.elements]
    assert len(files) == 5 and all(f.startswith(str(frameweaver_dir(tmp_path))) for f in files)

    key_a, _ = read_image(keys[0])
    key_b, _ = read_image(keys[1])
    first, fmt = read_image(files[0])
    middle, _ = read_image(files[2])
    assert fmt == ImageFormat(".png", "uint8", 4)  # alpha and depth kept
    np.testing.assert_array_equal(first, key_a)  # keys pass through untouched
    np.testing.assert_allclose(middle, (key_a + key_b) / 2, atol=1 / 255 + 1e-6)  # t = 2/4 = 0.5


def test_undo_removes_the_strip(scene, seq_ctx, tmp_path):
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 4])
    bpy.ops.ed.undo_push(message="before")
    assert run_operator(seq_ctx, scene) == {"FINISHED"}
    # Headless Blender skips the undo push that the UI makes for an UNDO operator; make it here.
    bpy.ops.ed.undo_push(message="Generate Inbetweens")
    assert len(compat.all_strips(bpy.context.scene.sequence_editor)) == 3
    bpy.ops.ed.undo()
    assert len(compat.all_strips(bpy.context.scene.sequence_editor)) == 2


@pytest.mark.parametrize("fmt", [ImageFormat(".png", "uint16", 4), ImageFormat(".exr", "half", 4),
                                 ImageFormat(".exr", "float", 3)])
def test_depth_and_float_kept(scene, seq_ctx, tmp_path, fmt):
    keys = write_keyframes(str(tmp_path), fmt=fmt)
    add_key_strips(scene, keys, starts=[1, 3])
    assert run_operator(seq_ctx, scene) == {"FINISHED"}
    strip = scene.sequence_editor.active_strip
    out, out_fmt = read_image(os.path.join(bpy.path.abspath(strip.directory), strip.elements[1].filename))
    assert out_fmt == fmt
    expected = (read_image(keys[0])[0] + read_image(keys[1])[0]) / 2
    np.testing.assert_allclose(out, expected, atol=2e-3 if fmt.pixel_type == "half" else 1e-4)


def test_count_mode_and_holds(fw):
    plan_gaps, plan_count, Key = fw.operators.inbetween.plan_gaps, fw.operators.inbetween.plan_count, fw.operators.inbetween.Key
    gaps = plan_gaps([Key(1, 3), Key(5, 6), Key(10, 11)], ["a", "b", "c"])
    assert gaps.frame_start == 1
    # key a held 2 frames, 2 inbetweens at 1/3 and 2/3, key b, 4 inbetweens at 1/5..4/5, key c
    assert [gaps.frames[i] for i in gaps.timeline] == [
        (0, 0, 0.0), (0, 0, 0.0), (0, 1, 1 / 3), (0, 1, 2 / 3), (1, 1, 0.0),
        (1, 2, 0.2), (1, 2, 0.4), (1, 2, 0.6), (1, 2, 0.8), (2, 2, 0.0)]
    count = plan_count([Key(1, 2), Key(9, 10)], 3)
    assert [f[2] for f in count.frames] == [0.0, 0.25, 0.5, 0.75, 0.0] and count.timeline == [0, 1, 2, 3, 4]


def assert_unchanged(scene, names_before, tmp_path):
    assert strip_names(scene) == names_before
    root = frameweaver_dir(tmp_path)
    assert not root.exists() or not any(root.iterdir()), "no result folder may remain"


def test_wrong_strip_type_is_refused(scene, seq_ctx, tmp_path):
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    colour_strip(scene, channel=3)
    before = strip_names(scene)
    with pytest.raises(RuntimeError, match="Only image strips can be keyframes; 'Solid' is a color strip"):
        run_operator(seq_ctx, scene)
    assert_unchanged(scene, before, tmp_path)


def test_missing_file_is_reported(scene, seq_ctx, tmp_path):
    keys = write_keyframes(str(tmp_path))
    add_key_strips(scene, keys, starts=[1, 5])
    os.remove(keys[1])
    before = strip_names(scene)
    with pytest.raises(RuntimeError, match="image of 'key_01.png' is missing"):
        run_operator(seq_ctx, scene)
    assert_unchanged(scene, before, tmp_path)


def test_corrupt_file_is_reported(scene, seq_ctx, tmp_path):
    keys = write_keyframes(str(tmp_path))
    add_key_strips(scene, keys, starts=[1, 5])
    with open(keys[1], "r+b") as f:
        f.truncate(60)
    before = strip_names(scene)
    with pytest.raises(RuntimeError, match="failed:.*key_01.png"):
        run_operator(seq_ctx, scene)
    assert_unchanged(scene, before, tmp_path)


def test_fewer_than_two_and_zero_gap(scene, seq_ctx, tmp_path):
    strips = add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 2])
    before = strip_names(scene)
    with pytest.raises(RuntimeError, match="No empty frames between 'key_00.png' and 'key_01.png'"):
        run_operator(seq_ctx, scene)
    strips[1].select = False
    with pytest.raises(RuntimeError, match="Select at least two image strips"):
        run_operator(seq_ctx, scene)
    assert_unchanged(scene, before, tmp_path)


def test_size_mismatch_needs_fit(scene, seq_ctx, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_keyframes(str(tmp_path / "a"), count=1)
    second = write_keyframes(str(tmp_path / "b"), count=1, size=(40, 50))
    add_key_strips(scene, first + second, starts=[1, 4])
    before = strip_names(scene)
    with pytest.raises(RuntimeError, match="is 50x40 but the first is 64x48. Enable 'Fit to First Keyframe'"):
        run_operator(seq_ctx, scene)
    assert_unchanged(scene, before, tmp_path)
    assert run_operator(seq_ctx, scene, fit_sizes=True) == {"FINISHED"}


def test_read_only_output_folder(fw, scene, tmp_path):
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    if os.geteuid() == 0:  # root ignores permission bits; /sys refuses new folders even to root
        read_only = "/sys/frameweaver"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        read_only = str(locked / "out")
    before = strip_names(scene)
    with pytest.raises(fw.operators.strip_io.StripInputError, match="Cannot write generated frames to"):
        fw.generate_inbetweens(scene, model="blend", output_dir=read_only)
    assert strip_names(scene) == before


def many_frames_job(fw, scene, tmp_path):
    keys = write_keyframes(str(tmp_path), size=(256, 256))
    add_key_strips(scene, keys, starts=[1, 400])
    return fw.operators.inbetween.prepare(scene, model="blend")


def wait_for_first_frame(scene_job, timeout=60):
    deadline = time.time() + timeout
    while not scene_job.job.outputs and scene_job.job.fraction == 0 and time.time() < deadline:
        scene_job.job.poll()
        time.sleep(0.05)
    assert scene_job.job.fraction > 0, "the worker never reported progress"


def test_cancel_leaves_nothing(fw, scene, tmp_path):
    scene_job = many_frames_job(fw, scene, tmp_path)
    before = strip_names(scene)
    wait_for_first_frame(scene_job)
    scene_job.cancel()
    assert scene_job.job.state == "CANCELLED"
    with pytest.raises(fw.operators.job_runner.JobFailed, match="cancelled; nothing was changed"):
        scene_job.complete()
    assert strip_names(scene) == before and not os.path.exists(scene_job.folder)


def test_worker_crash_is_reported_and_blender_survives(fw, scene, tmp_path):
    scene_job = many_frames_job(fw, scene, tmp_path)
    before = strip_names(scene)
    wait_for_first_frame(scene_job)
    os.kill(scene_job.job._process._proc.pid, signal.SIGKILL)  # as the OOM killer or a driver crash would
    scene_job.job.run_to_end()
    assert scene_job.job.state == "FAILED"
    assert "worker process stopped unexpectedly (exit code -9)" in scene_job.job.error
    with pytest.raises(fw.operators.job_runner.JobFailed, match="stopped unexpectedly"):
        scene_job.complete()
    assert strip_names(scene) == before and not os.path.exists(scene_job.folder)


def test_one_job_per_scene(fw, scene, tmp_path):
    scene_job = many_frames_job(fw, scene, tmp_path)
    try:
        with pytest.raises(fw.operators.jobs.JobBusyError, match="still running in this scene"):
            fw.operators.inbetween.prepare(scene, model="blend")
    finally:
        scene_job.cancel()
        scene_job.job.poll()
    with pytest.raises(fw.operators.job_runner.JobFailed):
        scene_job.complete()
