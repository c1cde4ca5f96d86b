"""Command line, no Blender needed:

    python -m nn.loop IMAGE --mask MASK.png --hints HINTS.json --frames 120 --out DIR
                      [--speed S] [--polygons labelme.json] [--dusk] [--endless [--seamless] [--seed N]] [--layers]
    python -m nn.loop IMAGE --motion-model MODEL.safetensors [--mask MASK.png] --out DIR
    python -m nn.loop IMAGE [--mask MASK.png] --motion generative [--model-dir DIR] [--prompt TEXT] [--seed S]
                      [--steps N] --frames N --out DIR

Writes DIR/frame_0000.png, frame_0001.png, ... (same format and depth as IMAGE; JPEG becomes
PNG), never over existing files. HINTS.json is a list of arrows [[x0, y0, x1, y1], ...] in
pixels; --polygons reads a labelme file: its "hint..." lines are strokes, its polygons the region.
--motion-model predicts the motion with a model trained by ``python -m nn.loop.train`` instead of
hints; without a mask, what moves is where the model sees motion. --motion generative has the
generative model (Wan2.1 VACE) make the frames inside the mask (the whole picture without one). --endless makes a clip of any
length (at least 48 frames) whose motion never repeats, --seamless one that also loops. --layers
also writes DIR/layers/frame_layer_0000.png...: the moving region alone, RGBA, to lay over the still.
--ray HOST:PORT renders the frames as chunks on a Ray cluster (nn/farm): the same files, made there.
"""
import argparse
import json
import os
import sys

import torch

from .. import values
from ..cli import (add_farm_arguments, add_generative_arguments, add_weights_arguments, generative_params, hub_settings,
                   output_folder, run_command, run_on_farm)
from ..device import pick_device
from ..worker import TaskContext, TaskError
from . import task
from .hints import read_labelme

DUSK = {"target_rgb": [0.42, 0.27, 0.3], "reference": None, "strength": 0.7}  # a dim, warm evening cast


class PrintProgress(TaskContext):
    def progress(self, fraction: float, message: str, preview: str | None = None) -> None:
        print(preview or message, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m nn.loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("image")
    parser.add_argument("--mask", help="image whose non-zero pixels may move")
    parser.add_argument("--hints", help="JSON list of arrows [[x0, y0, x1, y1], ...] in pixels")
    parser.add_argument("--polygons", help="labelme JSON: motion region polygons and 'hint' strokes")
    parser.add_argument("--motion", choices=["hints", "learned", "generative"],
                        help="where the motion comes from (default: learned with --motion-model, else hints)")
    parser.add_argument("--motion-model", help="predict the motion with this trained model instead of hints")
    parser.add_argument("--frames", type=values.argument("frames", "--frames"), default=120)
    parser.add_argument("--speed", type=values.argument("speed", "--speed"), default=1.0, help="pixels per frame at the hints (with a motion model: on average over what moves)")
    parser.add_argument("--dusk", action="store_true", help="let the light dim to dusk and back over the loop")
    parser.add_argument("--endless", action="store_true", help="a clip that never repeats, of any length")
    parser.add_argument("--seamless", action="store_true", help="with --endless: end where it starts")
    parser.add_argument("--layers", action="store_true", help="also write the moving region alone, as RGBA")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu", choices=["auto", "cuda", "mps", "cpu"])
    add_weights_arguments(parser)
    add_generative_arguments(parser)  # its --seed also picks Endless's random motion
    add_farm_arguments(parser)
    return parser.parse_args(argv)


def read_hints(path: str) -> list:
    """The arrows of a --hints file; anything else (a labelme file, say) is refused, naming what is expected."""
    with open(path, encoding="utf-8") as f:
        hints = json.load(f)
    arrow = lambda item: isinstance(item, list) and len(item) == 4 and all(  # noqa: E731
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in item)
    if not isinstance(hints, list) or not all(arrow(item) for item in hints):
        labelme = isinstance(hints, dict) and "shapes" in hints
        sys.exit(f"error: --hints expects a JSON list of arrows [[x0, y0, x1, y1], ...] in pixels; {path} "
                 + ("is a labelme file: pass it with --polygons" if labelme else "is not one"))
    return hints


def main(argv=None) -> int:
    args = parse_args(argv)
    hints, region, strokes = [], [], []
    if args.hints:
        hints = read_hints(args.hints)
    if args.polygons:
        region, strokes, _ = read_labelme(args.polygons)
    absolute = lambda path: path and os.path.abspath(path)  # noqa: E731  (--ray: read on other machines)
    params = {
        "image": absolute(args.image), "mask": absolute(args.mask), "mask_polygons": region or None, "hints": hints,
        "strokes": strokes, "frames": args.frames, "speed": args.speed, "appearance": DUSK if args.dusk else None,
        "output_dir": absolute(args.out), "prefix": "frame", "first_number": 0,
        "motion_source": args.motion or ("learned" if args.motion_model else "hints"),
        "motion_model": absolute(args.motion_model),
        "endless": args.endless, "seamless": args.seamless, "seed": args.seed, "layers": args.layers,
    }
    ctx = PrintProgress(pick_device(args.device), half=False)
    params.update(generative_params(args, ctx))
    params["hub"] = hub_settings(args)
    try:
        with output_folder(args.out):
            if args.ray:
                outputs, info = run_on_farm(args, "loop", params)
                print("\n".join(outputs), flush=True)
            else:
                with torch.inference_mode():
                    _, info = task.run(params, ctx)
    except (TaskError, OSError) as error:
        sys.exit(str(error))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
