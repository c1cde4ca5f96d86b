"""The README's demo: inbetween the bundled keyframes in real (headless) Blender.

Writes to --out: the generated frames, demo.blend with the new strip, and contact_sheet.png.
The weights come from --weights-dir (weights/, filled by scripts/fetch_weights.py); nothing is
downloaded. On failure it prints one line, removes --out and exits with 1.
"""
import argparse
import math
import os
import shutil
import sys

from dev_extension import ROOT, isolate_user_folder, load_extension_from_source
from fetch_weights import WEIGHTS_DIR

isolate_user_folder()
import bpy  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
import batch_inbetweens  # noqa: E402
from nn.imageio import ImageFormat, read_image, write_image  # noqa: E402

KEYFRAMES = sorted((ROOT / "examples" / "keyframes").glob("key_*.png"))


def contact_sheet(files, path, columns=6):
    """Frames in a grid over a checkerboard, so the alpha is visible."""
    frames = [read_image(f)[0] for f in files]
    height, width = frames[0].shape[:2]
    rows = math.ceil(len(frames) / columns)
    sheet = np.ones((rows * height, columns * width, 3), np.float32)
    y, x = np.mgrid[0:height, 0:width]
    checker = np.where(((y // 16 + x // 16) % 2)[..., None] == 0, 0.8, 0.6).astype(np.float32)
    for index, frame in enumerate(frames):
        alpha = frame[..., 3:4] if frame.shape[2] == 4 else 1.0
        tile = frame[..., :3] * alpha + checker * (1 - alpha)
        r, c = divmod(index, columns)
        sheet[r * height:(r + 1) * height, c * width:(c + 1) * width] = tile
    write_image(path, sheet, ImageFormat(".png", "uint8", 3))


def inbetween_keyframes(fw, out: str, model: str, gap: int):
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out, "demo.blend"))
    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    scene.render.resolution_x, scene.render.resolution_y = 480, 270
    for index, path in enumerate(KEYFRAMES):
        strip = fw.operators.compat.strips(editor).new_image(
            name=path.stem, filepath=str(path), channel=1, frame_start=1 + index * (gap + 1))
        strip.select = True
    scene.frame_start, scene.frame_end = 1, 1 + (len(KEYFRAMES) - 1) * (gap + 1)

    strip = batch_inbetweens.main(scene, model=model, save=True)
    folder = bpy.path.abspath(strip.directory)
    files = [os.path.join(folder, element.filename) for element in strip.elements]
    contact_sheet(files, os.path.join(out, "contact_sheet.png"))
    return folder, files


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "demo_out"))
    parser.add_argument("--model", default="auto")
    parser.add_argument("--gap", type=int, default=5, help="empty frames between keyframes")
    parser.add_argument("--weights-dir", default=str(WEIGHTS_DIR), help="the Local Weights folder: <model>/<file>")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=False)  # a fresh folder: never overwrite earlier results

    fw = load_extension_from_source()
    fw.ui.preferences.addon_preferences(bpy.context).local_weights_dir = os.path.abspath(args.weights_dir)
    try:
        folder, files = inbetween_keyframes(fw, args.out, args.model, args.gap)
    except BaseException as error:
        shutil.rmtree(args.out, ignore_errors=True)  # it was made above, for this run only
        if isinstance(error, fw.operators.job_runner.JobFailed):
            # One line that says what to do; a traceback would not.
            sys.exit(f"Demo failed: {error} (the demo's Local Weights folder is --weights-dir, "
                     "which scripts/fetch_weights.py fills)")
        raise
    print(f"Demo done: {len(files)} frames in {folder}\n  {args.out}/demo.blend\n  {args.out}/contact_sheet.png")


if __name__ == "__main__":
    main()
