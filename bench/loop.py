"""Loops from stills, on ../shared/data/loop (README there, "loop/"): the 3dcine_demo0..2 scenes.

    python bench/loop.py [--frames 48] [--speed 1.0] [--threads 2] [--motion-model FILE] [--json FILE]

Each scene's labelme file gives the strokes and its mask.png the region. Measures, per scene:
seam (mean |frame N-1 - frame 0| over the mean consecutive difference; 1 is perfect), static
error (mean |frame - input| outside the mask, all frames), motion (mean |velocity| inside the mask
in pixels per frame: the field the renderer integrates, not an estimate from the frames),
sharpness (Laplacian variance of frame N/2 over the input's, greyscale) and seconds per frame
(rendering only, 1280x720). Rows: ours (symmetric splatting) and the naive baseline: the still
splatted forward along the same field, cross-faded into the still over the last quarter.
With --motion-model (trained by ``python -m nn.loop.train``), a third row per scene renders the
same way from the model's field instead of the hints (same mask, scaled to the same mean speed),
and coast.png (no mask or hints) is rendered with the region the model finds, as Animate Loop does.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: the CPU is shared
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nn.imageio import read_image  # noqa: E402
from nn.loop.hints import all_arrows, read_labelme, velocity_field  # noqa: E402
from nn.loop.task import learned_motion  # noqa: E402
from nn.worker import TaskContext  # noqa: E402
from nn.loop.synthesis import Loop  # noqa: E402
from nn.motion.particles import integrate  # noqa: E402

LOOP_DATA = ROOT.parent / "shared" / "data" / "loop"
SCENES = ["3dcine_demo0", "3dcine_demo1", "3dcine_demo2"]


def laplacian_variance(frame: torch.Tensor) -> float:
    grey = frame[:, :3].mean(1, keepdim=True)
    kernel = grey.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return F.conv2d(grey, kernel).var().item()


def ours(loop: Loop):
    yield from loop


def naive(loop: Loop):
    """Forward splatting only, cross-faded into the still over the last quarter."""
    n = loop.frames
    fade_from = n - n // 4
    for t, forward in enumerate(integrate(loop.velocity, loop.start, n - 1)):
        frame = loop.render([(forward, 1.0)])
        fade = max(0.0, (t - fade_from + 1) / (n - fade_from + 1))
        yield frame * (1 - fade) + loop.still * fade


def measure(method, still, mask, velocity, frames) -> dict:
    start = time.perf_counter()
    rendered = list(method(Loop(still, mask, velocity, frames)))
    seconds = (time.perf_counter() - start) / frames
    outside = mask[0, 0] == 0
    steps = [(rendered[t + 1] - rendered[t]).abs().mean().item() for t in range(frames - 1)]
    return {
        "seam": (rendered[-1] - rendered[0]).abs().mean().item() / np.mean(steps),
        "static_error": float(np.mean([(f - still)[..., outside].abs().mean().item() for f in rendered])),
        "motion_px_per_frame": velocity.norm(dim=1)[0][~outside].mean().item(),
        "sharpness": laplacian_variance(rendered[frames // 2]) / laplacian_variance(still),
        "seconds_per_frame": seconds,
    }


def learned_field(model: str, still: torch.Tensor, mask: torch.Tensor | None, speed: float):
    """The field (1, 2, H, W) and region (1, 1, H, W) that Animate Loop's Learned motion would use."""
    region = mask[0, 0].numpy() > 0 if mask is not None else None
    velocity, region, _ = learned_motion({"motion_model": model}, still, region, speed, False,
                                         TaskContext(torch.device("cpu"), False))
    return velocity, torch.from_numpy(region)[None, None].float()


def print_row(scene: str, name: str, row: dict) -> None:
    print(f"{scene:14} {name:6} {row['seam']:6.3f} {row['static_error']:8.5f} {row['motion_px_per_frame']:7.3f} "
          f"{row['sharpness']:6.3f} {row['seconds_per_frame']:8.3f} {row['field_seconds']:8.2f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--speed", type=float, default=1.0, help="pixels per frame at the hints")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--motion-model", help="also render from this trained motion model's field")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if not LOOP_DATA.is_dir():
        print(f"skipped: {LOOP_DATA} is not present")
        return 0
    torch.set_num_threads(args.threads)
    results = {}
    print(f"{'scene':14} {'method':6} {'seam':>6} {'static':>8} {'motion':>7} {'sharp':>6} {'s/frame':>8} {'field s':>8}")
    for scene in SCENES:
        folder = LOOP_DATA / scene
        pixels, _ = read_image(str(next(folder.glob("image.*"))))
        still = torch.from_numpy(pixels).permute(2, 0, 1)[None]  # (1, C, H, W)
        mask = torch.from_numpy(read_image(str(folder / "mask.png"))[0][..., 0] > 0.5)[None, None].float()
        _, strokes, _ = read_labelme(str(folder / "image_polygons.json"))
        start = time.perf_counter()
        velocity = velocity_field(still, mask, all_arrows([], strokes), args.speed)
        field_seconds = time.perf_counter() - start
        runs = [("ours", ours, velocity), ("naive", naive, velocity)]
        if args.motion_model:
            runs.append(("learned", ours, learned_field(args.motion_model, still, mask, args.speed)[0]))
        with torch.inference_mode():
            for name, method, field in runs:
                row = measure(method, still, mask, field, args.frames)
                row["field_seconds"] = field_seconds
                results[f"{scene}/{name}"] = row
                print_row(scene, name, row)
    if args.motion_model:  # coast.png has no mask or hints: the model finds what moves as well
        still = torch.from_numpy(read_image(str(LOOP_DATA / "coast.png"))[0]).permute(2, 0, 1)[None]
        start = time.perf_counter()
        velocity, mask = learned_field(args.motion_model, still, None, args.speed)
        field_seconds = time.perf_counter() - start
        with torch.inference_mode():
            row = {**measure(ours, still, mask, velocity, args.frames), "field_seconds": field_seconds,
                   "moving_fraction": mask.mean().item()}
        results["coast/learned"] = row
        print_row("coast", "learned", row)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"frames": args.frames, "speed": args.speed, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
