"""Run on Farm from headless Blender (operators/farm_job.py, ray_jobs.py): the Ray Jobs REST API of a real
two-node cluster on 127.0.0.1, token authentication on. No mocks: the job runs on the cluster and the
strip is made from its frames; Cancel stops the Ray job; Collect Farm Job works after the .blend is reopened.
"""
import json
import os
import time

import bpy
import pytest

from conftest import FRAMEWEAVER
from helpers import Unchanged, add_key_strips, gradient_image, write_keyframes
from nn.imageio import ImageFormat, read_image, write_image

compat = FRAMEWEAVER.operators.compat
job_runner, ray_jobs = FRAMEWEAVER.operators.job_runner, FRAMEWEAVER.operators.ray_jobs


@pytest.fixture
def farm(ray_cluster, monkeypatch):
    """The cluster's dashboard as the Ray address in the preferences; the token where Ray's own tools look."""
    prefs = bpy.context.preferences.addons[FRAMEWEAVER.__name__].preferences
    prefs.farm_address = f"http://127.0.0.1:{ray_cluster.dashboard_port}"
    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_cluster.token)
    yield ray_cluster
    prefs.farm_address = ""


def strip_frames(strip) -> list:
    return [read_image(os.path.join(bpy.path.abspath(strip.directory), e.filename))[0] for e in strip.elements]


def wait_for_ray_job(client, job_id, states, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.status(job_id)["status"]
        if status in states:
            return status
        time.sleep(0.5)
    raise AssertionError(f"the Ray job stayed {status}")


def test_run_on_farm_makes_the_same_strip_as_a_local_run(fw, farm, scene, tmp_path, local_weights):
    add_key_strips(scene, write_keyframes(str(tmp_path), count=3), starts=[1, 5, 9])
    local = fw.generate_inbetweens(scene, model="rife-v4.25")
    for strip in compat.all_strips(scene.sequence_editor):
        strip.select = strip.channel == 1
    on_farm = fw.generate_inbetweens(scene, model="rife-v4.25", farm=True)
    assert (compat.left_handle(on_farm), compat.right_handle(on_farm)) == (1, 10) and len(on_farm.elements) == 9
    assert on_farm.channel == local.channel + 1
    for ours, theirs in zip(strip_frames(on_farm), strip_frames(local)):
        assert (ours == theirs).all()
    assert scene.frameweaver.farm_job == ""  # collected: nothing left to collect
    bpy.ops.wm.save_mainfile()
    with open(bpy.data.filepath, "rb") as f:
        assert farm.token.encode() not in f.read()  # the token is in no .blend
    spec = [os.path.join(r, n) for r, _, ns in os.walk(tmp_path / "frameweaver") for n in ns if n == "spec.json"]
    assert not spec  # working files go once the strip is made


def test_a_farm_job_is_collected_after_the_blend_is_reopened(fw, farm, scene, tmp_path, seq_ctx):
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 6])
    scene_job = fw.operators.inbetween.prepare(scene, model="blend", farm=True)
    record = json.loads(scene.frameweaver.farm_job)
    assert set(record) == {"id", "address", "title", "folder", "timeline", "channel", "frame_start"}
    assert farm.token not in scene.frameweaver.farm_job
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.read_homefile(use_empty=True)  # Blender closes the file; the farm goes on
    client = ray_jobs.RayJobs(record["address"])
    assert wait_for_ray_job(client, record["id"], {"SUCCEEDED", "FAILED", "STOPPED"}) == "SUCCEEDED"
    del scene_job
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "test.blend"))
    reopened = bpy.context.scene
    with seq_ctx(reopened):
        assert bpy.ops.sequencer.frameweaver_collect_farm_job() == {"FINISHED"}
    strip = reopened.sequence_editor.active_strip
    assert (compat.left_handle(strip), compat.right_handle(strip), len(strip.elements)) == (1, 7, 6)
    assert reopened.frameweaver.farm_job == ""


def test_cancel_stops_the_ray_job_and_leaves_nothing(fw, farm, scene, tmp_path, local_weights):
    keys = []
    for index in range(4):
        keys.append(str(tmp_path / f"big_{index}.png"))
        write_image(keys[-1], gradient_image(192, 320, channels=3, shift=6.0 * index), ImageFormat(".png", "uint8", 3))
    add_key_strips(scene, keys, starts=[1, 12, 23, 34])
    with Unchanged(scene, tmp_path / "frameweaver"):
        scene_job = fw.operators.inbetween.prepare(scene, model="rife-v4.25", farm=True)
        record = json.loads(scene.frameweaver.farm_job)
        deadline = time.monotonic() + 90
        while scene_job.job.poll() and scene_job.job.fraction == 0.0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scene_job.job.state == "RUNNING" and scene_job.job.fraction > 0, scene_job.job.message
        scene_job.cancel()
        with pytest.raises(job_runner.JobFailed, match="cancelled; nothing was changed"):
            scene_job.complete()
        assert scene.frameweaver.farm_job == ""
    client = ray_jobs.RayJobs(record["address"])
    assert wait_for_ray_job(client, record["id"], {"STOPPED", "FAILED", "SUCCEEDED"}, 15) == "STOPPED"
    assert not os.path.exists(record["folder"])


@pytest.mark.parametrize("token", ["wrong", None])
def test_a_wrong_or_missing_token_is_refused_and_nothing_changes(fw, farm, scene, tmp_path, monkeypatch, token):
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 6])
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    if token:
        monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 32)
    else:
        monkeypatch.delenv("RAY_AUTH_TOKEN")
    expected = "the token in RAY_AUTH_TOKEN" if token else "no token"
    with Unchanged(scene, tmp_path), pytest.raises(ray_jobs.FarmUnavailable, match=f"refused {expected}"):
        fw.generate_inbetweens(scene, model="blend", farm=True)
    assert scene.frameweaver.farm_job == ""


def test_a_loop_run_on_the_farm_equals_the_loop_task_run_here(fw, farm, scene, seq_ctx, tmp_path, one_thread):
    import torch

    from nn.loop import task
    from nn.worker import TaskContext
    from test_loop_operator import motion_mask, still

    still(scene, str(tmp_path))
    motion_mask()
    with seq_ctx(scene):
        assert bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=10, speed=1.5, farm=True) == {"FINISHED"}
    on_farm = scene.sequence_editor.active_strip
    assert on_farm.name == "Loop still" and len(on_farm.elements) == 10 and compat.left_handle(on_farm) == 1
    # The same job's parameters, rendered here by the worker task: the frames must match bit for bit.
    scene.sequence_editor.active_strip = None
    for strip in compat.all_strips(scene.sequence_editor):
        strip.select = strip.name == "still"
    scene_job = fw.operators.loop.prepare(scene, mask=bpy.data.masks["waves"], frames=10, speed=1.5)
    scene_job.cancel()  # only its parameters are wanted
    with pytest.raises(job_runner.JobFailed, match="cancelled"):
        scene_job.complete()
    params = {**scene_job.job.params, "output_dir": str(tmp_path / "here")}
    outputs, _ = task.run(params, TaskContext(torch.device("cpu"), False))
    for ours, path in zip(strip_frames(on_farm), outputs):
        assert (ours == read_image(path)[0]).all()


def test_what_runs_on_one_machine_is_not_sent_to_the_farm(fw, farm, scene, seq_ctx, tmp_path):
    from test_loop_operator import motion_mask, still

    still(scene, str(tmp_path))
    motion_mask()
    with Unchanged(scene, tmp_path), seq_ctx(scene):
        with pytest.raises(RuntimeError, match="Turn Layers off to run on the farm"):
            bpy.ops.sequencer.frameweaver_animate_loop(mask="waves", frames=10, layers=True, farm=True)
        with pytest.raises(RuntimeError, match="Run on Farm applies a trained model: train here first"):
            bpy.ops.sequencer.frameweaver_train_propagate(footage="still", farm=True)


def test_install_pytorch_offers_farm_support_with_the_ray_the_tests_run():
    from importlib.metadata import version

    install_torch = FRAMEWEAVER.operators.install_torch
    assert not any(part.startswith("ray") for part in install_torch.pip_command("cpu"))
    assert f"ray[default]=={version('ray')}" in install_torch.pip_command("cpu", farm=True)
    with pytest.raises(RuntimeError, match=r"Online access is off.*ray\[default\]==2\.60\.0"):
        bpy.ops.frameweaver.install_torch(farm=True)  # headless Blender is offline: the command to run by hand
