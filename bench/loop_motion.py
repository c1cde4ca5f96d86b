"""Loop motion predictor (nn/loop/motion_net.py) on ../shared/data/loop/sky-timelapse-8, held-out region.

    python bench/loop_motion.py [--steps 300] [--crop 192] [--batch 4] [--lr 1e-3] [--no-flip]
                                [--threads 2] [--seed 0] [--json FILE]

The clip's target is what training uses (nn/loop/train.py): the mean over its 7 frame pairs of
our RIFE v4.25 flow, at the working size. The network trains on crops from the left 3/4 of the
frames only; it then predicts from frame 0 (whole frame, at 640x360) and is scored on the right
1/4, against the target resized to 640x360 (px/frame there):
- EPE: mean endpoint error over the held-out region; "EPE moving": where the target moves > 0.5 px/frame.
- cos: mean per-pixel cosine between prediction and target where the target moves (0 for a zero field);
  "cos means": cosine between the region's mean vectors.
Baselines in the same run: a zero field, and the training region's mean vector applied everywhere.
Also timed: training seconds, and one prediction on a 1280x720 still (median of 3, after a warm-up).
"""
import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: the CPU is shared
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nn import hub  # noqa: E402
from nn.imageio import read_image  # noqa: E402
from nn.loop.motion_net import parameter_count, predict_velocity, resize_field  # noqa: E402
from nn.loop.train import Clip, MotionTrainer, prepare_clip  # noqa: E402
from nn.motion.flow import Flow  # noqa: E402

SHARED = ROOT.parent / "shared"
SKY = SHARED / "data" / "loop" / "sky-timelapse-8"
TRAIN_SHARE = 0.75  # of the width, from the left
MOVING = 0.5  # px/frame at 640x360: pixels whose target moves more count as moving


def scores(field: torch.Tensor, target: torch.Tensor) -> dict:
    """EPE, EPE where moving, per-pixel cosine where moving, cosine of the mean vectors; fields (1, 2, H, W)."""
    error = (field - target).norm(dim=1)  # (1, H, W)
    moving = target.norm(dim=1) > MOVING
    cosine = F.cosine_similarity(field, target, dim=1, eps=1e-8)  # 0 where the field is zero
    mean_f, mean_t = field.mean((2, 3))[0], target.mean((2, 3))[0]
    return {"epe": error.mean().item(), "epe_moving": error[moving].mean().item(),
            "cos": cosine[moving].mean().item(),
            "cos_means": F.cosine_similarity(mean_f, mean_t, dim=0, eps=1e-8).item(),
            "mean_vector": [round(v, 3) for v in mean_f.tolist()]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--crop", type=int, default=192, help="crop side at the working size")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--no-flip", action="store_true", help="train without left-right flips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: its default)")
    parser.add_argument("--weights-dir", default=str(ROOT / "weights"),
                        help="<name>/<file> weights folder (scripts/fetch_weights.py fills weights/)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = sorted(glob.glob(str(SKY / "*.jpg")) + glob.glob(str(SKY / "*.png")))
    if not paths:
        print(f"Skipped: no measurement data at {SKY}")
        return
    settings = hub.HubSettings(cache_dir=tempfile.mkdtemp(prefix="bench-hub-"), local_dir=args.weights_dir)
    flow = Flow.load(settings, "cpu", half=False)
    start = time.perf_counter()
    with torch.no_grad():
        clip = prepare_clip("sky", paths, flow)
    target_s = time.perf_counter() - start
    width = clip.frames.shape[-1]
    split = round(width * TRAIN_SHARE)
    train_clip = Clip("sky-left", clip.frames[..., :split].contiguous(), clip.target[..., :split].contiguous())
    trainer = MotionTrainer([train_clip], args.steps, crop=args.crop, batch=args.batch, lr=args.lr, seed=args.seed,
                            flip=0.0 if args.no_flip else 0.5)
    start = time.perf_counter()
    losses = trainer.train()
    train_s = time.perf_counter() - start

    still = torch.from_numpy(read_image(paths[0])[0]).permute(2, 0, 1)[None]  # (1, 3, 360, 640)
    height, full_width = still.shape[-2:]
    target = resize_field(clip.target, (height, full_width))  # px/frame at 640x360
    held = slice(round(full_width * TRAIN_SHARE), None)  # the right quarter
    predicted = predict_velocity(trainer.model, still, "cpu")
    big = F.interpolate(still, size=(720, 1280), mode="bilinear", align_corners=False)
    predict_velocity(trainer.model, big, "cpu")  # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        predict_velocity(trainer.model, big, "cpu")
        times.append(time.perf_counter() - start)
    train_mean = target[..., :round(full_width * TRAIN_SHARE)].mean((2, 3), keepdim=True)  # (1, 2, 1, 1)
    fields = {"zero field": torch.zeros_like(target), "training region's mean vector": train_mean.expand_as(target),
              "motion predictor": predicted}
    rows = {name: scores(field[..., held], target[..., held]) for name, field in fields.items()}
    rows["motion predictor"].update(train_s=train_s, predict_s_720p=statistics.median(times), steps=trainer.steps,
                                    loss_start=sum(losses[:20]) / 20, loss_end=sum(losses[-20:]) / 20)
    target_row = scores(target[..., held], target[..., held])

    print(f"\nsky-timelapse-8 ({len(paths)} frames, {full_width}x{height}); working size "
          f"{width}x{clip.frames.shape[-2]}; target (RIFE mean flow) {target_s:.0f} s")
    print(f"train: left {TRAIN_SHARE:.0%}, {args.steps} steps x {args.batch} crops of {trainer.crop}px, "
          f"lr {args.lr}, flips {'off' if args.no_flip else 'on'}, {parameter_count(trainer.model) / 1e6:.2f} M "
          f"parameters, {torch.get_num_threads()} threads; loss (working-size px) "
          f"{rows['motion predictor']['loss_start']:.3f} -> {rows['motion predictor']['loss_end']:.3f}")
    print(f"held-out right {1 - TRAIN_SHARE:.0%}: target mean vector {target_row['mean_vector']} px/frame, "
          f"{(target[..., held].norm(dim=1) > MOVING).float().mean():.0%} of pixels moving > {MOVING} px/frame")
    print(f"{'method':32s} {'EPE':>6s} {'EPE mov':>7s} {'cos':>6s} {'cos means':>9s} {'mean vector':>16s} "
          f"{'train s':>7s} {'pred s 720p':>11s}")
    for name, r in rows.items():
        cell = lambda k, f: format(r[k], f) if k in r else "-"  # noqa: E731
        print(f"{name:32s} {r['epe']:6.3f} {r['epe_moving']:7.3f} {r['cos']:6.3f} {r['cos_means']:9.3f} "
              f"{str(r['mean_vector']):>16s} {cell('train_s', '7.0f'):>7s} {cell('predict_s_720p', '11.3f'):>11s}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "target_s": target_s, "held_out_target": target_row, "rows": rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
