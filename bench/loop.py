"""Loops from stills, on ../shared/data/loop (README there, "loop/"): the 3dcine_demo0..2 scenes.

    python bench/loop.py [--frames 48] [--speed 1.0] [--threads 2] [--motion-model FILE] [--json FILE] [--data DIR]
    python bench/loop.py --endless [--frames 600] [--threads 1] [--json FILE]

Each scene's labelme file gives the strokes and its mask.png the region. Measures, per scene:
seam (mean |frame N-1 - frame 0| over the mean consecutive difference; 1 is perfect), static
error (mean |frame - input| outside the mask, all frames), motion (mean |velocity| inside the mask
in pixels per frame: the field the renderer integrates, not an estimate from the frames),
sharpness (Laplacian variance of frame N/2 over the input's, greyscale), sharpness inside the mask
(the same, on the moving region only, at every 50th frame and at least 4 frames per clip: the
lowest and highest) and seconds per frame (rendering only, 1280x720). Rows: ours (symmetric splatting) and the naive baseline: the still
splatted forward along the same field, cross-faded into the still over the last quarter.
With --motion-model (trained by ``python -m nn.loop.train``), a third row per scene renders the
same way from the model's field instead of the hints (same mask, scaled to the same mean speed),
and coast.png (no mask or hints) is rendered with the region the model finds, as Animate Loop does.

--endless renders an Endless clip of --frames frames (nn/loop/endless.py) beside the periodic
baseline, a 120-frame seamless loop repeated to the same length. Measures, inside the mask, on
8-bit levels: the repetition ratio (the least, over lags L from 24 to N/2, of the mean
|F_t - F_t+L|, over the mean step |F_t+1 - F_t|; a repeated loop scores about 0), the mean step,
the largest step over the median step (jolts where windows meet), sharpness at every 50th frame,
the static error, seconds per frame, and the peak memory (each clip in a fresh process, which
keeps only the pixels the repetition ratio needs, allocated up front): after frame 120 and after
frame N.
"""
import argparse
import json
import os
import resource
import subprocess
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
from nn.loop.endless import endless_motion  # noqa: E402
from nn.loop.synthesis import Loop  # noqa: E402
from nn.motion.particles import integrate  # noqa: E402

LOOP_DATA = ROOT.parent / "shared" / "data" / "loop"
SCENES = ["3dcine_demo0", "3dcine_demo1", "3dcine_demo2"]
PERIOD = 120  # the periodic baseline of --endless: a seamless loop of this length, repeated
REPETITION_PIXELS = 5000  # masked pixels the repetition ratio is measured on (a fixed random subset)


def laplacian_variance(frame: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Variance of the greyscale Laplacian, over the frame or over ``mask`` (1, 1, H, W) only."""
    grey = frame[:, :3].mean(1, keepdim=True)
    kernel = grey.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    laplacian = F.conv2d(grey, kernel)
    return (laplacian if mask is None else laplacian[mask[..., 1:-1, 1:-1] > 0]).var().item()


def sampled_frames(frames: int) -> range:
    """Every 50th frame, and at least 4 per clip."""
    return range(0, frames, max(1, min(50, frames // 4)))


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
    in_mask = [laplacian_variance(rendered[t], mask) / laplacian_variance(still, mask) for t in sampled_frames(frames)]
    return {
        "sharpness_in_mask_min": min(in_mask), "sharpness_in_mask_max": max(in_mask),
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
          f"{row['sharpness']:6.3f} {row['sharpness_in_mask_min']:5.3f}-{row['sharpness_in_mask_max']:5.3f} "
          f"{row['seconds_per_frame']:8.3f} {row['field_seconds']:8.2f}", flush=True)


def scene_inputs(folder: Path, speed: float):
    """The still (1, C, H, W), mask (1, 1, H, W) and hinted field (1, 2, H, W) of a scene, and the field's seconds."""
    pixels, _ = read_image(str(next(folder.glob("image.*"))))
    still = torch.from_numpy(pixels).permute(2, 0, 1)[None]  # (1, C, H, W)
    mask = torch.from_numpy(read_image(str(folder / "mask.png"))[0][..., 0] > 0.5)[None, None].float()
    _, strokes, _ = read_labelme(str(folder / "image_polygons.json"))
    start = time.perf_counter()
    velocity = velocity_field(still, mask, all_arrows([], strokes), speed)
    return still, mask, velocity, time.perf_counter() - start


def clip(kind: str, still, mask, velocity, frames: int) -> Loop:
    """The renderer of an Endless clip ("endless") or of one period of the seamless loop ("periodic")."""
    if kind == "endless":
        field, anchors, _ = endless_motion(velocity, frames, seamless=False)
        return Loop(still, mask, field, frames, anchors)
    return Loop(still, mask, velocity, PERIOD)


def measure_endless(kind: str, still, mask, velocity, frames: int) -> dict:
    """Endless measures of a clip of ``frames``; "periodic" renders PERIOD frames and repeats them."""
    inside, outside = mask[0, 0] > 0, mask[0, 0] == 0
    chosen = torch.randperm(int(inside.sum()), generator=torch.Generator().manual_seed(0))[:REPETITION_PIXELS]
    levels = np.empty((frames, len(chosen), still.shape[1]), np.uint8)  # what the repetition ratio compares
    levels.fill(0)  # touched now, so the peak memory after frame 120 already holds it
    renderer = clip(kind, still, mask, velocity, frames)
    shown = {t: t % len(renderer) for t in range(0, frames, 50)}  # the periodic clip shows frame t % PERIOD
    steps, sharpness, static, first, previous, peak_at_period = [], {}, 0.0, None, None, None
    reference = laplacian_variance(still, mask)
    start = time.perf_counter()
    for t, frame in enumerate(renderer):
        eight_bit = (frame.clamp(0, 1) * 255).round()
        if previous is not None:
            steps.append((eight_bit - previous)[..., inside].abs().mean().item())
        first, previous = eight_bit if first is None else first, eight_bit
        levels[t] = eight_bit[0][:, inside][:, chosen].T.to(torch.uint8).numpy()
        static = max(static, (frame - still)[..., outside].abs().max().item())
        if t in shown.values():
            sharpness[t] = laplacian_variance(frame, mask) / reference
        if t == PERIOD - 1:
            peak_at_period = peak_mb()
    seconds = (time.perf_counter() - start) / len(renderer)
    if kind == "periodic":  # played again and again: the wrap from the last frame to the first is a step too
        period = len(renderer)
        steps.append((first - previous)[..., inside].abs().mean().item())
        steps = (steps * (frames // period + 1))[:frames - 1]
        levels[period:] = levels[np.arange(period, frames) % period]
    return {**endless_scores(levels, steps), "sharpness_in_mask": {t: sharpness[f] for t, f in shown.items()},
            "static_error": static, "seconds_per_frame": seconds, "peak_mb_at_120": peak_at_period or peak_mb(),
            "peak_mb": peak_mb()}


def endless_scores(levels: np.ndarray, steps: list[float]) -> dict:
    """Repetition ratio and smoothness from the frames' sampled pixels (N, P, C) and the full-mask steps."""
    frames = len(levels)
    pixels = torch.from_numpy(levels).to(torch.int16)
    step = (pixels[1:] - pixels[:-1]).abs().float().mean().item()  # on the same pixels as the lags
    lags = {lag: (pixels[lag:] - pixels[:-lag]).abs().float().mean().item() for lag in range(24, frames // 2 + 1)}
    worst = min(lags, key=lags.get)
    return {"repetition_ratio": lags[worst] / step, "worst_lag": worst, "mean_step": float(np.mean(steps)),
            "max_over_median_step": float(np.max(steps) / np.median(steps))}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_in_process(args) -> int:
    """One row, printed as JSON: run in a fresh process so that its peak memory is its own."""
    kind, scene = args.measure
    still, mask, velocity, _ = scene_inputs(Path(args.data) / scene, args.speed)
    with torch.inference_mode():
        row = measure_endless(kind, still, mask, velocity, args.frames)
    print(json.dumps(row))
    return 0


def endless_main(args) -> dict:
    results = {}
    print(f"{'scene':14} {'method':9} {'repeat':>6} {'lag':>4} {'step':>5} {'max/med':>7} {'sharp in mask':>13} "
          f"{'static':>6} {'s/frame':>7} {'MB@120':>7} {'MB@N':>7}")
    for scene in args.scenes:
        for kind in ("endless", "periodic"):
            command = [sys.executable, __file__, "--measure", kind, scene, "--frames", str(args.frames),
                       "--threads", str(args.threads), "--data", str(args.data), "--speed", str(args.speed)]
            row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            results[f"{scene}/{kind}"] = row
            values = list(row["sharpness_in_mask"].values())
            print(f"{scene:14} {kind:9} {row['repetition_ratio']:6.3f} {row['worst_lag']:4d} {row['mean_step']:5.2f} "
                  f"{row['max_over_median_step']:7.3f} {min(values):6.3f}-{max(values):5.3f} "
                  f"{row['static_error']:6.4f} {row['seconds_per_frame']:7.3f} {row['peak_mb_at_120']:7.0f} "
                  f"{row['peak_mb']:7.0f}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, help="frames per clip (default 48; --endless: 600)")
    parser.add_argument("--scenes", nargs="+", default=SCENES)
    parser.add_argument("--speed", type=float, default=1.0, help="pixels per frame at the hints")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--motion-model", help="also render from this trained motion model's field")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--data", default=str(LOOP_DATA), help="the loop scenes (../shared/data/loop)")
    parser.add_argument("--endless", action="store_true", help="Endless clips against a repeated 120-frame loop")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "SCENE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.frames = args.frames or (600 if args.endless else 48)
    if not Path(args.data).is_dir():
        print(f"skipped: {args.data} is not present")
        return 0
    torch.set_num_threads(args.threads)
    if args.measure:
        return measure_in_process(args)
    if args.endless:
        results = endless_main(args)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"frames": args.frames, "speed": args.speed, "results": results}, f, indent=1)
        return 0
    results = {}
    print(f"{'scene':14} {'method':6} {'seam':>6} {'static':>8} {'motion':>7} {'sharp':>6} {'in mask':>11} "
          f"{'s/frame':>8} {'field s':>8}")
    for scene in args.scenes:
        still, mask, velocity, field_seconds = scene_inputs(Path(args.data) / scene, args.speed)
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
        still = torch.from_numpy(read_image(str(Path(args.data) / "coast.png"))[0]).permute(2, 0, 1)[None]
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
