"""Faults made for real: a full disk, workers that hang or print garbage, file loads and unregister
mid-job, real allocation failures, and network calls while online access is off.

Each test checks the message, that Blender goes on, and that the scene and the files are unchanged.
"""
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time

import bpy
import numpy as np
import pytest

from conftest import FRAMEWEAVER, MODULE, ROOT, WEIGHTS_DIR, WORKER_PYTHON, ensure_weights
from helpers import Unchanged, add_key_strips, render_movie, tree_state, write_keyframes
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
    path.write_text(f"#!{WORKER_PYTHON}\nimport json, os, subprocess, sys, time\n" + FAKE_DONE + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


FAKE_DONE = textwrap.dedent('''
    def done(outputs=(), info=None, count=None):
        """The worker's 'done' line, its outputs and info written where the worker writes them."""
        with open(os.path.join(os.path.dirname(sys.argv[-1]), "result.json"), "w") as result:
            json.dump({"outputs": list(outputs), "info": {} if info is None else info}, result)
        return json.dumps({"event": "done", "count": len(outputs) if count is None else count})
    ''')

EXEC_REAL_WORKER = f"os.execv({WORKER_PYTHON!r}, [{WORKER_PYTHON!r}] + sys.argv[1:])\n"


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


@pytest.fixture(autouse=True)
def worker_timeout():
    yield
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
        sys.stdout.write('a library print without newline' + done())
        """)
    job.run_to_end()
    assert job.state == jobs.Job.DONE, job.error


def test_bad_field_types_fail_the_job_without_raising_out_of_poll(tmp_path):
    job = job_with(tmp_path, """
        print(json.dumps({"event": "progress", "fraction": "lots", "message": {"not": "text"}}))
        print(json.dumps({"event": "progress", "fraction": 0.5, "message": "half", "preview": 7}))
        print(done(count="five"), flush=True)
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
        'print(done(), flush=True); os._exit(0)'))
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


# --- Offline means offline ---------------------------------------------------------------------------

# Installed before anything else runs: any name lookup or connection ends the process with status 97.
NETWORK_GUARD = """
import os, sys
def _no_network(event, args):
    if event in ("socket.getaddrinfo", "socket.connect", "socket.gethostbyname"):
        sys.stderr.write(f"NETWORK CALL {event} {args}\\n"); sys.stderr.flush(); os._exit(97)
sys.addaudithook(_no_network)
"""


def test_offline_resolve_makes_no_network_call(tmp_path):
    """A real subprocess with an audit hook: a cached file resolves and a missing one is refused, both offline."""
    from test_hub import fill_hub_cache
    payload = b"tiny weights"
    fill_hub_cache(str(tmp_path / "cache"), "frameweaver-tests/tiny", "model.safetensors", payload)
    script = NETWORK_GUARD + f"""
import hashlib
from nn import hub
settings = hub.HubSettings(cache_dir={str(tmp_path / 'cache')!r}, local_dir={str(tmp_path / 'local')!r}, online=False)
entry = hub.WeightsFile("tiny", "frameweaver-tests/tiny", "model.safetensors", "main",
                        hashlib.sha256({payload!r}).hexdigest(), "MIT", {len(payload)})
print(hub.resolve(entry, settings))
try:
    hub.resolve(hub.REGISTRY["rife-v4.25"], settings)
except hub.WeightsUnavailable as error:
    print("REFUSED", error)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}  # nothing hides a lookup
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    resolved, refused = done.stdout.strip().splitlines()
    assert open(resolved, "rb").read() == payload
    assert refused.startswith("REFUSED Weights 'rife-v4.25'") and "online access is off" in refused


def test_worker_with_online_access_off_gets_the_offline_environment_and_makes_no_network_call(
        fw, scene, tmp_path, worker_python):
    """The real worker, started through the Worker Python under the same guard, asks for missing RIFE weights."""
    seen = tmp_path / "worker-environment.txt"
    worker_python(fake_python(tmp_path, NETWORK_GUARD + textwrap.dedent(f"""
        import runpy
        with open({str(seen)!r}, "w") as f:
            f.write(os.environ.get("HF_HUB_OFFLINE", "unset"))
        sys.argv = sys.argv[2:]  # drop "-m nn.worker": run it as that command would
        runpy.run_module("nn.worker", run_name="__main__", alter_sys=True)
        """)))
    assert not bpy.app.online_access
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    with Unchanged(scene, tmp_path):
        with pytest.raises(job_runner.JobFailed, match="Weights 'rife-v4.25' .* online access is off"):
            fw.generate_inbetweens(scene, model="rife-v4.25")
        assert seen.read_text() == "1"  # HF_HUB_OFFLINE reached the worker
        seen.unlink()


# --- File loads, quitting and unregistering mid-job ---------------------------------------------------


def long_job(fw, scene, tmp_path):
    """A 400-frame cross-fade job, waited on until its worker has written a first frame; and the files before it."""
    add_key_strips(scene, write_keyframes(str(tmp_path), size=(256, 256)), starts=[1, 400])
    before = tree_state(tmp_path)
    scene_job = fw.operators.inbetween.prepare(scene, model="blend")
    assert wait_until(lambda: not scene_job.job.poll() or scene_job.job.fraction > 0, 60)
    assert scene_job.job.state == jobs.Job.RUNNING and os.listdir(scene_job.folder)
    return scene_job, before


def test_loading_another_file_mid_job_cancels_it_and_removes_its_frames(fw, scene, tmp_path):
    scene_job, before = long_job(fw, scene, tmp_path)
    bpy.ops.wm.read_homefile(use_empty=True)  # File > New: load_pre runs
    job = scene_job.job
    assert job.state == jobs.Job.CANCELLED and "another file was loaded" in job.message
    assert wait_until(lambda: gone(job.worker_pid)), "the worker still runs"
    assert tree_state(tmp_path) == before, "the job's frames remain"
    assert all(not s.sequence_editor or not len(FRAMEWEAVER.operators.compat.strips(s.sequence_editor)) for s in bpy.data.scenes)
    assert job_runner.running_job(bpy.context.scene) is None  # a new job may start at once


UNREGISTER_MID_JOB = """
import os, sys, time
sys.path[:0] = [{root!r}, {scripts!r}]
from dev_extension import MODULE, isolate_user_folder, load_extension_from_source
isolate_user_folder()
import bpy
import addon_utils
from helpers import add_key_strips, write_keyframes
fw = load_extension_from_source()
bpy.ops.wm.save_as_mainfile(filepath={blend!r})
scene = bpy.context.scene
scene.sequence_editor_create()
add_key_strips(scene, write_keyframes({keys!r}, size=(256, 256)), starts=[1, 400])
scene_job = fw.operators.inbetween.prepare(scene, model="blend")
while scene_job.job.poll() and scene_job.job.fraction == 0:
    time.sleep(0.05)
print("PID", scene_job.job.worker_pid, "FOLDER", scene_job.folder, flush=True)
if {quit!r}:
    sys.exit(0)  # as quitting Blender does: the interpreter finalizes
addon_utils.disable(MODULE, default_set=True)
print("STATE", scene_job.job.state, "|", scene_job.job.message, flush=True)
print("STRIPS", len(fw.operators.compat.strips(scene.sequence_editor)), flush=True)
"""


def blender_of_its_own(tmp_path, quit):
    (tmp_path / "keys").mkdir()
    script = UNREGISTER_MID_JOB.format(root=str(ROOT), scripts=str(ROOT / "scripts"), blend=str(tmp_path / "t.blend"),
                                       keys=str(tmp_path / "keys"), quit=quit)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT / "tests", capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line[:4] in ("PID ", "STAT", "STRI"))
    pid, folder = lines["PID"].split(" FOLDER ")
    return lines, int(pid), folder


def test_quitting_mid_job_ends_the_worker_and_removes_its_frames(tmp_path):
    _, pid, folder = blender_of_its_own(tmp_path, quit=True)
    assert wait_until(lambda: gone(pid)) and not os.path.exists(folder)
    assert not (tmp_path / "frameweaver").exists()


def test_disabling_the_extension_mid_job_cancels_it_and_removes_its_frames(tmp_path):
    """In a Blender of its own, so the extension this session loaded stays enabled."""
    lines, pid, folder = blender_of_its_own(tmp_path, quit=False)
    assert lines["STATE"] == "CANCELLED | Cancelled: Frameweaver was disabled"
    assert lines["STRIPS"] == "2"  # the two keyframes, and no half-made result
    assert wait_until(lambda: gone(pid)) and not os.path.exists(folder)
    assert not (tmp_path / "frameweaver").exists()


# --- Out of memory -------------------------------------------------------------------------------------


def test_a_real_allocation_failure_says_what_to_change(fw, scene, tmp_path, worker_python):
    """The worker runs under an address-space limit 400 MB above what it uses once torch is loaded."""
    worker_python(fake_python(tmp_path, """
        import resource, runpy, torch
        from nn.inbetween import task
        with open("/proc/self/status") as status:
            used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (used + (400 << 20), resource.RLIM_INFINITY))
        sys.argv = sys.argv[2:]
        runpy.run_module("nn.worker", run_name="__main__", alter_sys=True)
        """))
    add_key_strips(scene, write_keyframes(str(tmp_path), size=(4000, 4000)), starts=[1, 5])  # 256 MB a key as floats
    with Unchanged(scene, tmp_path), pytest.raises(job_runner.JobFailed) as failure:
        fw.generate_inbetweens(scene, model="blend")
    message = str(failure.value)
    assert "Out of memory on cpu" in message and "Flow Scale to Half or Quarter" in message
    assert "Device" in message and "alloc" not in message  # advice, not the allocator's words


def test_a_worker_killed_like_the_oom_killer_does_gets_a_helpful_message(tmp_path):
    job = job_with(tmp_path, """
        import signal
        print(json.dumps({"event": "start", "device": "cpu", "torch": "none"}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """)
    job.run_to_end()
    assert job.state == jobs.Job.FAILED
    assert "exit code -9" in job.error and "ran out of memory" in job.error and "Flow Scale" in job.error



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_worker_gives_frame_sized_buffers_back_when_freed(fw, scene, tmp_path, worker_python):
    """Long jobs stay flat (bench/job_memory.py): once a real job's frames are written, the worker frees a
    25 MB buffer, which raises glibc's own mmap threshold, then a 20 MB one, which would fall under it and stay."""
    retained = tmp_path / "retained.json"
    worker_python(fake_python(tmp_path, f"""
        import importlib
        import numpy as np

        def resident_mb():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

        worker = importlib.import_module("nn.worker")
        report = worker.emit

        def emit(event, **fields):  # measured before "done": Blender may end the worker's group after it
            if event == "done":
                kept = []
                for mb in (25, 20):
                    before = resident_mb()
                    buffer = np.ones(mb << 18, np.float32)
                    del buffer
                    kept.append(resident_mb() - before)
                open({str(retained)!r}, "w").write(json.dumps(kept))
            report(event, **fields)

        worker.emit = emit
        sys.exit(worker.main(sys.argv[-1]))
        """))
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    fw.generate_inbetweens(scene, model="blend")
    assert max(json.loads(retained.read_text())) < 2.0

# --- Secrets and scratch -----------------------------------------------------------------------------


def test_a_worker_python_that_cannot_start_leaves_no_scratch(fw, scene, tmp_path, worker_python, monkeypatch):
    scratch_root = tmp_path / "system-temp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))  # where Job makes its scratch folder
    worker_python(str(tmp_path / "no" / "python"))
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 5])
    with Unchanged(scene, tmp_path), pytest.raises(RuntimeError, match="Cannot start the worker with .*no/python"):
        fw.generate_inbetweens(scene, model="blend")


@pytest.fixture
def packages_for_another_python():
    """The extension's deps folder holding a torch built for another Python (Install PyTorch ran under Blender
    5.2's 3.13, say): importing it fails. Removed afterwards, as other tests run workers in Blender's Python."""
    deps = FRAMEWEAVER.ui.preferences.extension_dir("deps")
    foreign = os.path.join(deps, "torch")
    os.makedirs(foreign)
    with open(os.path.join(foreign, "__init__.py"), "w") as package:
        package.write("raise ImportError('torch/_C.cpython-313-x86_64-linux-gnu.so: built for another Python')\n")
    yield
    shutil.rmtree(foreign)


def test_a_worker_python_is_not_given_the_packages_installed_for_blenders_python(
        fw, scene, tmp_path, worker_python, packages_for_another_python):
    worker_python(fake_python(tmp_path, EXEC_REAL_WORKER))
    add_key_strips(scene, write_keyframes(str(tmp_path)), starts=[1, 4])
    strip = fw.generate_inbetweens(scene, model="blend")
    assert len(strip.elements) == 4


def test_the_hub_token_reaches_the_worker_by_environment_and_never_a_file(tmp_path):
    seen = tmp_path / "seen.json"
    runtime = jobs.WorkerRuntime(python=fake_python(tmp_path, f"""
        spec = open(sys.argv[-1]).read()
        scratch = sorted(os.listdir(os.path.dirname(sys.argv[-1])))
        json.dump({{"spec": spec, "token": os.environ.get("HF_TOKEN"), "scratch": scratch}}, open({str(seen)!r}, "w"))
        print(done())
        """), online=True, token="hf_SECRET_for_test")
    hub = {"cache_dir": str(tmp_path / "cache"), "local_dir": str(tmp_path / "weights"), "online": True}
    job = jobs.Job("inbetween", {"hub": hub}, runtime, "Token").run_to_end()
    assert job.state == jobs.Job.DONE
    reported = json.loads(seen.read_text())
    assert reported["token"] == "hf_SECRET_for_test"
    assert "hf_SECRET" not in reported["spec"] and reported["scratch"] == ["spec.json", "worker.log"]
    offline = jobs.WorkerRuntime(online=False, token="hf_SECRET_for_test").environment()
    assert "HF_TOKEN" not in offline or offline["HF_TOKEN"] != "hf_SECRET_for_test"
    assert offline["HF_HUB_OFFLINE"] == "1"


def test_training_previews_are_cleaned_up(fw, scene, tmp_path):
    from test_stylize_operator import footage, painted_key
    strip, frames = footage(scene, str(tmp_path / "shot"))
    painted_key(scene, str(tmp_path), frames[0], frame=1)
    result = fw.stylize_clip(scene, footage="shot", seconds=2.0)
    job_folder = bpy.path.abspath(result.directory)
    assert not os.path.exists(os.path.join(job_folder, "previews"))  # the result stays, its previews do not


def test_a_motion_preview_replaces_the_last_one_files_included(scene, tmp_path):
    from test_loop_operator import motion_mask, still
    still(scene, str(tmp_path))
    motion_mask()
    first = FRAMEWEAVER.operators.loop.preview_motion(scene, mask=bpy.data.masks["waves"], frames=2)
    second = FRAMEWEAVER.operators.loop.preview_motion(scene, mask=bpy.data.masks["waves"], frames=2)
    assert os.path.isfile(second) and not os.path.exists(os.path.dirname(os.path.dirname(first)))
    assert not (tmp_path / "frameweaver").exists()  # previews go to private temp folders, not beside the .blend



def test_the_last_motion_preview_is_removed_when_frameweaver_is_disabled(scene, tmp_path):
    """Disabling runs job_runner.unregister (quitting runs the same cleanup from atexit): no preview outlives it."""
    from test_loop_operator import motion_mask, still
    still(scene, str(tmp_path))
    motion_mask()
    preview = FRAMEWEAVER.operators.loop.preview_motion(scene, mask=bpy.data.masks["waves"], frames=2)
    assert os.path.isfile(preview)
    runner = FRAMEWEAVER.operators.job_runner
    runner.unregister()
    runner.register()
    assert not os.path.exists(os.path.dirname(os.path.dirname(preview)))

# --- Outputs where hard links are missing ------------------------------------------------------------


@pytest.fixture
def ext4_disk(tmp_path):
    """A small loop-mounted ext4, whose 65000-link limit per file is a real link() failure (EMLINK)."""
    image, mount = tmp_path / "ext4.img", tmp_path / "ext4"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True)
    mounted = made.returncode == 0 and subprocess.run(["mount", "-o", "loop", str(image), str(mount)],
                                                      capture_output=True, text=True).returncode == 0
    if not mounted:
        pytest.skip("cannot make and loop-mount an ext4 image here (needs mkfs.ext4 and root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_publishing_falls_back_to_an_exclusive_create_and_rename_when_link_fails(ext4_disk):
    """No FAT/exFAT driver or SMB share exists on these machines; a file at ext4's link limit is the nearest
    real case: link() fails for real (EMLINK) and the same fallback path runs."""
    from nn import files
    partial = ext4_disk / ".frame.partial"
    partial.write_bytes(b"complete frame")
    links = ext4_disk / "links"
    links.mkdir()
    count = 1
    try:
        while True:
            os.link(partial, links / str(count))
            count += 1
    except OSError as error:
        assert error.errno == errno.EMLINK, error
    final = ext4_disk / "frame.png"
    files.publish(str(partial), str(final))
    assert final.read_bytes() == b"complete frame" and not partial.exists()

    taken = ext4_disk / ".other.partial"
    taken.write_bytes(b"new")
    with pytest.raises(FileExistsError):
        files.publish_without_link(str(taken), str(final))
    assert final.read_bytes() == b"complete frame"  # never overwritten


# --- Pins ----------------------------------------------------------------------------------------------


def test_a_tampered_converted_cache_is_not_trusted(tmp_path):
    """A legacy checkpoint's converted safetensors copy is re-hashed on every load, and rebuilt when it changed."""
    import torch
    from safetensors.torch import save_file
    from nn import hub
    legacy = tmp_path / "flownet.pkl"
    torch.save({"block.weight": torch.ones(2, 2)}, legacy)
    converted_dir = tmp_path / "converted"
    hub.load_tensors(str(legacy), str(converted_dir))
    converted = next(converted_dir.glob("*.safetensors"))
    save_file({"block.weight": torch.full((2, 2), 666.0)}, str(converted))  # swapped behind our back
    assert torch.equal(hub.load_tensors(str(legacy), str(converted_dir))["block.weight"], torch.ones(2, 2))
    assert torch.equal(hub.load_tensors(str(legacy), str(converted_dir))["block.weight"], torch.ones(2, 2))



def test_a_conversion_cache_on_a_full_disk_only_costs_a_conversion(tmp_path, small_disk):
    import torch
    from nn import hub
    legacy = tmp_path / "flownet.pkl"
    torch.save({"block.weight": torch.randn(64, 512)}, legacy)  # 128 KB as safetensors: more than the disk holds
    tensors = hub.load_tensors(str(legacy), str(small_disk / "converted"))
    assert torch.equal(tensors["block.weight"], torch.load(legacy, weights_only=True)["block.weight"])
    assert os.listdir(small_disk / "converted") == []  # no partial or unsealed copy

# --- The command lines: one line, no traceback, no network call, no broken file ----------------------


def guarded_command(module, *args, cwd=ROOT):
    """``python -m module args`` under the network guard, with no HF_* variable to hide a lookup."""
    script = NETWORK_GUARD + f"import runpy\nsys.argv = [{module!r}, *{list(map(str, args))!r}]\n" \
                             f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def assert_one_line_failure(done, starts):
    assert done.returncode not in (0, 97), done.stderr  # 97: the guard saw a network call
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and lines[-1].startswith(starts), done.stderr
    return lines[-1]


@pytest.mark.parametrize("command", ["nn.inbetween", "nn.loop.train"])
def test_offline_command_lines_name_the_missing_weights_in_one_line(tmp_path, command):
    first, second = write_keyframes(str(tmp_path))
    (tmp_path / "clips" / "a").mkdir(parents=True)
    for path in (first, second):
        os.link(path, tmp_path / "clips" / "a" / os.path.basename(path))
    (tmp_path / "out").mkdir()
    weights = ["--offline", "--weights-dir", tmp_path / "weights", "--cache-dir", tmp_path / "cache"]
    args = {"nn.inbetween": [first, second, "--model", "rife-v4.25", "--out", tmp_path / "out" / "frames"],
            "nn.loop.train": [tmp_path / "clips", "--out", tmp_path / "out" / "motion.safetensors", "--steps", 2]}
    before = tree_state(tmp_path)
    line = assert_one_line_failure(guarded_command(command, *args[command], *weights), "error: ")
    assert "Weights 'rife-v4.25'" in line and str(tmp_path / "weights" / "rife-v4.25" / "flownet.pkl") in line  # where to put the file
    assert tree_state(tmp_path) == before  # no empty or broken file


def test_full_disk_on_the_loop_and_style_command_lines(tmp_path, small_disk):
    write_image(str(tmp_path / "still.png"), np.random.default_rng(1).random((96, 96, 3), dtype=np.float32),
                ImageFormat(".png", "uint8", 3))
    (tmp_path / "hints.json").write_text("[[10, 40, 60, 40]]")
    write_image(str(tmp_path / "mask.png"), np.ones((96, 96, 1), np.float32), ImageFormat(".png", "uint8", 1))
    loop = guarded_command("nn.loop", tmp_path / "still.png", "--hints", tmp_path / "hints.json", "--frames", 8,
                           "--mask", tmp_path / "mask.png",
                           "--out", small_disk / "loop")
    assert_one_line_failure(loop, "The disk is full: could not write")
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(4):
        write_image(str(frames / f"{index:03d}.png"), np.random.default_rng(index).random((96, 96, 3), dtype=np.float32),
                    ImageFormat(".png", "uint8", 3))
    style = guarded_command("nn.stylize", "--frames", frames, "--key", f"0={frames / '000.png'}", "--seconds", 1,
                            "--out", small_disk / "style", "--offline", "--cache-dir", tmp_path / "cache")
    assert_one_line_failure(style, "error: The disk is full: could not write")
    for root, _, names in os.walk(small_disk):
        for name in names:
            assert not name.startswith(".") and "partial" not in name, f"a broken file remains: {name}"



def test_full_disk_on_the_training_command_line(tmp_path, small_disk):
    (tmp_path / "clips" / "a").mkdir(parents=True)
    write_keyframes(str(tmp_path / "clips" / "a"), count=3, size=(96, 128))
    ensure_weights()
    train = guarded_command("nn.loop.train", tmp_path / "clips", "--out", small_disk / "motion.safetensors",
                            "--steps", 2, "--batch", 1, "--crop", 64, "--threads", 1, "--offline",
                            "--weights-dir", WEIGHTS_DIR, "--cache-dir", tmp_path / "cache")
    assert_one_line_failure(train, "error: The disk is full: could not write")
    assert os.listdir(small_disk) == []  # no broken model file

# --- Movie decoding: in steps within the job, cancellable, space checked first -----------------------


def movie_strip(scene, tmp_path, frames=6):
    (tmp_path / "movie").mkdir()
    path = render_movie(scene, str(tmp_path / "movie"), frames)
    strip = FRAMEWEAVER.operators.compat.strips(scene.sequence_editor).new_movie(
        name="shot.mp4", filepath=path, channel=1, frame_start=1)
    strip.select = True
    return strip


def test_a_movie_is_decoded_step_by_step_within_the_job_and_cancel_stops_it(fw, scene, tmp_path):
    movie_strip(scene, tmp_path)
    before = tree_state(tmp_path)
    scene_job = fw.operators.inbetween.prepare(scene, model="blend", mode="RETIME")
    decoded = os.path.join(scene_job.folder, "decoded")
    assert os.listdir(decoded) == []  # prepare (the operator's invoke) decoded nothing
    assert scene_job.job.poll() and scene_job.job.message == "Decoding the movie: frame 2 of 6"
    assert len(os.listdir(decoded)) == 2 and scene_job.job.worker_pid is None
    scene_job.cancel()
    assert not scene_job.job.poll() and scene_job.job.state == jobs.Job.CANCELLED
    with pytest.raises(job_runner.JobFailed, match="cancelled; nothing was changed"):
        scene_job.complete()
    assert tree_state(tmp_path) == before and len(FRAMEWEAVER.operators.compat.strips(scene.sequence_editor)) == 1


def test_a_decoded_movie_retimes_to_the_end(fw, scene, tmp_path):
    movie_strip(scene, tmp_path, frames=3)
    strip = fw.generate_inbetweens(scene, model="blend", mode="RETIME")
    assert len(strip.elements) == 6
    assert not os.path.exists(os.path.join(bpy.path.abspath(strip.directory), "decoded"))


def test_decoding_a_movie_onto_a_disk_without_room_is_refused_first(fw, scene, tmp_path, small_disk):
    movie_strip(scene, tmp_path, frames=6)  # 96x64: 6 frames of 16-bit RGB need ~166 KB, the disk has 64 KB
    with Unchanged(scene, tmp_path), pytest.raises(ValueError, match=r"Decoding 'shot.mp4' \(6 frames, 96x64\) "
                                                                     r"needs about 0.2 MB in .*but only 0.1 MB are free"):
        fw.generate_inbetweens(scene, model="blend", mode="RETIME", output_dir=str(small_disk))
    assert os.listdir(small_disk) == []


def test_a_second_job_in_the_scene_is_refused_before_it_makes_a_folder(fw, scene, tmp_path):
    movie_strip(scene, tmp_path)
    first = fw.operators.inbetween.prepare(scene, model="blend", mode="RETIME")
    try:
        with Unchanged(scene, tmp_path), pytest.raises(jobs.JobBusyError, match="is still running in this scene"):
            fw.operators.inbetween.prepare(scene, model="blend", mode="RETIME")
    finally:
        first.cancel()
        with pytest.raises(job_runner.JobFailed):
            first.complete()
