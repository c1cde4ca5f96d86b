"""Jobs of any length: the worker's outputs come back through its result file, so no protocol line grows
with the job (Blender's reader drops lines over 1 MiB; 12,500 outputs once lost every frame that way)."""
import json
import os
import sys
import time

import bpy

from conftest import FRAMEWEAVER, WORKER_PYTHON
from helpers import add_key_strips, write_keyframes
from nn.imageio import ImageFormat
from test_faults import fake_python

jobs = FRAMEWEAVER.operators.jobs


def line_recording_worker(tmp_path, record):
    """A Worker Python that runs the real worker and records the longest line it printed (before 'done' goes on)."""
    return fake_python(tmp_path, f"""
        worker = subprocess.Popen([{WORKER_PYTHON!r}] + sys.argv[1:], stdout=subprocess.PIPE)
        longest = lines = 0
        for line in worker.stdout:
            longest, lines = max(longest, len(line)), lines + 1
            if b'"event": "done"' in line:
                with open({str(record)!r}, "w") as f:
                    json.dump({{"longest": longest, "lines": lines}}, f)
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
        sys.exit(worker.wait())
        """)


def test_twenty_thousand_inbetweens_make_their_strip_and_no_message_grows(fw, scene, tmp_path, worker_python):
    record = tmp_path / "lines.json"
    worker_python(line_recording_worker(tmp_path, record))
    keys = write_keyframes(str(tmp_path), size=(4, 4), fmt=ImageFormat(".png", "uint8", 3))
    add_key_strips(scene, keys, starts=[1, 20_000])
    began = time.monotonic()
    strip = fw.generate_inbetweens(scene, model="blend", mode="COUNT", count=19_998)
    seconds = time.monotonic() - began
    assert len(strip.elements) == 20_000
    assert strip.elements[-1].filename == "inbetween_20000.png"
    folder = bpy.path.abspath(strip.directory)
    assert len([n for n in os.listdir(folder) if n.endswith(".png")]) == 20_000
    printed = json.loads(record.read_text())
    # One line naming every output would be 20,000 paths of ~90 bytes (1.8 MB): over the reader's limit.
    assert printed["longest"] < 1000 and printed["lines"] > 20_000
    print(f"20,000 inbetweens in {seconds:.0f} s; {printed['lines']} protocol lines, the longest "
          f"{printed['longest']} bytes")


def test_a_done_whose_count_disagrees_with_the_result_file_fails_the_job(tmp_path):
    job = jobs.Job("probe", {}, jobs.WorkerRuntime(python=fake_python(tmp_path, """
        print(done(["/a.png", "/b.png"], count=3), flush=True)
        """)), "Fake").run_to_end()
    assert job.state == jobs.Job.FAILED
    assert job.error == "The worker sent a malformed 'done' message (it names 3 outputs but its result file holds 2)"


def test_a_done_without_a_result_file_fails_the_job(tmp_path):
    job = jobs.Job("probe", {}, jobs.WorkerRuntime(python=fake_python(tmp_path, """
        print(json.dumps({"event": "done", "count": 0}), flush=True)
        """)), "Fake").run_to_end()
    assert job.state == jobs.Job.FAILED
    assert job.error.startswith("The worker sent a malformed 'done' message (its result file cannot be read")
