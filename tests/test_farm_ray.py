"""Jobs on a real Ray cluster (nn/farm/ray_driver.py): two nodes on 127.0.0.1 with token authentication.

No mocks: the command lines run as users run them, Ray workers are killed with SIGKILL by their
process id, and the refusals come from the cluster itself.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from helpers import gradient_image, tree_state
from nn.imageio import ImageFormat, write_image

KEYS, SIZE = 5, (192, 320)  # 12 inbetweens at --count 3: about 0.3 s each on one CPU thread


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    paths = []
    for index in range(KEYS):
        paths.append(str(folder / f"key_{index:02d}.png"))
        write_image(paths[-1], gradient_image(*SIZE, channels=4, shift=index * 6.0), ImageFormat(".png", "uint8", 4))
    return paths


@pytest.fixture(scope="module")
def local_run(keys, tmp_path_factory, project_weights):
    """The same command without --ray (what it runs, here in-process, one thread): what the farm must reproduce."""
    import torch

    from nn.cli import PrintPaths, generative_params, task_context
    from nn.inbetween import __main__ as command
    from nn.inbetween import task

    out = tmp_path_factory.mktemp("local") / "frames"
    args = command.parse_args(inbetween_arguments(keys, out, project_weights)[3:])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ctx = task_context(args, PrintPaths)
        task.run(command.job_params(args, command.gap_times(args), generative_params(args, ctx)), ctx)
    finally:
        torch.set_num_threads(threads)
    return out


def clean_environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def inbetween_arguments(keys, out, weights, *extra) -> list[str]:
    return [sys.executable, "-m", "nn.inbetween", *keys, "--count", "3", "--model", "rife-v4.25", "--out", str(out),
            "--weights-dir", str(weights), "--offline", "--device", "cpu", *map(str, extra)]


def inbetween_command(keys, out, weights, *extra, env, timeout=120):
    return subprocess.run(inbetween_arguments(keys, out, weights, *extra), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def contents(folder) -> dict[str, bytes]:
    found = {}
    for name in os.listdir(folder):
        if os.path.isdir(os.path.join(folder, name)):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            found[name] = f.read()
    return found


def kill_a_chunk_mid_job(cluster, job, out) -> int | None:
    """SIGKILL a Ray worker running a chunk once frames are on disk; its pid, or None if the job ended first."""
    deadline = time.monotonic() + 90
    while job.poll() is None and time.monotonic() < deadline:
        running = cluster.own_processes("ray::run_chunk")
        if running and out.is_dir() and any(not n.startswith(".") for n in os.listdir(out)):
            os.kill(running[0], signal.SIGKILL)  # mid-job: frames are on disk, this chunk is still writing its own
            return running[0]
        time.sleep(0.05)
    return None


def test_a_job_whose_ray_worker_is_killed_completes_with_every_frame_once(ray_cluster, keys, local_run, tmp_path,
                                                                         project_weights):
    out = tmp_path / "farm"
    job = subprocess.Popen(inbetween_arguments(keys, out, project_weights, "--ray", ray_cluster.address,
                                               "--chunks", 3),
                           cwd=ROOT, env=clean_environment(**ray_cluster.environment), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    killed = kill_a_chunk_mid_job(ray_cluster, job, out)
    stdout, stderr = job.communicate(timeout=120)
    assert killed is not None, f"no chunk was caught running: {stderr}"
    assert job.returncode == 0, stderr
    expected = contents(local_run)
    assert len(expected) == 12
    assert contents(out) == expected  # every frame once, bit for bit the local run's, no partial file
    assert stdout.split() == [str(out / name) for name in sorted(expected)]
    assert "12 of 12 frames" in stderr.splitlines()
    assert ray_cluster.token not in stdout + stderr


def test_a_chunk_whose_worker_keeps_dying_is_named_with_its_last_error(ray_cluster, keys, tmp_path, project_weights):
    out = tmp_path / "farm"
    job = subprocess.Popen(inbetween_arguments(keys, out, project_weights, "--ray", ray_cluster.address,
                                               "--chunks", 3, "--retries", 1),
                           cwd=ROOT, env=clean_environment(**ray_cluster.environment), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    killed = set()
    deadline = time.monotonic() + 90
    while job.poll() is None and time.monotonic() < deadline:
        for pid in set(ray_cluster.own_processes("ray::run_chunk")) - killed:
            os.kill(pid, signal.SIGKILL)  # every attempt of every chunk
            killed.add(pid)
        time.sleep(0.02)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 1 and len(killed) >= 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: Chunk ") and " of 3 (frames " in last, stderr
    assert "failed after 2 attempts: its worker process died" in last
    assert not out.exists() or not [n for n in os.listdir(out) if n.startswith(".")]  # no partial frame, no marker


def test_a_node_that_cannot_see_the_output_folder_says_so(ray_cluster, keys, project_weights):
    out = ray_cluster.hidden / "frames"
    done = inbetween_command(keys, out, project_weights, "--ray", ray_cluster.address, "--chunks", 6,
                             env=clean_environment(**ray_cluster.environment))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Chunk ") and f"cannot see the output folder {out}" in last, done.stderr


def test_a_wrong_or_missing_token_and_an_address_with_no_cluster_are_refused_in_one_line(ray_cluster, keys, tmp_path,
                                                                                     project_weights):
    """Three refusals, run side by side: each one line, each within 30 s, nothing written anywhere."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening: nothing answers there
        no_token = clean_environment(HOME=str(tmp_path))  # no RAY_AUTH_TOKEN, no ~/.ray/auth_token
        cases = {
            "wrong": (ray_cluster.address, {**no_token, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 32},
                      f"error: The Ray cluster at {ray_cluster.address} refused the token in RAY_AUTH_TOKEN"),
            "missing": (ray_cluster.address, no_token,
                        f"error: The Ray cluster at {ray_cluster.address} refused no token (set RAY_AUTH_TOKEN"),
            "nowhere": (nowhere, {**no_token, **ray_cluster.environment},
                        f"error: No Ray cluster answers at {nowhere} (Connection refused)"),
        }
        before = tree_state(tmp_path)
        start = time.monotonic()
        jobs = {name: subprocess.Popen(inbetween_arguments(keys, tmp_path / name, project_weights, "--ray", address),
                                       cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for name, (address, env, _) in cases.items()}
        ended = {name: job.communicate(timeout=60) for name, job in jobs.items()}
    assert time.monotonic() - start < 30
    for name, (stdout, stderr) in ended.items():
        assert jobs[name].returncode == 1 and stdout == "" and stderr.count("\n") == 1, (name, stderr)
        assert stderr.startswith(cases[name][2]), (name, stderr)
    assert tree_state(tmp_path) == before


def test_a_retime_spec_on_the_farm_survives_a_killed_worker_and_matches_one_run(ray_cluster, tmp_path,
                                                                               project_weights, one_thread):
    """A Retime Clip spec as Blender writes it, run by ``python -m nn.farm`` and by the worker task here."""
    from test_farm_chunks import CPU, retime_params, write_spec
    from nn.inbetween import task

    local = retime_params(str(tmp_path), project_weights, tmp_path / "local")
    os.makedirs(local["output_dir"])
    expected = json.loads(json.dumps(task.run(local, CPU)[1]))  # as the worker reports it
    farm = {**local, "output_dir": str(tmp_path / "farm")}
    job = subprocess.Popen([sys.executable, "-m", "nn.farm", write_spec(tmp_path / "farm.json", "inbetween", farm),
                            "--ray", ray_cluster.address, "--chunks", "4"], cwd=ROOT,
                           env=clean_environment(**ray_cluster.environment), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    killed = kill_a_chunk_mid_job(ray_cluster, job, tmp_path / "farm")
    stdout, stderr = job.communicate(timeout=120)
    assert killed and job.returncode == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert [os.path.basename(p) for p in result["outputs"]] == [f"inbetween_{n:04d}.png" for n in range(1, 13)]
    assert contents(tmp_path / "farm") == contents(tmp_path / "local")
    assert result["info"] == expected  # width, height, format, cuts and repeated frames, as one run reports them


def test_a_loop_on_ray_matches_a_local_run(ray_cluster, tmp_path, one_thread):
    """``python -m nn.loop --ray`` against the task the command line runs without it (frames counted from 0)."""
    from test_farm_chunks import CPU, loop_params
    from nn.loop import task

    params = loop_params(str(tmp_path), tmp_path / "local", frames=12, layers=True, prefix="frame", first_number=0)
    _, local = task.run(params, CPU)
    (tmp_path / "hints.json").write_text(json.dumps(params["hints"]))
    done = subprocess.run([sys.executable, "-m", "nn.loop", params["image"], "--mask", params["mask"], "--hints",
                           str(tmp_path / "hints.json"), "--frames", "12", "--speed", "1.5", "--layers",
                           "--out", str(tmp_path / "farm"), "--ray", ray_cluster.address, "--chunks", "3"], cwd=ROOT,
                          env=clean_environment(**ray_cluster.environment), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    farm = json.loads(done.stdout.strip().splitlines()[-1])
    assert contents(tmp_path / "farm") == contents(tmp_path / "local")
    assert contents(tmp_path / "farm" / "layers") == contents(tmp_path / "local" / "layers")
    assert {k: v for k, v in farm.items() if k not in ("motion_field", "layers")} == {
        k: v for k, v in local.items() if k not in ("motion_field", "layers")}


def test_a_trained_style_applied_on_ray_matches_a_local_run(ray_cluster, tmp_path, one_thread):
    import torch

    from nn.stylize import task as stylize
    from nn.worker import TaskContext

    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(3):
        write_image(str(frames / f"{t:03d}.png"), gradient_image(48, 64, channels=3, shift=2.0 * t),
                    ImageFormat(".png", "uint8", 3))
    key = str(tmp_path / "key.png")
    write_image(key, gradient_image(48, 64, channels=3)[..., ::-1], ImageFormat(".png", "uint8", 3))
    model = str(tmp_path / "model.safetensors")
    hub = {"cache_dir": str(tmp_path / "cache"), "local_dir": str(tmp_path / "no-weights"), "online": False}
    stylize.run({"frames": sorted(str(p) for p in frames.iterdir()), "keys": [{"index": 0, "path": key}],
                 "masks": None, "output_dir": str(tmp_path / "train"), "prefix": "style", "seconds": 0.5,
                 "stop_file": None, "model_file": None, "resume": False, "save_model": model, "preview_index": 0,
                 "fit_sizes": False, "hub": hub, "settings": {"patch_size": 32, "batch_size": 4}},
                TaskContext(torch.device("cpu"), False))
    sources = sorted(str(p) for p in frames.iterdir())
    local, _ = stylize.run({"frames": sources, "keys": [{"index": 0, "path": key}], "masks": None,
                            "output_dir": str(tmp_path / "local"), "prefix": "style", "seconds": 1.0,
                            "stop_file": None, "model_file": model, "resume": False, "save_model": None,
                            "preview_index": 0, "fit_sizes": False, "hub": hub}, TaskContext(torch.device("cpu"), False))
    done = subprocess.run([sys.executable, "-m", "nn.stylize", "--frames", str(frames), "--key", f"0={key}",
                           "--model", model, "--out", str(tmp_path / "farm"), "--offline", "--weights-dir",
                           hub["local_dir"], "--cache-dir", hub["cache_dir"], "--device", "cpu",
                           "--ray", ray_cluster.address, "--chunks", "2"],
                          cwd=ROOT, env=clean_environment(**ray_cluster.environment), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    farm = contents(tmp_path / "farm")
    assert sorted(farm) == [f"{t:03d}.png" for t in range(3)]  # the command line's names: the footage's
    assert [farm[f"{t:03d}.png"] for t in range(3)] == [open(path, "rb").read() for path in local]
