"""Command line, no Blender needed:

    python -m nn.stylize --frames DIR --key 0=style000.png [--key 99=style099.png] [--masks DIR]
                         --seconds 300 --out DIR [--model FILE] [--fit-sizes] [--weights-dir DIR]

Key indices count from 0 in the sorted frames of DIR. Writes the stylized frames under the
input file names (JPEG becomes PNG, same stem) and the trained model as DIR/model.safetensors;
an existing file is never overwritten. --model FILE reuses a trained model without training.
Masks are matched to frames by the last number in their names (mask_00007.png -> 007.jpg).
--ray HOST:PORT stylizes the frames with a trained --model as chunks on a Ray cluster (nn/farm).
"""
import argparse
import os
import re
import shutil
import sys

from .. import files, values
from ..cli import add_farm_arguments, add_runtime_arguments, hub_settings, output_folder, run_command, run_on_farm, task_context
from ..worker import TaskError
from . import task
from ..frames import output_format

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".webp", ".bmp"}


def images(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        sys.exit(f"No such folder: {folder}")
    names = sorted(n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)
    return [os.path.abspath(os.path.join(folder, n)) for n in names]


def number(path: str) -> int | None:
    found = re.findall(r"\d+", os.path.splitext(os.path.basename(path))[0])
    return int(found[-1]) if found else None


def match_masks(frames: list[str], folder: str) -> list[str | None]:
    masks = images(folder)
    by_number = {number(m): m for m in masks}
    if None in by_number or any(number(f) is None for f in frames):
        if len(masks) != len(frames):
            sys.exit(f"{len(masks)} masks for {len(frames)} frames, and their names carry no frame numbers")
        return masks
    return [by_number.get(number(f)) for f in frames]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m nn.stylize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", required=True, help="folder of footage frames")
    parser.add_argument("--key", action="append", default=[], metavar="INDEX=PATH", help="a painted keyframe")
    parser.add_argument("--masks", help="folder of masks: stylize only inside them")
    parser.add_argument("--seconds", type=values.argument("seconds", "--seconds"), default=300.0, help="training budget")
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", help="a trained model (.safetensors) to reuse without training")
    parser.add_argument("--fit-sizes", action="store_true", help="resize keyframes of another size to the footage's")
    add_runtime_arguments(parser)
    add_farm_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    frames = images(args.frames)
    keys = []
    for spec in args.key:
        index, _, path = spec.partition("=")
        if not index.isdigit() or not path:
            sys.exit(f"--key takes INDEX=PATH, got {spec!r}")
        keys.append({"index": int(index), "path": os.path.abspath(path)})
    if not frames:
        sys.exit(f"No images in {args.frames}")
    if args.ray and not args.model:
        sys.exit("--ray applies a trained model (--model FILE): training runs on one machine, then the frames are "
                 "stylized on the farm")
    from ..imageio import read_image

    ext = output_format(read_image(frames[0])[1]).extension
    finals = [os.path.join(args.out, os.path.splitext(os.path.basename(f))[0] + ext) for f in frames]
    model_path = os.path.join(args.out, "model.safetensors")
    taken = [p for p in finals + ([] if args.model else [model_path]) if os.path.lexists(p)]
    if taken:
        sys.exit(f"Refusing to overwrite {len(taken)} existing file(s) in {args.out}, e.g. {taken[0]}")
    work = os.path.abspath(os.path.join(args.out, f".stylize-{os.getpid()}"))  # task names, renamed to the input names at the end
    ctx = task_context(args)
    ctx.progress = lambda fraction, message, preview=None: print(f"{fraction:6.1%} {message}", file=sys.stderr)
    params = {
        "frames": frames, "keys": keys, "masks": match_masks(frames, args.masks) if args.masks else None,
        "output_dir": work, "prefix": "style", "seconds": args.seconds, "stop_file": None,
        "model_file": args.model and os.path.abspath(args.model), "resume": False,
        "save_model": None if args.model else model_path,
        "preview_index": keys[0]["index"] if keys else 0, "fit_sizes": args.fit_sizes,
        "fit_sizes_setting": "Pass --fit-sizes", "hub": hub_settings(args),
    }
    with output_folder(args.out):
        os.makedirs(work)
        try:
            outputs, info = run_on_farm(args, "stylize", params) if args.ray else task.run(params, ctx)
            for source, final in zip(outputs, finals):
                files.publish(source, final)  # refuses an existing name
        except (TaskError, OSError, ValueError) as error:
            sys.exit(f"error: {error}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for note in info["notes"]:
        print(note, file=sys.stderr)
    print(f"{len(finals)} frames in {args.out}" + ("" if args.model else f", model {model_path}"))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
