"""Batch example: generate inbetweens for the selected keyframe strips, then save.

    blender -b shot.blend -P examples/batch_inbetweens.py -- --model auto --count 0

With --count 0 the empty frames between keyframes are filled; with --count N,
N frames are made after each keyframe. The new strip is added to the file.
"""
import argparse
import sys

import addon_utils
import bpy


def frameweaver():
    """The installed extension's package, whichever repository it came from."""
    for module in addon_utils.modules():
        if module.__name__.endswith(".frameweaver") and addon_utils.check(module.__name__)[1]:
            return sys.modules[module.__name__]
    raise SystemExit("Frameweaver is not enabled: install and enable it first")


def main(scene, model="auto", count=0, save=True):
    fw = frameweaver()
    options = {"mode": "COUNT", "count": count} if count else {"mode": "GAPS"}
    strip = fw.generate_inbetweens(scene, model=model, **options)
    print(f"Created strip '{strip.name}' on channel {strip.channel}")
    if save and bpy.data.filepath:
        bpy.ops.wm.save_mainfile()
    return strip


if __name__ == "__main__":
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="auto")
    parser.add_argument("--count", type=int, default=0)
    args = parser.parse_args(argv)
    main(bpy.context.scene, args.model, args.count)
