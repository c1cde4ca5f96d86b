"""On a CUDA GPU: the same results as on the CPU (fp16 where users get it), and the loop's speed target.

Every test here is marked ``gpu`` and skipped without CUDA (see conftest.py); CI has no GPU.
Speed targets for all features are measured by ``bench/gpu.py``; only the loop's is asserted
here, because its renderer has no fp16 path and its time is dominated by one kernel (index_add_).
"""
import time

import numpy as np
import pytest
import torch

from conftest import ROOT
from nn.loop.hints import all_arrows, velocity_field
from nn.loop.motion_net import MotionPredictor, predict_velocity
from nn.loop.synthesis import Loop

pytestmark = pytest.mark.gpu


@pytest.fixture
def full_precision():
    """No TF32 in CUDA convolutions, so a comparison with the CPU checks the algorithm, not TF32's ~1e-3."""
    kept = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = kept


def textured_still(height: int, width: int) -> torch.Tensor:
    """(1, 3, H, W) smooth colour gradients plus fine noise, the detail splatting must keep."""
    generator = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    base = torch.stack([x, y, 1 - x * y])[None]
    return (0.8 * base + 0.2 * torch.rand(1, 3, height, width, generator=generator)).clamp(0, 1)


def band_mask(height: int, width: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, height, width)
    mask[..., height // 3: 2 * height // 3, :] = 1
    return mask


def test_rife_fp16_on_cuda_matches_fp32_on_the_cpu(project_weights):
    from nn.imageio import read_image
    from nn.motion.rife import Interpolator

    raw = torch.load(project_weights / "rife-v4.25" / "flownet.pkl", map_location="cpu", weights_only=True)
    frames = [torch.from_numpy(read_image(str(ROOT / "examples" / "keyframes" / name))[0][..., :3]).permute(2, 0, 1)[None]
              for name in ("key_01.png", "key_02.png")]
    on_cpu = Interpolator("rife-v4.25", raw, device="cpu", half=False)(*frames, 0.5)
    on_gpu = Interpolator("rife-v4.25", raw, device="cuda", half=True)(*(f.cuda() for f in frames), 0.5)
    mse = (on_gpu.float().cpu() - on_cpu).pow(2).mean().item()
    assert 10 * np.log10(1 / max(mse, 1e-12)) > 40.0  # fp16 differs from fp32 far below what the eye sees


def test_a_loop_renders_the_same_on_cuda_as_on_the_cpu(full_precision):
    still, mask = textured_still(144, 256), band_mask(144, 256)
    velocity = velocity_field(still, mask, all_arrows([[40, 72, 80, 72]], []), speed=1.5)
    on_cpu = list(Loop(still, mask, velocity, 8))
    on_gpu = list(Loop(still.cuda(), mask.cuda(), velocity.cuda(), 8))
    for cpu_frame, gpu_frame in zip(on_cpu, on_gpu):
        # index_add_ sums in another order on CUDA: the last bits may differ, nothing more
        assert (gpu_frame.cpu() - cpu_frame).abs().max().item() < 1e-4


def test_a_120_frame_1080p_loop_takes_at_most_10_seconds():
    """Issue 5's GPU target: the field and all 120 frames of a 1080p loop (writing files aside)."""
    still, mask = textured_still(1080, 1920).cuda(), band_mask(1080, 1920).cuda()
    list(Loop(still[..., :64, :64], mask[..., :64, :64], torch.zeros(1, 2, 64, 64, device="cuda"), 2))  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    velocity = velocity_field(still, mask, all_arrows([[200, 540, 600, 540]], []), speed=2.0).cuda()
    for frame in Loop(still, mask, velocity, 120):
        frame.cpu()  # each frame leaves the GPU, as it must to be written
    seconds = time.perf_counter() - start
    assert seconds <= 10.0, f"{seconds:.1f} s"


def test_the_motion_predictor_gives_the_same_field_on_cuda(full_precision):
    torch.manual_seed(0)
    model = MotionPredictor(working_side=128)
    with torch.no_grad():
        model.exit.weight.normal_(0, 0.05)  # a trained net's last layer is not zero
    still = textured_still(90, 160)
    on_cpu = predict_velocity(model, still, "cpu")
    on_gpu = predict_velocity(model.cuda(), still, "cuda").cpu()
    assert on_gpu.shape == (1, 2, 90, 160) and (on_gpu - on_cpu).abs().max().item() < 1e-3


@pytest.mark.parametrize("low_vram", [False, True])
def test_generative_inbetweens_on_cuda_in_half_precision(tmp_path, tiny_vace, low_vram):
    """The tiny pipeline on the GPU as users get it (bf16 or fp16, VAE fp32; Low VRAM: CPU offload and tiled
    decoding): frames at the keys' size, the same seed giving the same frames. Plumbing only: its frames are noise."""
    from helpers import write_keyframes
    from nn.generate.pipeline import compute_dtype
    from nn.imageio import read_image
    from nn.inbetween import task
    from nn.worker import TaskContext

    keys = write_keyframes(str(tmp_path), count=2)
    frames = [[0, 0, 0.0], [0, 1, 0.25], [0, 1, 0.5], [0, 1, 0.75], [1, 1, 0.0]]
    device = torch.device("cuda")
    assert compute_dtype(device) in (torch.bfloat16, torch.float16)
    made = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        outputs, _ = task.run({"keys": keys, "frames": frames, "model": "generative", "model_dir": tiny_vace,
                               "steps": 2, "seed": 5, "low_vram": low_vram, "hub": {},
                               "output_dir": str(tmp_path / run), "prefix": "f"}, TaskContext(device, False))
        made.append([read_image(path)[0] for path in outputs])
    assert all(frame.shape == (48, 64, 4) for frame in made[0])
    assert all(np.array_equal(a, b) for a, b in zip(*made))
