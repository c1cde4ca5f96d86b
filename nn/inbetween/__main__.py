"""Command line, no Blender needed:

    python -m nn.inbetween A.png B.png --times 0.25 0.5 0.75 --model rife-v4.25 --out DIR
    python -m nn.inbetween K0.png K1.png K2.png ... --count N --model keymotion --out DIR
    python -m nn.inbetween K0.png K1.png ... --count N --model generative [--model-dir DIR] [--prompt TEXT]
                           [--seed S] [--steps N] [--guidance G] --out DIR

Writes DIR/<stem of the gap's first key>_t0.250.png (same format and depth as the keys; JPEG
becomes PNG): the given times between two keys, or N evenly timed inbetweens in every gap.
Key Motion uses all the keys for motion (paths are smooth through each key); the generative model
(Wan2.1 VACE) makes one video through all the keys, each at its place (a gap of N frames).
Weights come from --weights FILE, else --weights-dir/<model>/<file>, else the Hub cache.
--ray HOST:PORT runs the frames as chunks on a Ray cluster (nn/farm): the same files, made there.
"""
import argparse
import os
import sys

from .. import hub, values
from ..cli import (PrintPaths, add_farm_arguments, add_generative_arguments, add_runtime_arguments, generative_params,
                   hub_settings, output_folder, run_command, run_on_farm, task_context)
from ..farm.chunks import ChunkRequestError, frame_count
from ..imageio import read_image

MODELS = ["auto", "rife-v4.25", "rife-hdv3", "keymotion", "generative", "blend"]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m nn.inbetween", description=__doc__.split("\n\n")[0])
    parser.add_argument("keys", nargs="+", metavar="KEY", help="two or more keyframes, in order")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("--times", type=values.argument("time", "--times"), nargs="+",
                        help="times strictly between 0 and 1 (two keys only; default 0.5)")
    timing.add_argument("--count", type=values.argument("count", "--count"), help="evenly timed inbetweens per gap")
    parser.add_argument("--model", default="auto", choices=MODELS,
                        help="auto: Key Motion, and the generative model where motion cannot explain a gap (when it "
                             "is installed and a GPU is present)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", help="a local checkpoint (.safetensors, or a legacy .pkl/.pth of tensors)")
    add_runtime_arguments(parser)
    add_generative_arguments(parser)
    add_farm_arguments(parser)
    parser.add_argument("--flow-scale", type=float, default=0.0, choices=[0.0, 1.0, 0.5, 0.25],
                        help="resolution motion is estimated at; 0: automatic (0.5 at 2K and above)")
    return parser.parse_args(argv)


def gap_times(args) -> list[list[float]]:
    """The times of each gap's inbetweens; exits with a message on a bad request."""
    gaps = len(args.keys) - 1
    if gaps < 1:
        sys.exit("Give at least two keyframes")
    if args.count is not None:
        return [[j / (args.count + 1) for j in range(1, args.count + 1)]] * gaps
    if args.times is not None and gaps > 1:
        sys.exit("--times works with two keyframes; for more, use --count")
    times = args.times or [0.5]
    names = [f"{t:.3f}" for t in times]  # each time is one file, named to 3 decimals
    if same := next((t for t, name in zip(times, names) if names.count(name) > 1), None):
        sys.exit(f"--times gives {names[times.index(same)]} more than once (to 3 decimals, the precision of the file "
                 "names); give each time once")
    return [times]


def job_params(args, times: list[list[float]], generative: dict) -> dict:
    """The worker task's parameters: (gap, gap + 1, t) per frame, named <stem of the gap's first key>_t<t>.

    Absolute paths, so the same job runs anywhere (``--ray``). Cuts are not looked for: the
    command line morphs every gap it is given.
    """
    frames, names = [], []
    for gap, (path, times_of_gap) in enumerate(zip(args.keys, times)):
        stem = os.path.splitext(os.path.basename(path))[0]
        for t in times_of_gap:
            frames.append([gap, gap + 1, t])
            names.append(f"{stem}_t{t:.3f}")
    return {"keys": [os.path.abspath(path) for path in args.keys], "frames": frames, "names": names,
            "model": args.model, "weights_file": args.weights and os.path.abspath(args.weights),
            "flow_scale": args.flow_scale, "cuts": "IGNORE", "hub": hub_settings(args),
            "output_dir": os.path.abspath(args.out), **generative}


def main(argv=None) -> int:
    args = parse_args(argv)
    times = gap_times(args)
    images = [read_image(path) for path in args.keys]
    (first, _) = images[0]
    for path, (pixels, _) in zip(args.keys[1:], images[1:]):
        if pixels.shape != first.shape:
            sys.exit(f"{os.path.basename(path)} differs from {os.path.basename(args.keys[0])} in size or channels: "
                     f"{pixels.shape} and {first.shape}")
    own_weights = args.weights and args.model not in ("blend", "generative") and hub.published_as(args.weights) is None
    if args.ray:
        try:
            frame_count("inbetween", {"model": args.model, "frames": []})  # the generative model does not split
        except ChunkRequestError as error:
            sys.exit(f"error: {error}")
    with output_folder(args.out):
        if args.ray:
            outputs, info = run_on_farm(args, "inbetween", job_params(args, times, generative_params(args, None)))
            print("\n".join(outputs), flush=True)
        else:
            from . import task  # PyTorch: not needed by a farm job's driver

            ctx = task_context(args, PrintPaths)
            _, info = task.run(job_params(args, times, generative_params(args, ctx)), ctx)
    if own_weights:  # said once they loaded: a file that cannot be read gets its one error line alone
        print(f"note: {args.weights} is not byte for byte a published checkpoint (its sha256 matches none pinned); "
              "it is used as your own weights", file=sys.stderr)
    if info.get("notes"):
        from ..generate.pipeline import warn_on_stderr  # PyTorch: only when there is something to say

        for text in info["notes"]:
            warn_on_stderr(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
