"""Train the loop motion predictor on clips of real motion. No Blender needed:

    python -m nn.loop.train CLIPS_DIR --out motion.safetensors [--steps N] [--batch B] [--crop 256]
                            [--lr LR] [--step K] [--threads T] [--seed S] [--overwrite]
                            [--weights-dir DIR] [--device auto|cuda|mps|cpu]

CLIPS_DIR holds clips as image frames (png, jpg, exr, tif, ...; sorted by name): each
sub-folder with frames is one clip, and frames directly in CLIPS_DIR are one clip too.
Video files are not read: extract them to frames first, e.g.
``ffmpeg -i sea.mp4 CLIPS_DIR/sea/%05d.png``. Every clip needs 2 or more frames of one size.

The target of each clip is its static motion field: the mean over frame pairs (i, i + K) of
the optical flow from our RIFE v4.25 (``motion.flow.Flow``), divided by K, so it is in
pixels per clip frame at the working size. It is computed once, before training. Training
then shows the network random crops of the clip's frames (any frame: the field is the same
for all), flipped left-right half the time and with mild brightness changes, and fits the
field by the mean endpoint error with Adam. Ctrl-C stops training and still saves the model.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .. import values
from ..imageio import image_size, read_image
from ..motion.flow import length, motion_view
from ..worker import TaskContext, TaskError
from .motion_net import MULTIPLE, WORKING_SIDE, MotionPredictor, parameter_count, save_predictor, to_working

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".webp", ".bmp", ".dpx", ".tga", ".hdr"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".mxf", ".gif", ".wmv"}
INPUT_FRAMES = 16  # frames per clip kept as network inputs (evenly spaced); the rest only feed the target
BRIGHTNESS = 0.1  # inputs are scaled by 1 +- this and offset by half of it: exposure varies between clips
FlowFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Clip:
    """One clip, ready for training: inputs and the target field at the working size."""

    name: str
    frames: torch.Tensor  # (N, 3, h, w) display RGB in 0..1
    target: torch.Tensor  # (1, 2, h, w) mean velocity, px per clip frame at h x w


# ---------------------------------------------------------------------------------------
# Finding clips
# ---------------------------------------------------------------------------------------


def _frames_in(folder: str) -> list[str]:
    names = sorted(n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
                   and not n.startswith("."))
    return [os.path.join(folder, n) for n in names]


def find_clips(folder: str) -> list[tuple[str, list[str]]]:
    """(name, sorted frame paths) for every clip in ``folder``: its own frames, then each sub-folder's."""
    if not os.path.isdir(folder):
        raise TaskError(f"No such folder: {folder}")
    clips = []
    if own := _frames_in(folder):
        clips.append((os.path.basename(os.path.normpath(folder)), own))
    for name in sorted(os.listdir(folder)):
        sub = os.path.join(folder, name)
        if os.path.isdir(sub) and not name.startswith(".") and (frames := _frames_in(sub)):
            clips.append((name, frames))
    if not clips:
        videos = [n for n in sorted(os.listdir(folder)) if os.path.splitext(n)[1].lower() in VIDEO_EXTENSIONS]
        hint = (f" It holds video files ({', '.join(videos[:3])}{', ...' if len(videos) > 3 else ''}), which are "
                f"not read: extract each to frames first, e.g. ffmpeg -i {videos[0]} "
                f"{os.path.splitext(videos[0])[0]}/%05d.png") if videos else ""
        raise TaskError(f"No clips in {folder}: expected sub-folders of image frames ("
                        f"{', '.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))}) or frames in the folder itself.{hint}")
    return clips


def check_clip(name: str, paths: Sequence[str], step: int = 1) -> tuple[int, int]:
    """(width, height) of a usable clip; refuses too few frames and mixed sizes before any work is done."""
    if len(paths) < step + 1:
        raise TaskError(f"Clip '{name}' ({os.path.dirname(paths[0]) if paths else name}) has {len(paths)} frame(s); "
                        f"it needs at least {step + 1} to measure motion between frames {step} apart.")
    size = image_size(paths[0])
    for path in paths[1:]:
        if (other := image_size(path)) != size:
            raise TaskError(f"Clip '{name}' mixes frame sizes: {os.path.basename(paths[0])} is {size[0]}x{size[1]} "
                            f"but {path} is {other[0]}x{other[1]}. A clip's frames must all have one size.")
    return size


# ---------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------


def mean_velocity(frames: Sequence[torch.Tensor] | Callable[[int], torch.Tensor], count: int, flow: FlowFn,
                  step: int = 1, report: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """(1, 2, H, W) mean forward motion per frame over pairs (i, i + step), at frame i's pixels.

    ``flow(source, target)`` returns (1, 2, H, W) with ``warp(source, flow)`` ~ ``target``
    (``motion.flow.Flow``'s convention: a backward flow). Asked for (frame i + step ->
    frame i), that is where each pixel of frame i goes: the forward velocity the loop needs.
    ``frames`` is a list or a function of the index; each is needed twice at most, in order.
    """
    get = frames if callable(frames) else frames.__getitem__
    total, pairs = None, count - step
    for index in range(pairs):
        motion = flow(get(index + step), get(index)).float() / step  # (1, 2, H, W)
        total = motion if total is None else total + motion
        if report:
            report(index + 1, pairs)
    return total / pairs


def prepare_clip(name: str, paths: Sequence[str], flow: FlowFn, working_side: int = WORKING_SIDE, step: int = 1,
                 device="cpu", keep: int = INPUT_FRAMES, report: Callable[[str], None] | None = None) -> Clip:
    """Read a clip's frames at the working size and measure its mean velocity field there.

    The flow runs on the working-size frames: that is the scale the network predicts at, and
    RIFE runs at twice that size internally (``Flow``), so sub-pixel motion is still resolved.
    """
    check_clip(name, paths, step)
    count = min(keep, len(paths))
    kept = {round(i * (len(paths) - 1) / max(count - 1, 1)) for i in range(count)}
    cache: dict[int, torch.Tensor] = {}  # the last step + 1 frames read
    inputs: dict[int, torch.Tensor] = {}  # the kept ones

    def frame(index: int) -> torch.Tensor:  # (1, 3, h, w), read once, dropped once no pair needs it
        if index not in cache:
            pixels, fmt = read_image(paths[index])
            image = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(device)
            cache[index] = to_working(motion_view(image.float(), fmt.is_float), working_side)
            if index in kept:
                inputs[index] = cache[index]
            for old in [i for i in cache if i < index - step]:
                del cache[old]
        return cache[index]

    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if report and (done == total or done % 10 == 0):
            report(f"clip '{name}': flow {done}/{total} pairs ({time.perf_counter() - started:.0f} s)")

    target = mean_velocity(frame, len(paths), flow, step, progress)
    return Clip(name, torch.cat([inputs[i] for i in sorted(inputs)]), target)


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------


def endpoint_error(field: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between fields (B, 2, H, W): the L1 of the per-pixel endpoint error.

    L1 rather than squared: the clip's flow is wrong in places (occlusions, flicker), and the
    L1 loss lets those outliers pull far less than a squared one would.
    """
    return ((field - target).square().sum(1) + 1e-6).sqrt().mean()


class MotionTrainer:
    """Fits a ``MotionPredictor`` to clips, one step at a time, so callers can report and stop.

    ``crop`` is the side of the square training crops at the working size (rounded down to
    32, and to the smallest clip's sides). The learning rate follows a cosine over ``steps``.
    """

    def __init__(self, clips: Sequence[Clip], steps: int, model: MotionPredictor | None = None, crop: int = 256,
                 batch: int = 4, lr: float = 1e-3, device="cpu", seed: int = 0, working_side: int = WORKING_SIDE,
                 flip: float = 0.5):
        if not clips:
            raise TaskError("Training needs at least one clip")
        self.device, self.total_steps, self.batch_size, self.lr = torch.device(device), max(int(steps), 1), batch, lr
        self.flip = flip
        self.clips = [Clip(c.name, c.frames.to(self.device), c.target.to(self.device)) for c in clips]
        smallest = min(min(c.frames.shape[-2:]) for c in self.clips)
        self.crop = min(int(crop), smallest) // MULTIPLE * MULTIPLE
        if self.crop < MULTIPLE:
            raise TaskError(f"Crops must be at least {MULTIPLE} px at the working size (got --crop {crop}, and the "
                            f"smallest clip is {smallest} px there)")
        self.random = torch.Generator().manual_seed(seed)
        if model is None:
            with torch.random.fork_rng(devices=[]):  # the weights depend on the seed, not on what ran before
                torch.manual_seed(seed)
                model = MotionPredictor(working_side)
        self.model = model.to(self.device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.steps = 0
        self.interrupted = False

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * torch.rand((), generator=self.random).item()

    def _pick(self, count: int) -> int:
        return int(torch.randint(count, (), generator=self.random))

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, 3, P, P) and target fields (B, 2, P, P): a random clip, frame and crop each."""
        inputs, targets, size = [], [], self.crop
        for _ in range(self.batch_size):
            clip = self.clips[self._pick(len(self.clips))]
            height, width = clip.frames.shape[-2:]
            y, x = self._pick(height - size + 1), self._pick(width - size + 1)
            image = clip.frames[self._pick(len(clip.frames)), :, y:y + size, x:x + size]  # (3, P, P)
            field = clip.target[0, :, y:y + size, x:x + size]  # (2, P, P)
            if self._uniform(0, 1) < self.flip:  # a mirrored scene moves mirrored: x motion changes sign
                image, field = image.flip(-1), field.flip(-1) * field.new_tensor([-1.0, 1.0]).view(2, 1, 1)
            gain, offset = 1 + self._uniform(-BRIGHTNESS, BRIGHTNESS), self._uniform(-BRIGHTNESS, BRIGHTNESS) / 2
            inputs.append((image * gain + offset).clamp(0.0, 1.0))
            targets.append(field)
        return torch.stack(inputs), torch.stack(targets)

    def step(self) -> float:
        """One optimisation step; returns its loss (mean endpoint error, px/frame at the working size)."""
        progress = min(self.steps / self.total_steps, 1.0)
        for group in self.optimizer.param_groups:  # cosine to 5 % of the rate: fast start, fine finish
            group["lr"] = self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
        inputs, target = self.batch()
        loss = endpoint_error(self.model(inputs), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        return loss.item()

    def train(self, report: Callable[[int, float, float], None] | None = None, report_every: int = 25) -> list[float]:
        """Step until ``total_steps``; returns the losses. Ctrl-C stops early (``interrupted`` is set).

        ``report(step, mean loss of the last steps, seconds)`` runs every ``report_every`` steps and at the end.
        """
        start, losses = time.perf_counter(), []
        try:
            while self.steps < self.total_steps:
                losses.append(self.step())
                if report and (self.steps % report_every == 0 or self.steps == self.total_steps):
                    report(self.steps, sum(losses[-report_every:]) / len(losses[-report_every:]),
                           time.perf_counter() - start)
        except KeyboardInterrupt:
            self.interrupted = True
            if report and losses:
                report(self.steps, sum(losses[-report_every:]) / len(losses[-report_every:]),
                       time.perf_counter() - start)
        self.model.eval()
        return losses

    def metadata(self, frames_step: int) -> dict:
        return {"frames_step": frames_step, "training_clips": len(self.clips), "steps": self.steps,
                "crop": self.crop, "clips": ",".join(c.name for c in self.clips)[:2000]}


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def parse_args(argv):
    from ..cli import add_runtime_arguments

    doc = __doc__.split("\n\n")
    parser = argparse.ArgumentParser(prog="python -m nn.loop.train", description=doc[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", metavar="CLIPS_DIR",
                        help="folder of clips: sub-folders of image frames, or frames itself. Video files must be "
                             "extracted to frames first (e.g. ffmpeg -i clip.mp4 CLIPS_DIR/clip/%%05d.png)")
    parser.add_argument("--out", required=True, help="the model file to write (.safetensors)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--steps", type=values.argument("steps", "--steps"), default=2000, help="training steps")
    parser.add_argument("--batch", type=values.argument("batch", "--batch"), default=4, help="crops per step")
    parser.add_argument("--crop", type=int, default=256, help="crop side at the working size (multiple of 32)")
    parser.add_argument("--lr", type=values.argument("learning_rate", "--lr"), default=1e-3, help="Adam learning rate at the start (cosine decay)")
    parser.add_argument("--step", type=values.argument("frame_step", "--step"), default=1, dest="frames_step", metavar="K",
                        help="measure motion between frames K apart (then divided by K); >1 for very slow clips")
    parser.add_argument("--working-side", type=int, default=WORKING_SIDE,
                        help="longer side the network runs at (multiple of 32)")
    parser.add_argument("--threads", type=values.argument("threads", "--threads"), default=0, help="CPU threads (0: PyTorch's default)")
    parser.add_argument("--seed", type=values.argument("seed", "--seed"), default=0, help="for the initial weights and the crops")
    parser.add_argument("--no-flip", action="store_true",
                        help="never mirror crops (for one or two clips whose sideways direction matters)")
    add_runtime_arguments(parser)
    return parser.parse_args(argv)


PREPARE_SHARE = 0.15  # of the progress bar: measuring the clips' motion, before training


def run(params: dict, ctx) -> tuple[list[str], dict]:
    """Worker task ``loop_train`` (and the command line): clips folder in, a motion model file out.

    params: clips, out, hub, and optionally steps, batch, crop, lr, frames_step, working_side,
    seed, overwrite. Every clip is checked before minutes go into flow; the file is written
    once, complete, at the end (Ctrl-C on the command line ends training early and saves).
    """
    from .. import hub
    from ..motion.flow import Flow

    steps, frames_step = int(params.get("steps", 2000)), int(params.get("frames_step", 1))
    working_side = int(params.get("working_side", WORKING_SIDE))
    out = os.path.abspath(params["out"])
    if os.path.lexists(out) and not params.get("overwrite"):
        raise TaskError(f"{out} exists; choose another name (or pass --overwrite on the command line)")
    if not os.path.isdir(os.path.dirname(out)):
        raise TaskError(f"The folder for the model does not exist: {os.path.dirname(out)}")
    if steps < 1 or int(params.get("batch", 4)) < 1 or frames_step < 1:
        raise TaskError("Steps, batch and frame step must each be at least 1")
    if working_side % MULTIPLE or working_side < MULTIPLE:
        raise TaskError(f"The working side must be a positive multiple of {MULTIPLE}")
    clips = find_clips(params["clips"])
    for name, paths in clips:
        check_clip(name, paths, frames_step)
    try:
        flow = Flow.load(hub.HubSettings(**params["hub"]), ctx.device, ctx.half)
    except hub.WeightsUnavailable as error:
        raise TaskError(f"The training targets need the RIFE v4.25 weights: {error}") from error
    ctx.progress(0.0, f"{len(clips)} clip(s), {sum(len(p) for _, p in clips)} frames; measuring their motion "
                      f"on {ctx.device}")
    prepared = []
    with torch.no_grad():
        for number, (name, paths) in enumerate(clips):
            share = PREPARE_SHARE * number / len(clips)
            prepared.append(prepare_clip(name, paths, flow, working_side, frames_step, ctx.device,
                                         report=lambda line, share=share: ctx.progress(share, line)))
    del flow
    for clip in prepared:
        speed = length(clip.target)
        ctx.progress(PREPARE_SHARE, f"{clip.name}: {clip.frames.shape[-1]}x{clip.frames.shape[-2]} at the working size, "
                                    f"mean speed {speed.mean():.2f} px/frame (max {speed.max():.2f})")
    trainer = MotionTrainer(prepared, steps, crop=int(params.get("crop", 256)), batch=int(params.get("batch", 4)),
                            lr=float(params.get("lr", 1e-3)), device=ctx.device, seed=int(params.get("seed", 0)),
                            working_side=working_side, flip=float(params.get("flip", 0.5)))
    ctx.progress(PREPARE_SHARE, f"Training {parameter_count(trainer.model) / 1e6:.2f} M parameters, {steps} steps "
                                f"of {trainer.batch_size} x {trainer.crop} px crops")
    losses = trainer.train(lambda step, loss, seconds: ctx.progress(
        PREPARE_SHARE + (1 - PREPARE_SHARE) * step / steps,
        f"Step {step} of {steps}: endpoint error {loss:.3f} px/frame ({seconds:.0f} s)"))
    if not losses:
        raise TaskError("Stopped before the first training step; nothing was written")
    save_predictor(trainer.model, out, trainer.metadata(frames_step), overwrite=bool(params.get("overwrite")))
    return [out], {"steps": trainer.steps, "interrupted": trainer.interrupted, "clips": [c.name for c in prepared],
                   "loss_start": sum(losses[:25]) / len(losses[:25]), "loss_end": sum(losses[-25:]) / len(losses[-25:])}


class PrintProgress(TaskContext):
    def progress(self, fraction: float, message: str, preview: str | None = None) -> None:
        print(message, flush=True)


def main(argv=None) -> int:
    from ..cli import hub_settings, task_context

    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    params = {"clips": args.clips, "out": args.out, "overwrite": args.overwrite, "steps": args.steps,
              "batch": args.batch, "crop": args.crop, "lr": args.lr, "frames_step": args.frames_step,
              "working_side": args.working_side, "seed": args.seed, "flip": 0.0 if args.no_flip else 0.5,
              "hub": hub_settings(args)}
    try:
        ctx = task_context(args)
        _, info = run(params, PrintProgress(ctx.device, ctx.half))
    except KeyboardInterrupt:
        sys.exit("interrupted before training; nothing written")
    except (TaskError, OSError, ValueError, RuntimeError) as error:
        sys.exit(f"error: {error}")
    print(f"{'interrupted: ' if info['interrupted'] else ''}saved {args.out} after {info['steps']} steps")
    return 0


if __name__ == "__main__":
    from ..cli import run_command

    sys.exit(run_command(main))
