"""Faults made for real: a full disk, workers that hang or print garbage, file loads and unregister
mid-job, real allocation failures, and network calls while online access is off.

Each test checks the message, that Blender goes on, and that the scene and the files are unchanged.
"""
import os
import stat
import subprocess
import sys
import textwrap
import time

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER, MODULE, ROOT
from helpers import Unchanged, add_key_strips, write_keyframes
from nn.imageio import ImageFormat, write_image

jobs = FRAMEWEAVER.operators.jobs
job_runner = FRAMEWEAVER.operators.job_runner


def prefs():
    return bpy.context.preferences.addons[MODULE].preferences


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KB tmpfs: a real filesystem that fills up; skipped where mounting is not allowed."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def noisy_keyframes(folder, count=2, size=96):
    """Keyframes of noise, so PNG cannot compress them: each frame needs ~36 KB on disk."""
    rng = np.random.default_rng(7)
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"noise_{index}.png")
        write_image(path, rng.random((size, size, 4), dtype=np.float32), ImageFormat(".png", "uint8", 4))
        paths.append(path)
    return paths


def test_full_disk_fails_the_job_with_a_clear_message_and_leaves_nothing(fw, scene, tmp_path, small_disk):
    add_key_strips(scene, noisy_keyframes(str(tmp_path)), starts=[1, 50])
    with Unchanged(scene, tmp_path), pytest.raises(job_runner.JobFailed, match="The disk is full: could not write"):
        fw.generate_inbetweens(scene, model="blend", output_dir=str(small_disk))
    assert os.listdir(small_disk) == []  # no half-written output folder
    assert bpy.context.scene == scene  # Blender goes on


def test_full_disk_on_the_command_line_is_one_line_and_leaves_no_broken_file(tmp_path, small_disk):
    first, second = noisy_keyframes(str(tmp_path))
    out = small_disk / "out"
    done = subprocess.run(
        [sys.executable, "-m", "nn.inbetween", first, second, "--model", "blend", "--out", str(out),
         "--times", *[f"{t / 10:.1f}" for t in range(1, 10)]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert done.stderr.strip().startswith("error: The disk is full: could not write")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    from nn.imageio import read_image
    for name in os.listdir(out):  # what was written before the disk filled is complete, and nothing else
        assert not name.startswith("."), f"a partial file remains: {name}"
        read_image(str(out / name))


# --- Workers that misbehave: real processes set as the Worker Python --------------------------------


def fake_python(tmp_path, body: str) -> str:
    """An executable 'Python' that runs ``body`` (real Python, with sys.argv as the worker's) instead."""
    path = tmp_path / "fake_python"
    path.write_text(f"#!{sys.executable}\nimport json, os, subprocess, sys, time\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


EXEC_REAL_WORKER = f"os.execv({sys.executable!r}, [{sys.executable!r}] + sys.argv[1:])\n"


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" in status.read()  # a zombie has stopped running
    except FileNotFoundError:
        return True


def wait_until(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.fixture
def worker_python():
    """Set the Worker Python preference for one test."""
    def use(path):
        prefs().python_path = path
    yield use
    prefs().python_path = ""
    prefs().worker_timeout = jobs.PROGRESS_TIMEOUT


def test_non_utf8_huge_and_unterminated_output_does_not_stop_the_job(fw, scene, tmp_path, worker_python):
    worker_python(fake_python(tmp_path, r"""
        out = sys.stdout.buffer
        out.write(b"\xff\xfe\xfa not UTF-8 \x80\x81\n" * 20000)   # 420 KB: more than a full pipe
        out.write(b"x" * (3 << 20) + b"\n")                       # one 3 MB line
        out.write(b"an unterminated print ")                     # the worker's first line is glued to it
        out.flush()
        """ + EXEC_REAL_WORKER))
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    strip = fw.generate_inbetweens(scene, model="blend")
    assert len(strip.elements) == 5


def job_with(tmp_path, body, **runtime):
    return jobs.Job("probe", {}, jobs.WorkerRuntime(python=fake_python(tmp_path, body), **runtime), "Fake")


def test_unterminated_print_just_before_done_keeps_the_success(tmp_path):
    job = job_with(tmp_path, """
        sys.stdout.write('a library print without newline' + json.dumps({"event": "done", "outputs": [], "info": {}}))
        """)
    job.run_to_end()
    assert job.state == jobs.Job.DONE, job.error


def test_bad_field_types_fail_the_job_without_raising_out_of_poll(tmp_path):
    job = job_with(tmp_path, """
        print(json.dumps({"event": "progress", "fraction": "lots", "message": {"not": "text"}}))
        print(json.dumps({"event": "progress", "fraction": 0.5, "message": "half", "preview": 7}))
        print(json.dumps({"event": "done", "outputs": "not a list", "info": []}), flush=True)
        time.sleep(30)
        """)
    scratch = job._scratch
    job.run_to_end()
    assert job.state == jobs.Job.FAILED and "malformed 'done' message" in job.error
    assert wait_until(lambda: gone(job.worker_pid)) and not os.path.exists(scratch)


def test_a_silent_worker_is_stopped_after_the_silence_timeout(tmp_path):
    job = job_with(tmp_path, """
        print(json.dumps({"event": "start", "device": "cpu", "torch": "none"}), flush=True)
        time.sleep(600)
        """, silence_timeout=1.5)
    began = time.monotonic()
    job.run_to_end()
    assert job.state == jobs.Job.FAILED and "stopped responding (nothing heard for 1.5 s)" in job.error
    assert time.monotonic() - began < 15 and wait_until(lambda: gone(job.worker_pid))


def test_a_worker_that_only_heartbeats_hits_the_worker_timeout(fw, scene, tmp_path, worker_python):
    worker_python(fake_python(tmp_path, """
        print(json.dumps({"event": "start", "device": "cpu", "torch": "none"}), flush=True)
        while True:
            print(json.dumps({"event": "heartbeat"}), flush=True)
            time.sleep(0.2)
        """))
    prefs().worker_timeout = 2.0
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    with Unchanged(scene, tmp_path), pytest.raises(job_runner.JobFailed, match="made no progress for 2 s"):
        fw.generate_inbetweens(scene, model="blend")


def grandchild_body(pid_file, then: str) -> str:
    """A worker that starts a long-lived child sharing its stdout (and saves that child's pid)."""
    return f"""
        PID_FILE = {str(pid_file)!r}
        child = subprocess.Popen(["sleep", "300"])
        open(PID_FILE, "w").write(str(child.pid))
        {then}
        """


def test_a_grandchild_holding_stdout_does_not_keep_the_job_running(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    job = job_with(tmp_path, grandchild_body(pid_file,
        'print(json.dumps({"event": "done", "outputs": [], "info": {}}), flush=True); os._exit(0)'))
    began = time.monotonic()
    job.run_to_end()
    assert job.state == jobs.Job.DONE and time.monotonic() - began < 15
    assert wait_until(lambda: gone(int(pid_file.read_text())))  # the job's end also ended what it left running


def test_cancel_is_quick_and_ends_the_workers_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    job = job_with(tmp_path, grandchild_body(pid_file, 
        'print(json.dumps({"event": "start", "device": "cpu", "torch": "none"}), flush=True); time.sleep(300)'))
    assert wait_until(lambda: job.poll() and job.device == "cpu")
    grandchild = int(pid_file.read_text())
    began = time.monotonic()
    job.cancel()
    assert time.monotonic() - began < 1.0, "Cancel must not freeze Blender"
    assert job.state == jobs.Job.CANCELLED
    assert wait_until(lambda: gone(job.worker_pid) and gone(grandchild))
