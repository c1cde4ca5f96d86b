"""Learned loop motion predictor (nn/loop/motion_net.py, nn/loop/train.py): real training, no mocks.

The synthetic clip: a bluish random texture in the upper band translates +2 px per frame in x,
a reddish one below stays still, so the true field is known and the flow is passed in as a
function instead of RIFE. With ../shared, the command line trains on the real sky time-lapse.
"""
import glob
import os
import re

import numpy as np
import pytest
import torch

from conftest import SHARED, needs_shared
from nn.imageio import ImageFormat, read_image, write_image
from nn.motion.warp import warp
from nn.loop.motion_net import KIND, MotionPredictor, load_predictor, predict_velocity, resize_field, save_predictor
from nn.loop.train import Clip, MotionTrainer, main as train_main, prepare_clip
from nn.worker import TaskError

H, W, SPEED, FRAMES = 64, 96, 2.0, 4
BAND = H // 2  # rows above move, rows below stay
SKY = SHARED / "data" / "loop" / "sky-timelapse-8"


pytestmark = pytest.mark.usefixtures("one_thread")


def frame(t: int) -> np.ndarray:
    """(H, W, 3) frame t: the upper band's texture shifted right by SPEED * t px, the lower band fixed."""
    texture = np.random.default_rng(0).random((H, W + 40), dtype=np.float32)
    shift = int(SPEED * t)
    upper = texture[:BAND, 20 - shift:20 - shift + W]
    lower = texture[BAND:, 20:20 + W]
    image = np.empty((H, W, 3), np.float32)
    image[:BAND] = np.stack([0.2 * upper, 0.4 + 0.2 * upper, 0.6 + 0.4 * upper], -1)
    image[BAND:] = np.stack([0.5 + 0.5 * lower, 0.3 * lower, np.full_like(lower, 0.1)], -1)
    return image


TRUTH = torch.zeros(1, 2, H, W)
TRUTH[:, 0, :BAND] = SPEED


def known_flow(source: torch.Tensor, target: torch.Tensor, frames_apart: int = 1) -> torch.Tensor:
    """The true flow in ``Flow``'s convention (warp(source, flow) ~ target), as asked for (i + k -> i).

    At the size it is asked for: pixels per frame scale with the frame, x and y on their own.
    """
    return resize_field(TRUTH, source.shape[-2:]) * frames_apart


def still(t: int = 0) -> torch.Tensor:
    return torch.from_numpy(frame(t)).permute(2, 0, 1)[None]


@pytest.fixture
def clip_dir(tmp_path):
    folder = tmp_path / "clips" / "band"
    folder.mkdir(parents=True)
    for t in range(FRAMES):
        write_image(str(folder / f"f{t:03d}.png"), frame(t), ImageFormat(".png", "uint8", 3))
    return folder


@pytest.fixture
def trained(clip_dir):
    """(trainer, losses, clip): 40 steps on the band clip at a 96 px working size."""
    paths = sorted(glob.glob(str(clip_dir / "*.png")))
    clip = prepare_clip("band", paths, known_flow, working_side=96)
    # No flips: a mirrored random texture is just another random texture, so with flips
    # left and right motion would be equally likely for it and nothing could be learned.
    trainer = MotionTrainer([clip], steps=40, crop=32, batch=4, lr=1e-3, working_side=96, flip=0.0)
    return trainer, trainer.train(), clip


def test_known_flow_follows_the_documented_convention():
    """The test's flow must be what RIFE's would be: frame i+1 warped by it looks like frame i."""
    inner = (slice(None), slice(None), slice(2, BAND - 2), slice(8, -8))
    later, earlier = still(1), still(0)
    assert (warp(later, known_flow(later, earlier)) - earlier)[inner].abs().max() < 1e-4
    assert (later - earlier)[inner].abs().mean() > 0.05


def test_prepare_clip_measures_the_mean_field(clip_dir):
    paths = sorted(glob.glob(str(clip_dir / "*.png")))
    clip = prepare_clip("band", paths, known_flow, working_side=96)
    assert clip.frames.shape == (FRAMES, 3, H, W) and torch.equal(clip.target, TRUTH)
    assert torch.allclose(clip.frames[1], still(1)[0], atol=1 / 255)  # every frame kept as an input
    # Pairs 2 frames apart, at a working size of 64x32 (64x96: the longer side 64, the other 42.7 -> 32).
    small = prepare_clip("band", paths, lambda s, t: known_flow(s, t, 2), working_side=64, step=2)
    assert small.frames.shape == (FRAMES, 3, 32, 64)
    assert small.target[0, 0, 2:14].mean().item() == pytest.approx(SPEED * 64 / 96, rel=1e-4)  # px per frame there
    assert small.target[0, 0, 18:].abs().max() == 0


def test_training_learns_which_band_moves(trained):
    trainer, losses, _ = trained
    assert trainer.steps == 40 and not trainer.interrupted
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    field = predict_velocity(trainer.model, still(2), "cpu")  # (1, 2, H, W)
    moving, static = field[0, 0, 4:BAND - 4].mean().item(), field[0, 0, BAND + 4:-4].mean().item()
    assert moving > 1.0 and moving > static + 1.0, (moving, static)
    # A still twice the size gives twice the pixels per frame, at its own resolution; alpha is ignored.
    big = torch.nn.functional.interpolate(still(2), scale_factor=2.0, mode="bilinear", align_corners=False)
    big = torch.cat([big, torch.rand_like(big[:, :1])], 1)
    doubled = predict_velocity(trainer.model, big, "cpu")
    assert doubled.shape == (1, 2, 2 * H, 2 * W)
    assert 1.6 < doubled[0, 0, 8:2 * BAND - 8].mean().item() / moving < 2.4


def test_flips_mirror_the_image_and_negate_x_motion():
    clip = Clip("c", torch.rand(2, 3, 64, 64), torch.randn(1, 2, 64, 64))
    plain = MotionTrainer([clip], steps=1, crop=32, batch=3, seed=5, flip=0.0).batch()
    flipped = MotionTrainer([clip], steps=1, crop=32, batch=3, seed=5, flip=1.0).batch()
    assert torch.allclose(flipped[0], plain[0].flip(-1))
    assert torch.equal(flipped[1][:, 0], -plain[1][:, 0].flip(-1))  # x motion negated
    assert torch.equal(flipped[1][:, 1], plain[1][:, 1].flip(-1))  # y motion only mirrored


def test_save_load_round_trip(trained, tmp_path):
    trainer, _, _ = trained
    path = str(tmp_path / "motion.safetensors")
    save_predictor(trainer.model, path, trainer.metadata(frames_step=1))
    model = load_predictor(path, "cpu")
    assert model.working_side == 96 and not model.training
    assert {k: model.metadata[k] for k in ("kind", "working_side", "frames_step", "training_clips", "steps")} == {
        "kind": KIND, "working_side": "96", "frames_step": "1", "training_clips": "1", "steps": "40"}
    image = still(1)
    assert torch.equal(predict_velocity(model, image, "cpu"), predict_velocity(trainer.model, image, "cpu"))
    with pytest.raises(FileExistsError, match="Refusing to overwrite"):
        save_predictor(MotionPredictor(96), path, {})
    save_predictor(MotionPredictor(96), path, {}, overwrite=True)  # the caller said so
    assert predict_velocity(load_predictor(path, "cpu"), image, "cpu").abs().max() == 0  # a fresh net: no motion
    assert sorted(os.listdir(tmp_path)) == ["clips", "motion.safetensors"]  # no partial files left

    # A legacy checkpoint of tensors goes through hub.load_tensors' weights-only path (no metadata:
    # the default working side).
    net = MotionPredictor()
    torch.nn.init.normal_(net.exit.weight, std=0.01)
    legacy = str(tmp_path / "motion.pth")
    torch.save(net.state_dict(), legacy)
    model = load_predictor(legacy, "cpu", converted_dir=str(tmp_path / "converted"))
    assert torch.equal(predict_velocity(model, image, "cpu"), predict_velocity(net, image, "cpu"))
    assert predict_velocity(model, image, "cpu").abs().max() > 0


def test_loading_anything_else_is_refused_with_the_path(tmp_path):
    from safetensors.torch import save_file

    missing = str(tmp_path / "nowhere.safetensors")
    with pytest.raises(TaskError, match="does not exist") as error:
        load_predictor(missing, "cpu")
    assert missing in str(error.value)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_text("not a model")
    with pytest.raises(TaskError, match="not a readable safetensors file") as error:
        load_predictor(str(garbage), "cpu")
    assert str(garbage) in str(error.value)

    style = str(tmp_path / "style_model.safetensors")
    save_file({"w": torch.zeros(2)}, style, metadata={"format": "frameweaver-stylize/1"})
    with pytest.raises(TaskError, match="not a Frameweaver loop motion model") as error:
        load_predictor(style, "cpu")
    assert style in str(error.value)

    wrong = str(tmp_path / "wrong.safetensors")
    save_file({"w": torch.zeros(2)}, wrong, metadata={"kind": KIND, "format": "1"})
    with pytest.raises(TaskError, match="do not fit the loop motion network") as error:
        load_predictor(wrong, "cpu")
    assert wrong in str(error.value)

    pickled = str(tmp_path / "object.pth")
    torch.save({"model": MotionPredictor(96)}, pickled)  # a pickled module, not plain tensors
    with pytest.raises(TaskError, match="Cannot load the motion model") as error:
        load_predictor(pickled, "cpu", converted_dir=str(tmp_path / "converted"))
    assert pickled in str(error.value)


def test_command_line_refusals(clip_dir, tmp_path):
    out = tmp_path / "motion.safetensors"
    out.write_bytes(b"the user's file")
    with pytest.raises(SystemExit, match="exists; choose another name"):
        train_main([str(clip_dir.parent), "--out", str(out), "--offline"])
    assert out.read_bytes() == b"the user's file"

    empty = tmp_path / "videos"
    empty.mkdir()
    (empty / "sea.mp4").write_bytes(b"")
    with pytest.raises(SystemExit, match="No clips in .*extract each to frames first"):
        train_main([str(empty), "--out", str(tmp_path / "new.safetensors"), "--offline"])

    single = tmp_path / "single"
    single.mkdir()
    write_image(str(single / "a.png"), frame(0), ImageFormat(".png", "uint8", 3))
    with pytest.raises(SystemExit, match="has 1 frame.*at least 2"):
        train_main([str(single), "--out", str(tmp_path / "new.safetensors"), "--offline"])
    write_image(str(single / "b.png"), frame(1)[:32], ImageFormat(".png", "uint8", 3))
    with pytest.raises(SystemExit, match="mixes frame sizes: a.png is 96x64 but .*b.png is 96x32"):
        train_main([str(single), "--out", str(tmp_path / "new.safetensors"), "--offline"])
    assert not (tmp_path / "new.safetensors").exists()


def test_help_says_to_extract_videos(capsys):
    with pytest.raises(SystemExit):
        train_main(["--help"])
    assert "Video files are not read: extract them to frames first" in capsys.readouterr().out


@needs_shared()
def test_command_line_on_the_sky_time_lapse(tmp_path, capsys, project_weights):
    from nn import hub
    from nn.motion.flow import Flow

    torch.set_num_threads(2)
    out = str(tmp_path / "sky.safetensors")
    args = [str(SKY), "--out", out, "--steps", "60", "--batch", "4", "--crop", "128", "--device", "cpu",
            "--weights-dir", str(project_weights), "--cache-dir", str(tmp_path / "cache"), "--offline"]
    assert train_main(args) == 0
    assert f"saved {out} after 60 steps" in capsys.readouterr().out
    model = load_predictor(out, "cpu")
    assert model.metadata["training_clips"] == "1" and model.metadata["steps"] == "60"

    paths = sorted(glob.glob(str(SKY / "*.jpg")))
    flow = Flow.load(hub.HubSettings(str(tmp_path / "cache"), str(project_weights)), "cpu", False)
    with torch.no_grad():
        target = prepare_clip("sky", paths, flow).target  # (1, 2, 224, 384): the clip's mean RIFE flow
    image = torch.from_numpy(read_image(paths[0])[0]).permute(2, 0, 1)[None]  # (1, 3, 360, 640)
    field = predict_velocity(model, image, "cpu")
    assert field.shape == (1, 2, 360, 640)
    mean, truth = field.mean((2, 3)), resize_field(target, (360, 640)).mean((2, 3))  # (1, 2) px/frame at 640x360
    assert torch.nn.functional.cosine_similarity(mean, truth).item() > 0.8, (mean, truth)  # the clouds rise
    assert mean[0, 1] < 0.5 * truth[0, 1] < 0, (mean, truth)  # and at a speed of the right order
    # The clouds move, the dark ground below the horizon (the bottom sixth) does not.
    speed = field.norm(dim=1)[0]
    assert speed[:120].mean() > 3 * speed[300:].mean(), (speed[:120].mean(), speed[300:].mean())


def test_a_loop_from_the_learned_field_moves_only_what_the_model_sees_moving(trained, tmp_path):
    """The worker task with motion_source "learned" and no mask: the model decides the region too."""
    from nn.loop import task
    from test_loop_core import Recorder

    model = tmp_path / "motion.safetensors"
    save_predictor(trained[0].model, str(model))
    image = tmp_path / "still.png"
    write_image(str(image), frame(0), ImageFormat(".png", "uint16", 3))
    params = {"image": str(image), "motion_source": "learned", "motion_model": str(model), "frames": 4,
              "speed": 1.5, "output_dir": str(tmp_path / "out")}
    outputs, info = task.run(params, Recorder())
    assert len(outputs) == 4 and abs(info["mean_speed"] - 1.5) < 1e-3 and 0.3 < info["moving_fraction"] < 0.7
    original = read_image(str(image))[0]
    changes = [np.abs(read_image(path)[0] - original).max(-1) for path in outputs]
    assert all(change[BAND + 8:].max() == 0 for change in changes)  # the still band stays exactly still
    assert all(change[4:BAND - 4].mean() > 0.01 for change in changes)  # the moving band moves


def test_without_a_model_the_loop_says_how_to_train_one(tmp_path):
    from nn.loop import task
    from test_loop_core import Recorder

    image = tmp_path / "still.png"
    write_image(str(image), frame(0), ImageFormat(".png", "uint8", 3))
    hub_settings = {"cache_dir": str(tmp_path / "hub"), "local_dir": str(tmp_path / "weights"), "online": False}
    params = {"image": str(image), "motion_source": "learned", "frames": 4, "output_dir": str(tmp_path / "out"),
              "hub": hub_settings}
    placed = os.path.join(str(tmp_path / "weights"), "loop-motion", "loop_motion.safetensors")
    with pytest.raises(TaskError, match=re.escape(f"nn.loop.train CLIPS --out {placed}")):
        task.run(params, Recorder())
