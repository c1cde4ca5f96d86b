"""Command line, no Blender needed:

    python -m nn.inbetween A.png B.png --times 0.25 0.5 0.75 --model rife-v4.25 --out DIR

Writes DIR/<stem of A>_t0.250.png (same format and depth as A; JPEG becomes PNG).
Weights come from --weights FILE, else --weights-dir/<model>/<file>, else the Hub cache.
"""
import argparse
import os
import sys

import torch

from ..cli import add_runtime_arguments, hub_settings, run_command, task_context
from ..imageio import read_image, write_image
from .task import load_model, output_format, to_pixels, to_tensor



def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m nn.inbetween", description=__doc__.split("\n\n")[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--times", type=float, nargs="+", default=[0.5])
    parser.add_argument("--model", default="rife-v4.25", choices=["rife-v4.25", "rife-hdv3", "blend"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", help="a local checkpoint (.safetensors, or a legacy .pkl/.pth of tensors)")
    add_runtime_arguments(parser)
    parser.add_argument("--flow-scale", type=float, default=0.0, choices=[0.0, 1.0, 0.5, 0.25],
                        help="resolution motion is estimated at; 0: automatic (0.5 at 2K and above)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if any(not 0.0 < t < 1.0 for t in args.times):
        sys.exit("--times must lie strictly between 0 and 1")
    first, fmt = read_image(args.first)
    second, _ = read_image(args.second)
    if first.shape != second.shape:
        sys.exit(f"The images differ in size or channels: {first.shape} and {second.shape}")
    ctx = task_context(args)
    params = {
        "model": args.model, "weights_file": args.weights, "flow_scale": args.flow_scale,
        "size": (first.shape[1], first.shape[0]),
        "hub": hub_settings(args),
    }
    model = load_model(params, ctx)
    out_fmt = output_format(fmt)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.first))[0]
    key_a, key_b = to_tensor(first, ctx.device), to_tensor(second, ctx.device)
    with torch.inference_mode():
        for t in args.times:
            path = os.path.join(args.out, f"{stem}_t{t:.3f}{out_fmt.extension}")
            write_image(path, to_pixels(model(key_a, key_b, t, out_fmt.is_float)), out_fmt)
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
