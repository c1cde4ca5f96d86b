"""Every GPU speed target of the issues, in one run (CUDA; `--device cpu --quick` only checks the script).

    python bench/gpu.py [--device cuda] [--quick] [--json FILE] [--generative DIR [--steps N] [--low-vram]]

Rows and their targets:
- inbetween 1080p / 4K: RIFE v4.25 and HDv3 as users run them (Auto flow scale: 0.5 from 2K up),
  fp16, one middle frame per call with frames already on the device; frames per second
  (targets: 1080p >= 60 fps, 4K >= 15 fps) and the peak GPU memory (4K: <= 8 GB).
- loop 1080p: the motion field and all 120 frames of a loop, each frame copied back to the host
  as it must be to be written; seconds (target <= 10 s).
- generative 480p / 720p (with --generative DIR, a Wan2.1 VACE pipeline folder): seconds per inbetween (two
  keys 16 frames apart, 15 inbetweens, one model window) and per loop frame (3dcine_demo0 with its mask, a
  24-frame loop), and the peak GPU memory (target: the 1.3B model at 480p within 12 GB). No machine of the
  project has had these weights yet, so no figure has been recorded.
Frames: Middlebury Beanbags (frame10, frame11) and 3dcine_demo0 from ../shared, resized;
timings are the median of ``--repeats`` after a warm-up, with the device synchronised.
"""
import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nn.imageio import read_image  # noqa: E402
from nn.inbetween.task import load_model  # noqa: E402
from nn.loop.hints import all_arrows, read_labelme, velocity_field  # noqa: E402
from nn.loop.synthesis import Loop  # noqa: E402
from nn.worker import TaskContext  # noqa: E402

SHARED = ROOT.parent / "shared"
SIZES = {"1080p": (1080, 1920), "4K": (2160, 3840)}
TARGET_FPS = {"1080p": 60.0, "4K": 15.0}
TARGET_4K_GB = 8.0
TARGET_LOOP_SECONDS = 10.0
GENERATIVE_SIZES = {"480p": (480, 832), "720p": (720, 1280)}


def image(path: Path, size: tuple[int, int], device) -> torch.Tensor:
    pixels = torch.from_numpy(read_image(str(path))[0][..., :3]).permute(2, 0, 1)[None]  # (1, 3, h, w)
    return F.interpolate(pixels, size=size, mode="bilinear", align_corners=False).to(device)


def synchronise(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(call, device, repeats: int) -> float:
    """Median seconds of ``call()`` after one warm-up run."""
    call()
    synchronise(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronise(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inbetween_row(model: str, label: str, ctx, hub: dict, repeats: int) -> dict:
    """One model at one size; its network and frames are freed on return, before the next is measured."""
    height, width = SIZES[label]
    net = load_model({"model": model, "hub": hub, "size": (width, height)}, ctx)
    pair = SHARED / "data" / "interp" / "middlebury-other" / "Beanbags"
    a, b = (image(pair / name, (height, width), ctx.device) for name in ("frame10.png", "frame11.png"))
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    fps = 1.0 / timed(lambda: net(a, b, 0.5, False), ctx.device, repeats)
    peak = torch.cuda.max_memory_allocated() / 1e9 if ctx.device.type == "cuda" else float("nan")
    return {"fps": fps, "peak_gb": peak,
            "target": f">= {TARGET_FPS[label]:g} fps" + (f", <= {TARGET_4K_GB:g} GB" if label == "4K" else ""),
            "met": fps >= TARGET_FPS[label] and (label != "4K" or peak <= TARGET_4K_GB)}


def inbetween_rows(device, half: bool, repeats: int, sizes: list[str]) -> dict:
    ctx = TaskContext(device, half)
    hub = {"cache_dir": tempfile.mkdtemp(prefix="bench-hub-"), "local_dir": str(ROOT / "weights"), "online": False}
    return {f"inbetween {model} {label}": inbetween_row(model, label, ctx, hub, repeats)
            for model in ("rife-v4.25", "rife-hdv3") for label in sizes}


def loop_row(device, frames: int, repeats: int) -> dict:
    folder = SHARED / "data" / "loop" / "3dcine_demo0"
    height, width = SIZES["1080p"]
    still = image(folder / "image.png", (height, width), device)
    mask = (image(folder / "mask.png", (height, width), device)[:, :1] > 0.5).float()
    _, strokes, (source_width, _) = read_labelme(str(folder / "image_polygons.json"))
    arrows = all_arrows([], strokes) * (width / source_width)

    def render():
        velocity = velocity_field(still, mask, arrows, speed=1.5).to(device)
        for frame in Loop(still, mask, velocity, frames):
            frame.cpu()

    seconds = timed(render, device, repeats)
    return {f"loop 1080p, {frames} frames": {"seconds": seconds, "target": f"<= {TARGET_LOOP_SECONDS:g} s for 120",
                                              "met": frames == 120 and seconds <= TARGET_LOOP_SECONDS}}


def generative_rows(device, folder: str, steps: int, low_vram: bool) -> dict:
    """The generative model's time per inbetween and per loop frame, and its peak memory, at 480p and 720p."""
    from nn.generate.pipeline import Settings, check_folder, load, prepare
    from nn.generate.video import KeyedVideo

    pipe = load(check_folder(folder), device, low_vram)
    pair = SHARED / "data" / "interp" / "middlebury-other" / "Beanbags"
    scene = SHARED / "data" / "loop" / "3dcine_demo0"
    rows = {}
    for label, (height, width) in GENERATIVE_SIZES.items():
        settings = Settings(steps=steps, max_pixels=height * width)
        model = prepare(pipe, settings, device) if not rows else dataclasses.replace(model, settings=settings)
        a, b = (image(pair / name, (height, width), device)[0].float().clamp(0, 1) for name in
                ("frame10.png", "frame11.png"))
        still = image(scene / "image.png", (height, width), device)[0].float().clamp(0, 1)
        region = image(scene / "mask.png", (height, width), device)[:1, :1][0] > 0.5
        runs = {"inbetween": (KeyedVideo(model, {0: a, 16: b}, 17), range(1, 16)),
                "loop frame": (KeyedVideo(model, {0: still, 24: still}, 25, region=region, still=still), range(1, 24))}
        for kind, (video, positions) in runs.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for position in positions:
                video.frame(position).cpu()
            synchronise(device)
            seconds = (time.perf_counter() - start) / len(positions)
            peak = torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else float("nan")
            target = "<= 12 GB (1.3B)" if label == "480p" else "recorded"
            rows[f"generative {kind} {label}, {steps} steps"] = {
                "seconds": seconds, "peak_gb": peak, "target": target, "met": label != "480p" or peak <= 12.0}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="1080p only, a 12-frame loop, one repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--generative", metavar="DIR", help="also time the generative model from this Wan2.1 VACE "
                                                           "pipeline folder (save_pretrained layout)")
    parser.add_argument("--steps", type=int, default=30, help="denoising steps for --generative")
    parser.add_argument("--low-vram", action="store_true", help="--generative with CPU offload and tiled decoding")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA GPU (use --device cpu --quick to check the script itself)")
        return 0
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is not present")
        return 0
    device = torch.device(args.device)
    repeats = 1 if args.quick else args.repeats
    print(f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}; torch {torch.__version__}")
    with torch.inference_mode():
        rows = inbetween_rows(device, half=device.type == "cuda", repeats=repeats,
                              sizes=["1080p"] if args.quick else ["1080p", "4K"])
        rows.update(loop_row(device, 12 if args.quick else 120, repeats))
        if args.generative:
            rows.update(generative_rows(device, args.generative, args.steps, args.low_vram))
    print(f"{'run':34} {'fps':>7} {'seconds':>8} {'peak GB':>8}  target")
    for name, row in rows.items():
        fps, seconds = row.get("fps"), row.get("seconds", 1.0 / row["fps"] if "fps" in row else 0.0)
        print(f"{name:34} {fps if fps else float('nan'):7.1f} {seconds:8.3f} {row.get('peak_gb', float('nan')):8.2f}"
              f"  {row['target']} {'met' if row['met'] else 'NOT met'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"device": str(device), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
