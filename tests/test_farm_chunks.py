"""Jobs in chunks (nn/farm/chunks.py, ``python -m nn.worker SPEC --chunk I/N``): real tasks, real files.

Chunks 1..N of a job together write exactly the single run's files, bit for bit; a rerun skips
finished frames and replaces only what is missing, partial files of a killed attempt included.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT
from helpers import gradient_image, tree_state, write_keyframes
from nn.farm import chunks
from nn.imageio import ImageFormat, write_image
from nn.inbetween import task as inbetween
from nn.loop import task as loop
from nn.worker import RESULT_NAME, TaskContext

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = TaskContext(torch.device("cpu"), False)


def file_bytes(folder) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, hidden ones (partial files) included."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def retime_params(folder, weights, out) -> dict:
    """A Retime Clip job as Blender's side sends it: 6 source frames at x2, RIFE v4.25, offline."""
    sources = []
    for index in range(6):
        path = os.path.join(folder, f"src_{index:04d}.png")
        write_image(path, gradient_image(48, 64, channels=3, shift=index * 3.0), ImageFormat(".png", "uint8", 3))
        sources.append(path)
    frames = [[int(j / 2), min(int(j / 2) + 1, 5), j / 2 - int(j / 2)] for j in range(12)]
    return {"keys": sources, "frames": frames, "model": "rife-v4.25", "fit_sizes": False, "flow_scale": 0.0,
            "high_quality": False, "cuts": "HOLD", "clip": True, "dedupe": True, "guides": {},
            "hub": {"cache_dir": os.path.join(folder, "cache"), "local_dir": str(weights), "online": False},
            "output_dir": str(out), "prefix": "inbetween"}


def write_spec(path, task, params) -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"task": task, "device": "cpu", "half": False, "params": params}, f)
    return str(path)


def run_worker(spec, *arguments):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nn.worker", spec, *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def events(done) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"event"')]


def test_chunk_ranges_cover_every_frame_once():
    for total in (0, 1, 5, 12, 48):
        for count in (1, 2, 3, 4, 7):
            sizes = [len(chunks.frame_range(total, (i, count))) for i in range(1, count + 1)]
            covered = [f for i in range(1, count + 1) for f in chunks.frame_range(total, (i, count))]
            assert covered == list(range(total)) and max(sizes) - min(sizes) <= 1  # in order, once, balanced


def test_retime_chunks_from_the_worker_command_equal_one_run_bit_for_bit(tmp_path, project_weights):
    whole = retime_params(str(tmp_path), project_weights, tmp_path / "whole")
    os.makedirs(whole["output_dir"])
    outputs, _ = inbetween.run(whole, CPU)
    assert len(outputs) == 12

    split = {**whole, "output_dir": str(tmp_path / "split")}
    os.makedirs(split["output_dir"])
    spec = write_spec(tmp_path / "spec.json", "inbetween", split)
    written = []
    for index in (1, 2, 3):
        done = run_worker(spec, "--chunk", f"{index}/3")
        assert done.returncode == 0, done.stderr
        end = events(done)[-1]
        assert end["event"] == "done", end
        with open(tmp_path / RESULT_NAME, encoding="utf-8") as f:  # the worker's result, beside its spec
            written += json.load(f)["outputs"]
    assert [os.path.basename(p) for p in written] == [os.path.basename(p) for p in outputs]
    assert file_bytes(split["output_dir"]) == file_bytes(whole["output_dir"])

    # A rerun after a crash: one frame of chunk 2 lost, and a partial file its killed writer left.
    lost = os.path.join(split["output_dir"], "inbetween_0006.png")
    os.unlink(lost)
    partial = os.path.join(split["output_dir"], ".inbetween_0006.partial-99999.png")
    with open(partial, "wb") as f:
        f.write(b"half a frame")
    before = {name: state for name, *state in tree_state(split["output_dir"])}
    done = run_worker(spec, "--chunk", "2/3")
    assert done.returncode == 0, done.stderr
    messages = [e["message"] for e in events(done) if e["event"] == "progress" and e.get("preview")]
    assert messages == ["Frame 6 of 12"]  # only the missing frame was made
    after = {name: state for name, *state in tree_state(split["output_dir"])}
    assert file_bytes(split["output_dir"]) == file_bytes(whole["output_dir"])  # the partial file is gone
    assert {n: s for n, s in after.items() if n != "inbetween_0006.png"} == {
        n: s for n, s in before.items() if n not in ("inbetween_0006.png", os.path.basename(partial))}


@pytest.mark.parametrize("chunk", ["5/4", "0/4", "a/b", "2", "1/0", "-1/4"])
def test_a_chunk_out_of_range_is_refused_in_one_line_and_nothing_is_written(tmp_path, chunk):
    out = tmp_path / "out"
    out.mkdir()
    params = {"keys": write_keyframes(str(tmp_path)), "frames": [[0, 0, 0.0], [0, 1, 0.5], [1, 1, 0.0]],
              "model": "blend", "output_dir": str(out), "prefix": "inbetween"}
    spec = write_spec(tmp_path / "spec.json", "inbetween", params)
    before = tree_state(tmp_path)
    done = run_worker(spec, "--chunk", chunk)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith("error: --chunk") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert tree_state(tmp_path) == before


def test_a_task_that_cannot_be_split_says_so(tmp_path):
    spec = write_spec(tmp_path / "spec.json", "probe", {})
    done = run_worker(spec, "--chunk", "1/2")
    assert done.returncode == 1
    assert events(done)[-1]["message"].startswith("A 'probe' job cannot be split into chunks")
    untrained = {"frames": ["a.png"], "model_file": None}
    with pytest.raises(chunks.ChunkRequestError, match="only once its model is trained"):
        chunks.frame_count("stylize", untrained)


def loop_params(folder, out, **extra) -> dict:
    image, mask = os.path.join(folder, "still.png"), os.path.join(folder, "mask.png")
    write_image(image, gradient_image(48, 64, channels=3), ImageFormat(".png", "uint16", 3))
    band = np.zeros((48, 64, 1), np.float32)
    band[16:36] = 1.0
    write_image(mask, band, ImageFormat(".png", "uint8", 1))
    return {"image": image, "mask": mask, "mask_polygons": None, "hints": [[20, 25, 30, 25]], "strokes": [],
            "frames": 10, "speed": 1.5, "appearance": None, "output_dir": str(out), "prefix": "loop", **extra}


@pytest.mark.parametrize("extra", [{"layers": True}, {"endless": True, "seamless": True, "frames": 50}])
def test_loop_chunks_equal_one_run_bit_for_bit_and_resume(tmp_path, extra):
    whole = loop_params(str(tmp_path), tmp_path / "whole", **extra)
    outputs, _ = loop.run(whole, CPU)
    split = {**whole, "output_dir": str(tmp_path / "split")}
    written = []
    for index in (1, 2, 3):
        part, _ = loop.run({**split, "chunk": (index, 3)}, CPU)
        written += part
    assert [os.path.basename(p) for p in written] == [os.path.basename(p) for p in outputs]
    assert file_bytes(split["output_dir"]) == file_bytes(whole["output_dir"])

    os.unlink(written[-1])
    rendered = []

    class Recorder(TaskContext):
        def progress(self, fraction, message, preview=None):
            if message.startswith("Frame "):
                rendered.append(message)

    loop.run({**split, "chunk": (3, 3)}, Recorder(torch.device("cpu"), False))
    assert rendered == [f"Frame {whole['frames']} of {whole['frames']}"]
    assert file_bytes(split["output_dir"]) == file_bytes(whole["output_dir"])


def test_style_chunks_of_a_trained_model_equal_one_run_bit_for_bit(tmp_path, project_weights):
    from nn.stylize import task as stylize

    frames = []
    for t in range(6):
        frames.append(str(tmp_path / f"f{t:03d}.png"))
        write_image(frames[-1], gradient_image(48, 64, channels=4, shift=2.0 * t), ImageFormat(".png", "uint8", 4))
    key = str(tmp_path / "key.png")
    write_image(key, gradient_image(48, 64, channels=3)[..., ::-1], ImageFormat(".png", "uint8", 3))
    hub = {"cache_dir": str(tmp_path / "cache"), "local_dir": str(project_weights), "online": False}
    model = str(tmp_path / "model.safetensors")
    train = {"frames": frames, "keys": [{"index": 0, "path": key}], "masks": None, "output_dir": str(tmp_path / "t"),
             "prefix": "style", "seconds": 1.0, "stop_file": None, "model_file": None, "resume": False,
             "save_model": model, "preview_index": 0, "fit_sizes": False, "hub": hub,
             "settings": {"patch_size": 32, "batch_size": 4}}
    stylize.run(train, CPU)
    apply = {**train, "keys": [], "model_file": model, "save_model": None, "output_dir": str(tmp_path / "whole")}
    assert chunks.frame_count("stylize", apply) == 6
    outputs, info = stylize.run(apply, CPU)
    assert info["guides"] == ["key"]  # the guides follow the footage's motion from the key: chunks must too
    split = {**apply, "output_dir": str(tmp_path / "split")}
    written = [path for index in (1, 2) for path in stylize.run({**split, "chunk": (index, 2)}, CPU)[0]]
    assert [os.path.basename(p) for p in written] == [os.path.basename(p) for p in outputs]
    assert file_bytes(split["output_dir"]) == file_bytes(apply["output_dir"])


@pytest.mark.parametrize("option, value", [("--chunks", "-1"), ("--chunks", "nan"), ("--retries", "-2"),
                                           ("--retries", "1e9")])
def test_farm_numbers_out_of_range_are_refused_in_one_line_before_anything_starts(tmp_path, option, value):
    spec = write_spec(tmp_path / "spec.json", "inbetween", {"keys": [], "frames": [], "output_dir": str(tmp_path)})
    before = tree_state(tmp_path)
    done = subprocess.run([sys.executable, "-m", "nn.farm", spec, "--ray", "127.0.0.1:1", option, value], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith(f"error: {option} must be a whole number")
    assert done.stderr.count("\n") == 1
    assert tree_state(tmp_path) == before
