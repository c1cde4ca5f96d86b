"""Style propagation core (nn/stylize): real small images, real training, no mocks.

Footage is a smooth colour field with a disc moving 2 px per frame; the "painted" style is
a colour grade of it, so the true stylized version of every frame is known.
"""
import os
import time

import numpy as np
import pytest
import torch

from conftest import SHARED
from nn.imageio import ImageFormat, read_image, write_image
from nn.inbetween.flow import Flow
from nn.stylize import task
from nn.stylize.__main__ import main as cli_main
from nn.stylize.guides import advected_positions, guide_channels, key_weights, propagation_order
from nn.stylize.infer import propagate, run_generator
from nn.stylize.network import Generator
from nn.stylize.train import Keyframe, StyleConfig, Trainer, load_model, save_model
from nn.stylize.vgg import VGGFeatures, vgg19_layers
from nn.worker import TaskContext, TaskError

W, H = 64, 48
FAST = {"patch_size": 32, "batch_size": 8, "learning_rate": 0.004}


def footage(t: int, alpha: bool = False) -> np.ndarray:
    """(H, W, 3 or 4) frame t: gradient background, a disc at x = 20 + 2t."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([x / W, y / H, 0.5 + 0.3 * np.sin(x / 7.0 + y / 5.0)], -1)
    disc = ((x - 20 - 2 * t) ** 2 + (y - 24) ** 2) < 100
    rgb[disc] = (0.9, 0.8, 0.2)
    if alpha:
        rgb = np.concatenate([rgb, (0.25 + 0.5 * x / W)[..., None]], -1)
    return rgb


def style(frame: np.ndarray) -> np.ndarray:
    """The 'painting': a strong colour grade (channels swapped, tinted)."""
    return np.clip(frame[..., [2, 0, 1]] * np.float32([0.6, 1.0, 0.8]) + np.float32([0.3, 0.0, 0.1]), 0, 1)


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]


pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(TaskContext):
    def __init__(self):
        super().__init__(torch.device("cpu"), False)
        self.messages, self.previews = [], []

    def progress(self, fraction, message, preview=None):
        self.messages.append((fraction, message))
        if preview:
            self.previews.append(preview)


@pytest.fixture
def clip(tmp_path):
    """6 RGBA PNG frames, a painted key for frame 0, an empty output folder, offline hub settings."""
    frames = []
    for t in range(6):
        path = str(tmp_path / f"f{t:03d}.png")
        write_image(path, footage(t, alpha=True), ImageFormat(".png", "uint8", 4))
        frames.append(path)
    key = str(tmp_path / "key000.png")
    write_image(key, style(footage(0)), ImageFormat(".png", "uint8", 3))
    hub = {"cache_dir": str(tmp_path / "cache"), "local_dir": str(tmp_path / "no-weights"), "online": False}
    params = {"frames": frames, "keys": [{"index": 0, "path": key}], "masks": None,
              "output_dir": str(tmp_path / "out"), "prefix": "style", "seconds": 2.0, "stop_file": None,
              "model_file": None, "resume": False, "save_model": str(tmp_path / "model.safetensors"),
              "preview_index": 3, "fit_sizes": False, "hub": hub, "settings": FAST}
    return params


def test_untrained_generator_returns_its_base_and_trained_one_learns_the_style():
    config = StyleConfig(guides=()).with_settings(FAST)
    frame0 = tensor(footage(0))
    assert torch.equal(config.generator()(frame0), frame0)  # zero-initialised change: starts at the frame
    torch.manual_seed(0)
    trainer = Trainer([Keyframe(frame0, tensor(style(footage(0))))], config, "cpu")
    losses = trainer.train(4.0)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    held_out, truth = tensor(footage(5)), tensor(style(footage(5)))  # the disc moved 10 px
    out = run_generator(trainer.generator.eval(), held_out)
    assert (out - truth).abs().mean() < 0.3 * (held_out - truth).abs().mean()


def test_save_load_round_trip_is_exact_and_never_overwrites(tmp_path):
    config = StyleConfig(guides=("key",), blocks=1)
    torch.manual_seed(0)
    generator = config.generator()
    torch.nn.init.normal_(generator.exit.weight, std=0.05)  # a non-trivial net
    path = str(tmp_path / "m.safetensors")
    save_model(path, generator, config, steps=7)
    loaded, loaded_config, steps, painted = load_model(path, "cpu")
    assert (loaded_config, steps, painted) == (config, 7, {})
    x = torch.rand(1, config.in_channels, H, W)
    assert torch.equal(run_generator(generator.eval(), x), run_generator(loaded, x))
    with pytest.raises(FileExistsError):
        save_model(path, generator, config, steps=8)


def test_vgg_loads_torchvision_style_names():
    names = dict(vgg19_layers().state_dict())
    assert {k.split(".")[0] for k in names} == {"0", "2", "5", "7", "10", "12", "14", "16", "19", "21", "23",
                                                 "25", "28", "30", "32", "34"}
    checkpoint = {f"features.{k}": torch.randn_like(v) * 0.01 for k, v in names.items()}
    checkpoint.update({"pre_logits.fc1.weight": torch.zeros(1), "head.fc.weight": torch.zeros(1)})
    vgg = VGGFeatures(checkpoint)
    assert torch.equal(vgg.features[0].weight, checkpoint["features.0.weight"])
    x = torch.rand(1, 3, 32, 32)
    assert [f.shape[1] for f in vgg(x)] == [64, 128, 256, 512] and float(vgg.loss(x, x)) == 0.0


def test_task_writes_one_styled_frame_per_input_keeping_alpha(clip):
    ctx = Recorder()
    outputs, info = task.run(clip, ctx)
    assert [os.path.basename(p) for p in outputs] == [f"style_{n:04d}.png" for n in range(1, 7)]
    assert info["steps"] > 0 and os.path.isfile(clip["save_model"])
    assert any(n.startswith("flow guides off") for n in info["notes"])  # no RIFE weights here
    # On the CPU the perceptual loss is off before its 575 MB of VGG-19 weights are even looked for.
    assert any(n.startswith("perceptual loss off on the CPU") for n in info["notes"])
    assert not any("VGG-19 weights not available" in n for n in info["notes"])
    for t, path in enumerate(outputs):
        out, fmt = read_image(path)
        assert fmt == ImageFormat(".png", "uint8", 4)
        assert np.abs(out[..., 3] - read_image(clip["frames"][t])[0][..., 3]).max() == 0  # alpha kept
        assert np.abs(out[..., :3] - style(footage(t))).mean() < np.abs(footage(t) - style(footage(t))).mean() / 2
    assert ctx.messages[-1][0] == 1.0 and any(m.startswith("Training: step") for _, m in ctx.messages)
    preview = [p for p in ctx.previews if "previews" in p]
    assert preview and read_image(preview[-1])[0].shape == (H, W, 3)


def test_mask_passes_footage_through_exactly(clip, tmp_path):
    mask = np.zeros((H, W, 1), np.float32)
    mask[:, : W // 2] = 1.0  # stylize the left half only
    mask_path = str(tmp_path / "mask.png")
    write_image(mask_path, mask, ImageFormat(".png", "uint8", 1))
    clip["masks"] = [mask_path] * 6
    outputs, _ = task.run(clip, Recorder())
    for t, path in enumerate(outputs):
        out, original = read_image(path)[0], read_image(clip["frames"][t])[0]
        assert np.array_equal(out[:, W // 2:], original[:, W // 2:])
        assert not np.allclose(out[:, : W // 2, :3], original[:, : W // 2, :3], atol=0.05)


def test_model_reuse_gives_identical_frames_and_resume_trains_on(clip, tmp_path):
    first, _ = task.run(clip, Recorder())
    again = {**clip, "model_file": clip["save_model"], "output_dir": str(tmp_path / "again"), "save_model": None}
    second, info = task.run(again, Recorder())
    assert info["steps"] > 0 and "train_seconds" not in info  # no training
    for a, b in zip(first, second):
        assert np.array_equal(read_image(a)[0], read_image(b)[0])
    alone = {**again, "keys": [], "output_dir": str(tmp_path / "alone")}  # the model carries its keyframe
    for a, b in zip(first, task.run(alone, Recorder())[0]):
        assert np.array_equal(read_image(a)[0], read_image(b)[0])
    resumed = {**again, "resume": True, "seconds": 1.0, "output_dir": str(tmp_path / "resumed"),
               "save_model": str(tmp_path / "resumed.safetensors")}
    _, info2 = task.run(resumed, Recorder())
    assert info2["steps"] > info["steps"]


def test_stop_file_stops_training_and_still_propagates(clip, tmp_path):
    stop = tmp_path / "STOP"
    stop.write_text("")
    start = time.perf_counter()
    outputs, info = task.run({**clip, "seconds": 60.0, "stop_file": str(stop)}, Recorder())
    assert info["stopped_early"] and info["steps"] == 0 and time.perf_counter() - start < 20
    assert len(outputs) == 6 and all(os.path.isfile(p) for p in outputs)


@pytest.mark.parametrize("change, message", [
    (lambda p, d: p.update(keys=[]), "Paint at least one keyframe"),
    (lambda p, d: p.update(keys=[{"index": 6, "path": p["keys"][0]["path"]}]), "footage has 6 frames"),
    (lambda p, d: p.update(keys=[{"index": 0, "path": d}]), "but the footage is 64x48"),
    (lambda p, d: p.update(masks=[d] * 6), "Mask small.png is 32x24"),
    (lambda p, d: p.update(masks=[None] * 5), "Got 5 masks for 6 footage frames"),
])
def test_bad_inputs_are_explained(clip, tmp_path, change, message):
    small = str(tmp_path / "small.png")
    write_image(small, np.zeros((24, 32, 3), np.float32), ImageFormat(".png", "uint8", 3))
    change(clip, small)
    with pytest.raises(TaskError, match=message):
        task.run(clip, Recorder())
    assert not os.path.exists(clip["output_dir"])  # nothing written


def test_fit_sizes_resizes_a_keyframe(clip, tmp_path):
    big = str(tmp_path / "big.png")
    write_image(big, np.repeat(np.repeat(style(footage(0)), 2, 0), 2, 1), ImageFormat(".png", "uint8", 3))
    outputs, _ = task.run({**clip, "keys": [{"index": 0, "path": big}], "fit_sizes": True}, Recorder())
    assert len(outputs) == 6


def test_command_line_end_to_end(tmp_path):
    frames, out = tmp_path / "frames", tmp_path / "out"
    frames.mkdir()
    for t in range(4):
        write_image(str(frames / f"{t:03d}.jpg"), footage(t), ImageFormat(".jpg", "uint8", 3))
    key = str(tmp_path / "style000.png")
    write_image(key, style(footage(0)), ImageFormat(".png", "uint8", 3))
    args = ["--frames", str(frames), "--key", f"0={key}", "--seconds", "1", "--out", str(out),
            "--cache-dir", str(tmp_path / "cache"), "--offline"]
    assert cli_main(args) == 0
    assert sorted(os.listdir(out)) == ["000.png", "001.png", "002.png", "003.png", "model.safetensors"]
    with pytest.raises(SystemExit, match="Refusing to overwrite"):
        cli_main(args)
    reuse = tmp_path / "reuse"
    assert cli_main(args[:6] + ["--out", str(reuse), "--model", str(out / "model.safetensors"), "--offline"]) == 0
    assert np.array_equal(read_image(str(reuse / "002.png"))[0], read_image(str(out / "002.png"))[0])


@pytest.mark.skipif(not (SHARED / "weights" / "rife-v4.25").is_dir(), reason="../shared RIFE weights absent")
def test_flow_guides_carry_the_key_along_the_motion(tmp_path):
    from nn import hub

    flow = Flow.load(hub.HubSettings(str(tmp_path), str(SHARED / "weights")), "cpu", False)
    frames = [tensor(footage(t)) for t in range(4)]
    key = tensor(style(footage(0)))
    carried = {i: guide_channels(("key",), p, key) for i, _, p in advected_positions(lambda i: frames[i], 4, [0], flow)}
    truth, static = tensor(style(footage(3))), key  # the disc moved 6 px
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert (carried[3] - truth)[inner].abs().mean() < 0.4 * (static - truth)[inner].abs().mean()


@pytest.mark.skipif(not (SHARED / "weights" / "rife-v4.25").is_dir(), reason="../shared RIFE weights absent")
def test_task_with_flow_guides_and_a_model_applied_alone(clip, tmp_path):
    clip["hub"]["local_dir"] = str(SHARED / "weights")
    first, info = task.run(clip, Recorder())
    assert info["guides"] == ["key"] and not any(n.startswith("flow guides off") for n in info["notes"])
    for t, path in enumerate(first):  # the carried paint already matches the moving disc
        assert np.abs(read_image(path)[0][..., :3] - style(footage(t))).mean() < 0.05
    alone = {**clip, "keys": [], "model_file": clip["save_model"], "save_model": None,
             "output_dir": str(tmp_path / "alone")}
    for a, b in zip(first, task.run(alone, Recorder())[0]):
        assert np.array_equal(read_image(a)[0], read_image(b)[0])


def test_tiled_inference_leaves_no_seam_a_viewer_could_see():
    """Tiles (here 256 px, as 1024 px tiles of 1080p and up) blend to the whole-frame result within one 8-bit level."""
    torch.manual_seed(0)
    generator = Generator(6).eval()
    torch.nn.init.normal_(generator.exit.weight, 0.0, 0.05)  # as after training: the last conv is not zero
    y, x = torch.meshgrid(torch.linspace(0, 1, 360), torch.linspace(0, 1, 640), indexing="ij")
    inputs = torch.cat([torch.stack([x, y, x * y])[None], torch.rand(1, 3, 360, 640)], 1)  # (1, 6, H, W)
    whole = run_generator(generator, inputs, tile=1024)
    tiled = run_generator(generator, inputs, tile=256, overlap=64)
    difference = (whole - tiled).abs()
    assert difference.max().item() < 1 / 255 and difference.mean().item() < 0.01 / 255
    assert (whole - inputs[:, :3]).abs().mean().item() > 0.05  # the net changes the picture: a real test


def test_key_weights_cross_fade_between_keys_and_keep_each_key_its_own():
    assert [key_weights(i, [0, 10]) for i in (4, 5, 6)] == [{0: 1.0}, {0: 1.0}, {10: 1.0}]  # nearest, ties earlier
    fades = [key_weights(i, [0, 10], blend=2) for i in range(3, 8)]
    assert fades == [{0: 1.0}, {0: 0.75, 10: 0.25}, {0: 0.5, 10: 0.5}, {0: 0.25, 10: 0.75}, {10: 1.0}]
    assert key_weights(2, [0, 2, 4], blend=8) == {2: 1.0}  # a key frame is its key's alone
    assert key_weights(1, [0, 2], blend=8) == {0: 0.5, 2: 0.5}  # the fade never reaches past a key
    visits = list(propagation_order(11, [0, 10], blend=2))
    assert sorted(i for i, _, _ in visits) == sorted(list(range(11)) + [4, 5, 6])  # the fade frames twice
    assert all(previous is None or abs(previous - i) == 1 for i, _, previous in visits)


def test_frames_between_two_keys_dissolve_from_one_to_the_other():
    """A generator that returns the carried key: the output shows the weights themselves."""
    config = StyleConfig(guides=("key",))
    generator = config.generator().eval()  # untrained: the last conv is zero, so it outputs its base, the key
    frames = [torch.full((1, 3, 16, 16), 0.5) for _ in range(11)]
    red, blue = torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
    red[:, 0], blue[:, 2] = 1.0, 1.0
    out = dict(propagate(generator, config, lambda i: frames[i], 11, {0: red, 10: blue}, blend=2))
    assert sorted(out) == list(range(11))
    reds = [out[i][0, 0].mean().item() for i in range(11)]
    assert reds == pytest.approx([1, 1, 1, 1, 0.75, 0.5, 0.25, 0, 0, 0, 0], abs=1e-6)
    assert all(torch.allclose(out[i][0, 0] + out[i][0, 2], torch.ones(16, 16)) for i in range(11))
