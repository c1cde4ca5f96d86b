"""Our RIFE networks against frames made by the original code from the same checkpoints.

The reference tests need the shared weights and data folder next to the repository and
skip without it; the others use randomly initialised networks.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import SHARED
from nn.inbetween import MODEL_SPECS, Interpolator, state_dict_from_checkpoint
from nn.motion.warp import warp

SCENES = ["Beanbags", "Dimetrodon", "DogDance", "Grove2", "Grove3", "Hydrangea",
          "MiniCooper", "RubberWhale", "Urban2", "Urban3", "Venus", "Walking"]
MIN_PSNR_DB = 45.0


def read_rgb(path: Path) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1], exactly as the original's OpenCV read and division by 255.

    OpenImageIO scales 8-bit values by *(1/255), which differs from /255 in the last bit;
    snapping back to k/255 makes the comparison exact rather than merely close.
    """
    from nn.imageio import read_image  # needs OpenImageIO, which only these tests use

    pixels = torch.from_numpy(read_image(str(path))[0][..., :3]).permute(2, 0, 1)[None]
    return (pixels * 255).round() / 255


def to_uint8(frame: torch.Tensor) -> torch.Tensor:
    """The reference's quantisation: clamp, then (x * 255 + 0.5) truncated."""
    return (frame.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def reference_models():
    """Loads each checkpoint once for the whole module."""
    if not SHARED.is_dir():
        pytest.skip(f"shared weights and data not found at {SHARED}")
    loaded = {}

    def get(name: str) -> Interpolator:
        if name not in loaded:
            raw = torch.load(SHARED / "weights" / name / "flownet.pkl", map_location="cpu", weights_only=True)
            loaded[name] = Interpolator(name, raw, device="cpu", half=False)
        return loaded[name]

    return get


def scene_case(reference_models, name: str, t: float, scene: str):
    data = SHARED / "data" / "interp" / "middlebury-other" / scene
    img0, img1 = read_rgb(data / "frame10.png"), read_rgb(data / "frame11.png")
    reference = read_rgb(SHARED / "weights" / "reference-outputs" / name / "middlebury-other" / f"{scene}_t{t:.2f}.png")
    return reference_models(name), img0, img1, to_uint8(reference)


@pytest.mark.parametrize("scene", SCENES)
@pytest.mark.parametrize("name, t", [("rife-v4.25", 0.5), ("rife-v4.25", 0.25), ("rife-hdv3", 0.5)])
def test_matches_reference(reference_models, name, t, scene):
    model, img0, img1, reference = scene_case(reference_models, name, t, scene)
    frame = model(img0, img1, t)
    assert frame.shape == img0.shape
    score = psnr(to_uint8(frame), reference)
    print(f"{name} t={t:.2f} {scene}: {score:.2f} dB")
    assert score >= MIN_PSNR_DB


@pytest.mark.parametrize("name", list(MODEL_SPECS))
def test_network_reproduces_original_merge(reference_models, name):
    """Blending at the padded size, as the original does, leaves only rounding differences.

    ``Interpolator`` clamps samples at the true image border, where the original reads the
    zero padding, so its last row/column may differ; this checks everything else.
    """
    model, img0, img1, reference = scene_case(reference_models, name, 0.5, "Venus")  # padded in both models
    height, width = img0.shape[-2:]
    multiple = model.spec.pad_multiple
    pad = (0, -width % multiple, 0, -height % multiple)
    bgr0, bgr1 = F.pad(img0[:, [2, 1, 0]], pad), F.pad(img1[:, [2, 1, 0]], pad)
    with torch.inference_mode():
        flow, mask = model.net(bgr0, bgr1, 0.5) if model.spec.time_conditioned else model.net(bgr0, bgr1)
    merged = warp(bgr0, flow[:, :2]) * mask + warp(bgr1, flow[:, 2:4]) * (1 - mask)
    ours = to_uint8(merged[..., :height, :width][:, [2, 1, 0]])
    # Bit-identical with one thread; more threads reorder sums, flipping a few roundings.
    assert (ours.int() - reference.int()).abs().max() <= 1
    assert psnr(ours, reference) >= 80


def random_interpolator(name: str) -> Interpolator:
    torch.manual_seed(0)
    return Interpolator(name, MODEL_SPECS[name].network().state_dict())


def test_state_dict_cleaning():
    torch.manual_seed(0)
    net = MODEL_SPECS["rife-hdv3"].network()
    raw = {f"module.{key}": value for key, value in net.state_dict().items()}
    raw["module.block_tea.conv0.0.0.weight"] = torch.zeros(1)  # training-only, dropped
    cleaned = state_dict_from_checkpoint("rife-hdv3", raw)
    assert cleaned.keys() == net.state_dict().keys()
    del raw["module.block1.conv1.2.bias"]
    with pytest.raises(ValueError, match="missing 1 tensors.*block1.conv1.2.bias"):
        state_dict_from_checkpoint("rife-hdv3", raw)
    with pytest.raises(ValueError, match="missing"):
        state_dict_from_checkpoint("rife-v4.25", cleaned)
    with pytest.raises(ValueError, match="Unknown interpolation model"):
        state_dict_from_checkpoint("rife-v9", cleaned)


@pytest.mark.parametrize("name", list(MODEL_SPECS))
def test_any_size_and_extra_channels(name):
    model = random_interpolator(name)
    img0, img1 = torch.rand(2, 4, 37, 53), torch.rand(2, 4, 37, 53)  # RGBA, odd size
    flow, mask = model.estimate(img0[:, :3], img1[:, :3], 0.5)
    assert flow.shape == (2, 4, 37, 53) and mask.shape == (2, 1, 37, 53)
    assert model(img0, img1, 0.5).shape == (2, 4, 37, 53)
    assert model(img0, img1, 0.5, flow_scale=0.5).shape == (2, 4, 37, 53)
    with pytest.raises(ValueError, match="flow_scale"):
        model.estimate(img0[:, :3], img1[:, :3], 0.5, flow_scale=0.3)


def test_zero_flow_full_mask_returns_first_frame():
    img0, img1 = torch.rand(1, 4, 37, 53), torch.rand(1, 4, 37, 53)
    frame = Interpolator.synthesize(img0, img1, torch.zeros(1, 4, 37, 53), torch.ones(1, 1, 37, 53))
    # Not bit-exact: the normalised sampling grid (the weights' convention) rounds in the
    # last bits, so a zero flow lands within ~1e-4 px of the pixel centres.
    torch.testing.assert_close(frame, img0, rtol=0, atol=1e-5)


@pytest.mark.parametrize("t, runs", [(0.0, 0), (0.5, 1), (0.25, 2), (0.75, 2), (3 / 64, 6), (1 / 3, 5)])
def test_hdv3_bisection_network_runs(t, runs):
    model = random_interpolator("rife-hdv3")
    calls = []
    model.net.register_forward_hook(lambda *_: calls.append(1))
    img0, img1 = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    model(img0, img1, t)
    assert len(calls) == runs
    with pytest.raises(ValueError, match="no time input"):
        model.estimate(img0, img1, 0.25)
