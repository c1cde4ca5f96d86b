"""Middle-frame quality and speed on ../shared/data/interp, all methods in one run.

    python bench/inbetween.py [--sets middlebury-other davis-30 sintel-clean sintel-final bbb-720p]
                              [--json FILE] [--limit N] [--flow-scales 1.0 0.5] [--high-quality]

Protocol (../shared/data/README.md): PSNR on 8-bit RGB over the whole image (mean of
per-image values), SSIM with data_range 255 over the colour channels, Middlebury
IE = RMS of the RGB difference. Each set is reported separately; Sintel's clean_* and
final_* runs are separate sets, with triplets (1,3)->2 and (2,4)->3.
bbb-720p: Big Buck Bunny (1280x720), decoded by ffmpeg, triplets (i, i+2) -> i+1 for
i = 0, 12, ..., 108: the speed check at 720p (our triplet choice; PEERS.md does not say its own).
Rows: this project's models (Key Motion at its own pyramid scales), ffmpeg minterpolate (when ffmpeg is installed), a 50/50 blend.
Times are per middle frame with frames in memory, except ffmpeg's, which include its start-up
and PNG reading and writing, as its users pay them.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from measures import decode_movie, ffmpeg_interpolate, psnr, quantize, ssim  # noqa: E402
from nn.imageio import read_image  # noqa: E402
from nn.inbetween.task import load_model  # noqa: E402
from nn.worker import TaskContext  # noqa: E402

SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "interp"


def triplets(set_name: str, workdir: str):
    """(name, A, B, ground truth) paths for one set, as its protocol defines them."""
    if set_name == "bbb-720p":
        yield from movie_triplets(SHARED / "data" / "video" / "bigbuckbunny.mp4", workdir, starts=range(0, 120, 12))
        return
    if set_name.startswith("sintel-"):
        runs = sorted((DATA / "sintel-4frame").glob(set_name.removeprefix("sintel-") + "_*"))
        for run in runs:
            frames = sorted(run.glob("frame_*.png"))
            for first in range(len(frames) - 2):  # (1,3)->2, (2,4)->3
                yield f"{run.name}/{first + 2}", frames[first], frames[first + 2], frames[first + 1]
        return
    for scene in sorted(p for p in (DATA / set_name).iterdir() if p.is_dir()):
        yield scene.name, scene / "frame10.png", scene / "frame11.png", scene / "frame10i11.png"


def movie_triplets(movie: Path, workdir: str, starts):
    if not shutil.which("ffmpeg"):
        print(f"Skipping {movie.name}: ffmpeg is needed to decode it", file=sys.stderr)
        return
    frames = decode_movie(movie, os.path.join(workdir, movie.stem))
    for start in starts:
        yield f"{movie.stem}/{start + 1}", frames[start], frames[start + 2], frames[start + 1]


def interpolation_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=-1))))


def ffmpeg_middle(a_path: Path, b_path: Path, workdir: str) -> np.ndarray:
    """ffmpeg minterpolate on A,A,B,B at 1 fps; output frame 3 (0-based, t = 1.5 s) is the middle."""
    return ffmpeg_interpolate([a_path, a_path, b_path, b_path], 2, workdir)[3]


def methods(weights_dir: str, device, flow_scales: list[float], high_quality: bool, workdir: str):
    """Rows by name; their scratch files go under ``workdir``."""
    ctx = TaskContext(device, False)
    hub = {"cache_dir": os.path.join(workdir, "hub"), "local_dir": weights_dir, "online": False}
    rows = {}
    for model in ("rife-v4.25", "rife-hdv3"):
        for scale in flow_scales:
            net = load_model({"model": model, "hub": hub, "flow_scale": scale}, ctx)
            name = f"frameweaver {model}" + ("" if scale == 1.0 else f" flow {scale:g}")
            rows[name] = lambda a, b, _pa, _pb, net=net: net(a, b, 0.5, False)
        if high_quality:
            net = load_model({"model": model, "hub": hub, "flow_scale": 1.0, "high_quality": True}, ctx)
            rows[f"frameweaver {model} HQ"] = lambda a, b, _pa, _pb, net=net: net(a, b, 0.5, False)
    keymotion = load_model({"model": "keymotion", "hub": hub}, ctx)  # its own pyramid scales, one gap
    rows["frameweaver keymotion"] = lambda a, b, _pa, _pb: keymotion(a, b, 0.5, False)
    if shutil.which("ffmpeg"):
        scratch = os.path.join(workdir, "ffmpeg")
        os.makedirs(scratch)
        rows["ffmpeg minterpolate"] = lambda _a, _b, pa, pb: ffmpeg_middle(pa, pb, scratch)
    rows["50/50 blend"] = lambda a, b, _pa, _pb: (a + b) / 2
    return rows


def run(sets, limit, weights_dir, flow_scales, high_quality):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    table = {}
    workdir = tempfile.mkdtemp(prefix="bench-inbetween-")
    rows = methods(weights_dir, device, flow_scales, high_quality, workdir)
    with torch.inference_mode():
        for set_name in sets:
            scores = {name: {"psnr": [], "ssim": [], "ie": [], "ms": []} for name in rows}
            for count, (_, pa, pb, pt) in enumerate(triplets(set_name, workdir)):
                if limit and count >= limit:
                    break
                a, b, truth = (read_image(str(p))[0][..., :3] for p in (pa, pb, pt))
                ta, tb = (torch.from_numpy(x).permute(2, 0, 1)[None].to(device) for x in (a, b))
                gt = quantize(truth)
                for name, method in rows.items():
                    start = time.perf_counter()
                    out = method(ta, tb, pa, pb)
                    if isinstance(out, torch.Tensor):
                        out = out[0].permute(1, 2, 0).float().cpu().numpy()
                    scores[name]["ms"].append((time.perf_counter() - start) * 1000)
                    q = quantize(out)
                    scores[name]["psnr"].append(psnr(q, gt))
                    scores[name]["ssim"].append(ssim(q, gt))
                    scores[name]["ie"].append(interpolation_error(q, gt))
            table[set_name] = {
                name: {"psnr": float(np.mean(s["psnr"])), "ssim": float(np.mean(s["ssim"])),
                       "ie": float(np.mean(s["ie"])), "ms": float(np.median(s["ms"])), "n": len(s["psnr"])}
                for name, s in scores.items() if s["psnr"]
            }
    shutil.rmtree(workdir, ignore_errors=True)
    return table


def print_table(table):
    for set_name, rows in table.items():
        print(f"\n{set_name}")
        print(f"{'method':28s} {'PSNR':>7s} {'SSIM':>6s} {'IE':>6s} {'ms/frame':>9s} {'n':>4s}")
        for name, r in rows.items():
            print(f"{name:28s} {r['psnr']:7.2f} {r['ssim']:6.3f} {r['ie']:6.2f} {r['ms']:9.0f} {r['n']:4d}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+",
                        default=["middlebury-other", "davis-30", "sintel-clean", "sintel-final", "bbb-720p"])
    parser.add_argument("--flow-scales", type=float, nargs="+", default=[1.0], choices=[0.25, 0.5, 1.0, 2.0],
                        help="one row per model and flow scale")
    parser.add_argument("--high-quality", action="store_true", help="add the mirror ensemble rows (2x time)")
    parser.add_argument("--weights-dir", default=str(ROOT / "weights"),
                        help="<model>/<file> checkpoints (scripts/fetch_weights.py fills weights/)")
    parser.add_argument("--limit", type=int, default=0, help="at most N triplets per set (0: all)")
    parser.add_argument("--json", help="also write {set: {method: {psnr, ssim, ie, ms, n}}}")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"No measurement data at {DATA}")
    table = run(args.sets, args.limit, args.weights_dir, args.flow_scales, args.high_quality)
    print_table(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)


if __name__ == "__main__":
    main()
