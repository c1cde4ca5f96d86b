"""Measures the benches share (protocols in ../shared/data/README.md), movie decoding and ffmpeg's interpolation.

Frames are (H, W, C) float arrays in [0, 1] or (1, C, H, W) tensors; scores are on 8-bit RGB.
"""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nn.imageio import read_image
from nn.motion.warp import warp

# ffmpeg's motion-compensated interpolation as PEERS.md runs it; {fps} is the output rate for 1 fps input.
FFMPEG_FILTER = "minterpolate=fps={fps}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1:scd=none"


def quantize(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in 0..255 steps, as an 8-bit file would hold it."""
    return (np.clip(image[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8).astype(np.float64)


def to8(frame: torch.Tensor) -> np.ndarray:
    return quantize(frame[0].permute(1, 2, 0).float().numpy().astype(np.float64))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Gaussian-window SSIM (11x11, sigma 1.5), data_range 255, mean over colour channels."""
    x = torch.from_numpy(a).permute(2, 0, 1)[:, None]  # (3, 1, H, W)
    y = torch.from_numpy(b).permute(2, 0, 1)[:, None]
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    # The Gaussian window is separable: a row then a column pass (valid convolution, as skimage's reference
    # does) gives the same figures as the 11x11 window to rounding, about 5 times faster in float64.
    stack = torch.cat([x, y, x * x, y * y, x * y], 1).reshape(-1, 1, *x.shape[-2:])  # (3 * 5, 1, H, W)
    blurred = F.conv2d(F.conv2d(stack, g.reshape(1, 1, 1, 11)), g.reshape(1, 1, 11, 1))
    mx, my, xx, yy, xy = blurred.reshape(x.shape[0], 5, *blurred.shape[-2:]).unbind(1)
    vx, vy, cov = xx - mx**2, yy - my**2, xy - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def consistent_flows(inputs: list[torch.Tensor], flow) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per frame pair t, t+1: the flow warping t+1 onto t, and where it passes the forward-backward check."""
    pairs = []
    for t in range(len(inputs) - 1):
        back = flow(inputs[t + 1], inputs[t])  # warp(I_t+1, back) ~ I_t
        fwd = flow(inputs[t], inputs[t + 1])  # warp(I_t, fwd) ~ I_t+1
        pairs.append((back, ((back + warp(fwd, back)).norm(dim=1, keepdim=True) <= 1.0).float()))  # (1, 1, H, W)
    return pairs


def pair_errors(outputs: list[torch.Tensor], flows: list[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """|O_t - warp(O_t+1)| in 0..255 per frame pair, where the flow is consistent."""
    errors = []
    for t, (back, valid) in enumerate(flows):
        a = torch.from_numpy(to8(outputs[t])).permute(2, 0, 1)[None].float()
        b = warp(torch.from_numpy(to8(outputs[t + 1])).permute(2, 0, 1)[None].float(), back)
        errors.append(float(((a - b).abs() * valid).sum() / (valid.sum() * 3)))
    return errors


def warping_error(outputs: list[torch.Tensor], inputs: list[torch.Tensor], flow) -> float:
    """Mean over frame pairs of |O_t - warp(O_t+1)| in 0..255 where the flow is consistent."""
    return float(np.mean(pair_errors(outputs, consistent_flows(inputs, flow))))


def decode_movie(movie: Path, folder: str, frames: int = 0) -> list[Path]:
    """The movie's first ``frames`` frames (0: all) as folder/0001.png, ..., decoded by ffmpeg."""
    if not shutil.which("ffmpeg"):
        raise RuntimeError(f"ffmpeg is needed to decode {movie.name} (apt-get install ffmpeg)")
    os.makedirs(folder, exist_ok=True)
    count = ["-frames:v", str(frames)] if frames else []
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(movie), *count, os.path.join(folder, "%04d.png")], check=True)
    return sorted(Path(folder).glob("*.png"))


def ffmpeg_interpolate(paths: list[Path], factor: int, workdir: str) -> list[np.ndarray]:
    """ffmpeg minterpolate on the images played at 1 fps, at ``factor`` fps: output i shows time i / factor s."""
    listing = os.path.join(workdir, "inputs.txt")
    with open(listing, "w") as f:
        for path in paths:
            f.write(f"file '{path}'\nduration 1\n")
    out = os.path.join(workdir, "out_%04d.png")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-r", "1", "-i", listing,
                    "-vf", FFMPEG_FILTER.format(fps=factor), out], check=True)
    frames = [read_image(str(p))[0] for p in sorted(Path(workdir).glob("out_*.png"))]
    for name in os.listdir(workdir):
        os.remove(os.path.join(workdir, name))
    return frames
