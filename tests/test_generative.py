"""The generative backend (nn/generate) and its two command lines, on a tiny random VACE pipeline of the
real diffusers classes (tests/tiny_vace.py). Its frames are noise: these tests check the plumbing (files,
names, sizes, seeds, windows, regions, messages), never quality.
"""
import hashlib
import math
import os

import numpy as np
import pytest
import torch

import tiny_vace as tiny_pipeline
from helpers import moved_then_redrawn, write_keyframes
from nn.generate import matte
from nn.generate.pipeline import Settings
from nn.generate.video import frames_on_grid, grid_size, windows
from nn.imageio import ImageFormat, read_image, write_image
from nn.inbetween.__main__ import main as inbetween_main
from nn.loop.__main__ import main as loop_main
from nn.worker import TaskContext, TaskError
from test_faults import assert_one_line_failure, guarded_command, tree_state

STEPS = ["--steps", "2"]


def file_bytes(paths):
    return {path: open(path, "rb").read() for path in paths}


class Recorder(TaskContext):
    def __init__(self):
        super().__init__(torch.device("cpu"), half=False)
        self.messages = []

    def progress(self, fraction, message, preview=None):
        self.messages.append((fraction, message))


# --- The model's grid -------------------------------------------------------------------------------


@pytest.mark.parametrize("length, window, overlap", [(2, 81, 8), (9, 9, 2), (10, 9, 2), (40, 9, 3), (200, 81, 8)])
def test_windows_cover_every_position_on_the_model_grid(length, window, overlap):
    spans = windows(length, window, overlap)
    assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] >= length
    for (start, count), (next_start, _) in zip(spans, spans[1:]):
        assert next_start == start + count - overlap  # each window shares ``overlap`` frames with the last
    assert all(count <= window and (count - 1) % 4 == 0 for _, count in spans)  # 4k+1 frames, never more


def test_grid_size_keeps_the_shape_on_multiples_of_16_and_never_upscales():
    assert grid_size(64, 48, 832 * 480) == (64, 48)
    assert grid_size(1920, 1080, 832 * 480) == (848, 480)
    assert grid_size(50, 20, 832 * 480) == (48, 16)
    assert [frames_on_grid(n) for n in (1, 2, 5, 6, 9, 10)] == [5, 5, 5, 9, 9, 13]


def test_an_opaque_cut_out_keyed_out_of_its_matte_is_the_cut_out():
    key = 0.3 + 0.4 * torch.rand(4, 20, 30)  # mid-tones: no colour within the matte's softness of a corner
    key[3] = (torch.arange(30) > 12).float()  # a hard-edged cut-out
    colour = matte.choose_matte([key])
    back = matte.key_out(matte.over_matte(key, colour), colour)
    assert torch.equal(back[3], key[3])
    opaque = key[3] > 0
    assert torch.allclose(back[:3][:, opaque], key[:3][:, opaque], atol=1e-6)


def test_the_matte_is_a_colour_the_keys_do_not_show():
    greens = torch.zeros(4, 8, 8)
    greens[1], greens[3] = 1.0, 1.0  # pure green, opaque
    assert not torch.equal(matte.choose_matte([greens]), torch.tensor([0.0, 1.0, 0.0]))


# --- Inbetweens on the command line ---------------------------------------------------------------


def test_command_line_inbetweens_named_sized_and_seeded(tmp_path, tiny_vace):
    keys = write_keyframes(str(tmp_path), count=3, step=6.0)  # RGBA 64x48
    before = file_bytes(keys)
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert inbetween_main([*keys, "--count", "3", "--model", "generative", "--model-dir", tiny_vace, *STEPS,
                               "--seed", str(seed), "--prompt", "the sea moves", "--out", str(tmp_path / name)]) == 0
        runs[name] = file_bytes(sorted(str(p) for p in (tmp_path / name).iterdir()))
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == [f"key_0{g}_t{t}.png" for g in (0, 1) for t in ("0.250", "0.500", "0.750")]
    for path in runs["a"]:
        pixels, fmt = read_image(path)
        assert pixels.shape == (48, 64, 4) and fmt.channels == 4  # the keys' size, alpha kept
        assert np.isfinite(pixels).all() and 0 <= pixels.min() and pixels.max() <= 1
    assert list(runs["a"].values()) == list(runs["b"].values())  # the same seed gives the same frames
    assert list(runs["a"].values()) != list(runs["c"].values())
    assert file_bytes(keys) == before  # the keys are untouched


def test_a_sequence_longer_than_a_window_is_made_in_overlapping_windows(tmp_path, tiny_vace):
    from nn.inbetween import task

    keys = write_keyframes(str(tmp_path), count=3, fmt=ImageFormat(".png", "uint8", 3))
    frames = [[0, 0, 0.0]] + [[0, 1, j / 7] for j in range(1, 7)] + [[1, 1, 0.0]] + \
             [[1, 2, j / 7] for j in range(1, 7)] + [[2, 2, 0.0]]
    ctx = Recorder()
    (tmp_path / "out").mkdir()  # the job's folder, as Blender's side makes it
    outputs, _ = task.run({"keys": keys, "frames": frames, "model": "generative", "model_dir": tiny_vace,
                           "steps": 2, "window": 9, "overlap": 2, "allow_cpu": True, "hub": {},
                           "output_dir": str(tmp_path / "out"), "prefix": "inbetween"}, ctx)
    assert len(outputs) == 15 and all(read_image(p)[0].shape == (48, 64, 3) for p in outputs)
    assert read_image(outputs[7])[0].tobytes() == read_image(keys[1])[0].tobytes()  # a key stays the key
    steps = [message for _, message in ctx.messages if "step" in message]
    assert windows(15, 9, 2) == [(0, 9), (7, 9)]
    assert any("window 2 of 2, step 2 of 2" in message for message in steps)
    fractions = [fraction for fraction, message in ctx.messages if "step" in message]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # progress only goes forward


def test_a_prompt_longer_than_the_text_encoder_takes_is_cut_and_said(tmp_path, tiny_vace, capfd):
    keys = write_keyframes(str(tmp_path), count=2)
    prompt = " ".join(["the sea"] * 20)
    assert inbetween_main([*keys, "--count", "1", "--model", "generative", "--model-dir", tiny_vace, *STEPS,
                           "--prompt", prompt, "--out", str(tmp_path / "out")]) == 0
    assert f"the text encoder takes {tiny_pipeline.MAX_TOKENS}, so the rest was ignored" in capfd.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--steps", "0", "--steps must be a whole number from 1 to 1000, got 0"),  # the words of nn/values.py
    ("--guidance", "nan", "--guidance must be a finite number from 0 to 30, got nan"),
    ("--guidance", "inf", "--guidance must be a finite number from 0 to 30, got inf"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, tiny_vace, option, value, message):
    keys = write_keyframes(str(tmp_path), count=2)
    before = tree_state(tmp_path)
    done = guarded_command("nn.inbetween", *keys, "--model", "generative", "--model-dir", tiny_vace, option, value,
                           "--out", tmp_path / "out")
    assert assert_one_line_failure(done, "error: ") == f"error: {message}"
    assert tree_state(tmp_path) == before


def not_a_pipeline(folder):
    os.makedirs(folder)


def another_pipeline(folder, tiny):
    import shutil
    shutil.copytree(tiny, folder)
    index = os.path.join(folder, "model_index.json")
    with open(index) as f:
        text = f.read().replace("WanVACEPipeline", "WanPipeline")
    with open(index, "w") as f:
        f.write(text)


def no_transformer(folder, tiny):
    import shutil
    shutil.copytree(tiny, folder)
    shutil.rmtree(os.path.join(folder, "transformer"))


@pytest.mark.parametrize("make, message", [
    (lambda folder, tiny: not_a_pipeline(folder), "is not a diffusers pipeline folder: it has no model_index.json"),
    (another_pipeline, "holds a WanPipeline pipeline, not a WanVACEPipeline (Wan2.1 VACE)"),
    (no_transformer, "is incomplete: missing transformer/"),
])
def test_a_folder_that_is_not_a_vace_pipeline_says_what_is_missing(tmp_path, tiny_vace, make, message):
    keys = write_keyframes(str(tmp_path), count=2)
    folder = tmp_path / "model"
    make(str(folder), tiny_vace)
    before = tree_state(tmp_path)
    done = guarded_command("nn.inbetween", *keys, "--model", "generative", "--model-dir", folder, "--out",
                           tmp_path / "out")
    line = assert_one_line_failure(done, "error: ")
    assert message in line and str(folder) in line
    assert tree_state(tmp_path) == before


def test_missing_weights_offline_name_the_repository_its_size_and_where_to_put_it(tmp_path):
    keys = write_keyframes(str(tmp_path), count=2)
    before = tree_state(tmp_path)
    done = guarded_command("nn.inbetween", *keys, "--model", "generative", "--offline", "--weights-dir",
                           tmp_path / "weights", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "out")
    line = assert_one_line_failure(done, "error: Weights 'wan2.1-vace-1.3b' are not available: online access is off")
    assert "Wan-AI/Wan2.1-VACE-1.3B-diffusers (about 18.0 GB, Apache-2.0" in line
    assert str(tmp_path / "weights" / "wan2.1-vace-1.3b") in line  # where to put it
    assert tree_state(tmp_path) == before  # and no network call (the guard)
    done = guarded_command("nn.inbetween", *keys, "--model", "generative", "--generative-model", "wan2.1-vace-14b",
                           "--offline", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "out")
    assert "Wan-AI/Wan2.1-VACE-14B-diffusers (about 75.0 GB" in assert_one_line_failure(done, "error: Weights")


def test_weights_from_the_hub_cache_are_checked_against_their_lfs_hash(tmp_path, tiny_vace):
    keys = write_keyframes(str(tmp_path), count=2)
    cache = tmp_path / "cache"
    snapshot = tiny_pipeline.as_hub_cache(tiny_vace, str(cache), "Wan-AI/Wan2.1-VACE-1.3B-diffusers")
    run = lambda out: guarded_command("nn.inbetween", *keys, "--model", "generative", "--offline", "--cache-dir",  # noqa: E731
                                      cache, *STEPS, "--out", tmp_path / out)
    done = run("good")
    assert done.returncode == 0, done.stderr
    assert len(os.listdir(tmp_path / "good")) == 1
    blob = os.path.realpath(os.path.join(snapshot, "transformer", "diffusion_pytorch_model.safetensors"))
    assert hashlib.sha256(open(blob, "rb").read()).hexdigest() == os.path.basename(blob)
    assert os.path.exists(cache / "verified" / os.path.basename(blob))  # checked once, then stamped
    os.remove(cache / "verified" / os.path.basename(blob))
    with open(blob, "r+b") as f:  # one byte changed in the cached blob
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    line = assert_one_line_failure(run("bad"), "error: Weights file ")
    assert "does not match the Hub's checksum" in line and "diffusion_pytorch_model.safetensors" in line
    assert not (tmp_path / "bad").exists()


def test_the_cpu_is_refused_unless_allowed(tmp_path, tiny_vace):
    from nn.inbetween import task

    keys = write_keyframes(str(tmp_path), count=2)
    params = {"keys": keys, "frames": [[0, 0, 0.0], [0, 1, 0.5], [1, 1, 0.0]], "model": "generative",
              "model_dir": tiny_vace, "steps": 1, "hub": {}, "output_dir": str(tmp_path / "out"), "prefix": "f"}
    with pytest.raises(TaskError, match="The generative model needs a CUDA GPU and this machine has none"):
        task.run(params, Recorder())
    assert not (tmp_path / "out").exists()


# --- Loops on the command line --------------------------------------------------------------------


def still_and_mask(folder, channels=3):
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    still = np.stack([0.5 + 0.5 * np.sin(x / 6), y / 48, 0.5 + 0.5 * np.cos((x + y) / 9), (x > 5) * 1.0], -1)
    write_image(str(folder / "still.png"), still[..., :channels], ImageFormat(".png", "uint8", channels))
    mask = np.zeros((48, 64, 3), np.float32)
    mask[10:30, 20:50] = 1
    write_image(str(folder / "mask.png"), mask, ImageFormat(".png", "uint8", 3))
    return str(folder / "still.png"), str(folder / "mask.png"), mask[..., 0] > 0


@pytest.mark.parametrize("channels", [3, 4])
def test_a_generative_loop_changes_only_the_region_and_starts_on_the_still(tmp_path, tiny_vace, channels):
    still, mask, region = still_and_mask(tmp_path, channels)
    assert loop_main([still, "--mask", mask, "--motion", "generative", "--model-dir", tiny_vace, *STEPS,
                      "--frames", "6", "--out", str(tmp_path / "loop")]) == 0
    frames = sorted(os.listdir(tmp_path / "loop"))
    assert frames == [f"frame_{i:04d}.png" for i in range(6)]
    original = read_image(still)[0]
    pictures = [read_image(str(tmp_path / "loop" / name))[0] for name in frames]
    assert pictures[0].tobytes() == original.tobytes()  # the loop starts (and, after its last frame, ends) on the still
    for picture in pictures[1:]:
        assert picture.shape == original.shape
        assert np.array_equal(picture[~region], original[~region])  # outside the region: the still, bit for bit
    assert any(not np.array_equal(picture[region], original[region]) for picture in pictures[1:])


def test_an_endless_generative_clip_passes_through_the_still_every_window(tmp_path, tiny_vace):
    from nn.loop.generative import still_positions

    assert still_positions(20, 9, endless=True, seamless=False) == [0, 8, 16]
    assert still_positions(20, 9, endless=True, seamless=True) == [0, 8, 16, 20]
    assert still_positions(20, 81, endless=False, seamless=False) == [0, 20]
    still, mask, _ = still_and_mask(tmp_path)
    from nn.loop import task

    outputs, info = task.run({"image": still, "mask": mask, "motion_source": "generative", "model_dir": tiny_vace,
                              "steps": 1, "window": 9, "overlap": 2, "frames": 48, "endless": True, "allow_cpu": True,
                              "hub": {}, "output_dir": str(tmp_path / "clip"), "prefix": "frame"}, Recorder())
    assert len(outputs) == 48 and info["anchors"] == list(range(0, 49, 8))
    original = read_image(still)[0].tobytes()
    assert all(read_image(outputs[p])[0].tobytes() == original for p in info["anchors"] if p < 48)
    assert math.isclose(info["moving_fraction"], 20 * 30 / (48 * 64), abs_tol=1e-4)


def test_settings_from_params_take_only_what_is_given():
    assert Settings.from_params({"steps": 4, "prompt": None}) == Settings(steps=4)
    with pytest.raises(TaskError, match="A model window must be 4k\\+1 frames"):
        Settings.from_params({"window": 10})


# --- Auto: Key Motion where motion explains the gap, the generative model where it cannot -----------


def test_auto_without_the_generative_model_is_key_motion_and_says_which_gaps_it_would_draw(tmp_path,
                                                                                          project_weights):
    keys = moved_then_redrawn(tmp_path)
    common = ["--count", "2", "--offline", "--weights-dir", str(project_weights), "--cache-dir", str(tmp_path / "c")]
    done = guarded_command("nn.inbetween", *keys, "--model", "auto", *common, "--out", tmp_path / "auto")
    assert done.returncode == 0, done.stderr
    assert ("warning: Auto: motion does not explain the gaps between keys 2-3; the generative model would draw "
            "them, but it needs a CUDA GPU. Key Motion made them") in done.stderr
    assert inbetween_main([*keys, "--model", "keymotion", *common, "--out", str(tmp_path / "km")]) == 0
    names = sorted(os.listdir(tmp_path / "km"))
    assert sorted(os.listdir(tmp_path / "auto")) == names and len(names) == 4
    assert all(open(tmp_path / "auto" / n, "rb").read() == open(tmp_path / "km" / n, "rb").read() for n in names)


def test_auto_draws_only_the_unexplained_gap_with_the_generative_model(tmp_path, tiny_vace, project_weights):
    from nn.inbetween import task

    keys = moved_then_redrawn(tmp_path)
    frames = [[0, 0, 0.0], [0, 1, 1 / 3], [0, 1, 2 / 3], [1, 1, 0.0], [1, 2, 1 / 3], [1, 2, 2 / 3], [2, 2, 0.0]]
    hub = {"cache_dir": str(tmp_path / "cache"), "local_dir": str(project_weights), "online": False}
    runs = {}
    for model in ("auto", "keymotion"):
        (tmp_path / model).mkdir()
        runs[model] = task.run({"keys": keys, "frames": frames, "model": model, "model_dir": tiny_vace, "steps": 1,
                                "allow_cpu": True, "hub": hub, "output_dir": str(tmp_path / model),
                                "prefix": "f"}, Recorder())
    (auto_files, info), (motion_files, _) = runs["auto"], runs["keymotion"]
    assert info["unexplained"]["0-1"] < 0.3 < info["unexplained"]["1-2"]
    assert info["generated_gaps"] == [(1, 2)] and info["notes"] == [
        "Auto: the generative model drew the gaps between keys 2-3, which motion does not explain; Key Motion the rest"]
    same = [read_image(a)[0].tobytes() == read_image(m)[0].tobytes() for a, m in zip(auto_files, motion_files)]
    assert same == [True, True, True, True, False, False, True]  # only the redrawn gap differs


def test_two_runs_of_moving_gaps_are_two_videos_from_one_loaded_model(tmp_path, tiny_vace):
    """A repeated key holds its gap, so the keys either side make separate videos (the prompt encoded once)."""
    from nn.inbetween import task

    first, second = write_keyframes(str(tmp_path), count=2, fmt=ImageFormat(".png", "uint8", 3))
    keys = [first, second, second, first]
    frames = [[a, a, 0.0] if t == 0 else [a, a + 1, t] for a in range(3) for t in (0, 0.5)] + [[3, 3, 0.0]]
    (tmp_path / "out").mkdir()
    outputs, info = task.run({"keys": keys, "frames": frames, "model": "generative", "model_dir": tiny_vace,
                              "steps": 1, "allow_cpu": True, "hub": {}, "output_dir": str(tmp_path / "out"),
                              "prefix": "f"}, Recorder())
    assert len(outputs) == 7
    assert read_image(outputs[3])[0].tobytes() == read_image(second)[0].tobytes()  # the held gap


OUT_OF_MEMORY_RUN = """
import resource, sys
sys.path.insert(0, {root!r})
import torch
from nn.generate.pipeline import Settings, load, prepare
from nn.generate.video import KeyedVideo
from nn.worker import TaskError
device = torch.device("cpu")
model = prepare(load({folder!r}, device), Settings(steps=1), device)
keys = {{0: torch.rand(3, 256, 256), 80: torch.rand(3, 256, 256)}}
KeyedVideo(model, {{0: keys[0][:, :64, :64], 4: keys[80][:, :64, :64]}}, 5).frame(2)  # every library warmed up
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (48 << 20), resource.RLIM_INFINITY))  # 48 MB more, no more
try:
    KeyedVideo(model, keys, 81).frame(40)
except TaskError as error:
    print("MESSAGE", error)
"""


def test_out_of_memory_while_generating_says_what_to_change(tiny_vace):
    """A real allocation failure: the process may grow by 48 MB, and 81 frames at 256x256 need more."""
    import subprocess
    import sys
    from conftest import ROOT

    environment = {**os.environ, "MALLOC_ARENA_MAX": "1", "OMP_NUM_THREADS": "1"}  # no new arena to reserve
    done = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY_RUN.format(root=str(ROOT), folder=tiny_vace)],
                          capture_output=True, text=True, timeout=300, env=environment)
    assert ("MESSAGE Out of memory generating 81 frames at 256x256 on cpu. Turn on Low VRAM in Preferences > "
            "Add-ons > Frameweaver, generate at a smaller size, or use the 1.3B model") in done.stdout, done.stderr[-2000:]
