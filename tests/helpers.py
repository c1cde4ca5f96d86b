"""Small builders shared by the tests: keyframe images, strips, movies and guide Masks."""
import importlib
import json
import os
import subprocess
import tempfile

import bpy

import numpy as np

from nn.imageio import ImageFormat, read_image, write_image


def gradient_image(height=48, width=64, channels=4, shift=0.0):
    """A smooth test picture whose content moves with ``shift`` (pixels, horizontally)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, channels), np.float32)
    image[..., 0] = 0.5 + 0.5 * np.sin((x - shift) / 6.0)
    if channels > 1:
        image[..., 1] = y / height
    if channels > 2:
        image[..., 2] = 0.5 + 0.5 * np.cos((x - shift + y) / 9.0)
    if channels == 4:
        image[..., 3] = 0.5 + 0.5 * np.cos((x - shift) / 7.0)  # non-linear, so a fade differs from a move
    return image


def write_keyframes(folder, count=2, fmt=ImageFormat(".png", "uint8", 4), size=(48, 64), step=4.0):
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"key_{index:02d}{fmt.extension}")
        write_image(path, gradient_image(*size, channels=fmt.channels, shift=index * step), fmt)
        paths.append(path)
    return paths


def moved_then_redrawn(folder):
    """Three keys: a square that moves 4 px (motion explains it), then a round blob of another colour
    elsewhere (redrawn: it does not)."""
    y, x = np.mgrid[0:64, 0:96].astype(np.float32)
    background = np.stack([0.2 + 0.1 * np.sin(x / 9), 0.3 + 0.1 * np.cos(y / 7), 0.25 + 0 * x], -1)
    keys = []
    for index, (shape, colour) in enumerate([
            ((abs(x - 30) < 10) & (abs(y - 30) < 10), (0.9, 0.2, 0.1)),
            ((abs(x - 34) < 10) & (abs(y - 30) < 10), (0.9, 0.2, 0.1)),
            ((x - 70) ** 2 + (y - 40) ** 2 < 12 ** 2, (0.1, 0.5, 0.95))]):
        picture = np.where(shape[..., None], np.array(colour, np.float32), background)
        keys.append(str(folder / f"key_{index}.png"))
        write_image(keys[-1], picture, ImageFormat(".png", "uint8", 3))
    return keys


def add_key_strips(scene, paths, starts, channel=1, fw=None):
    """One single-image strip per keyframe, selected."""
    from conftest import FRAMEWEAVER
    compat = FRAMEWEAVER.operators.compat
    strips = []
    for path, start in zip(paths, starts):
        strip = compat.strips(scene.sequence_editor).new_image(
            name=os.path.basename(path), filepath=path, channel=channel, frame_start=start)
        strip.select = True
        strips.append(strip)
    return strips


def colour_strip(scene, channel=1, frames=4):
    """A selected Color strip named 'Solid' from frame 1 (new_effect's length argument was frame_end before 5.0)."""
    from conftest import FRAMEWEAVER
    strips = FRAMEWEAVER.operators.compat.strips(scene.sequence_editor)
    parameters = strips.bl_rna.functions["new_effect"].parameters
    length = {"length": frames} if "length" in parameters else {"frame_end": 1 + frames}
    strip = strips.new_effect(name="Solid", type="COLOR", channel=channel, frame_start=1, **length)
    strip.select = True
    return strip


def image_sequence(scene, folder, count=4, start=3, size=(64, 96)):
    from conftest import FRAMEWEAVER
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"f_{index:04d}.png")
        write_image(path, gradient_image(*size, channels=3, shift=index * 10), ImageFormat(".png", "uint8", 3))
        paths.append(path)
    strips = FRAMEWEAVER.operators.compat.strips(scene.sequence_editor)
    strip = strips.new_image(name="seq", filepath=paths[0], channel=1, frame_start=start)
    for path in paths[1:]:
        strip.elements.append(os.path.basename(path))
    return strip, paths


def render_movie(scene, folder, frames):
    """A short lossless H.264 movie made by Blender itself."""
    source = bpy.data.scenes.new("movie source")
    try:
        source.sequence_editor_create()
        image_sequence(source, folder, count=frames, start=1)
        render = source.render
        render.resolution_x, render.resolution_y, render.resolution_percentage = 96, 64, 100
        source.frame_start, source.frame_end = 1, frames
        source.view_settings.view_transform = "Standard"
        if hasattr(render.image_settings, "media_type"):  # 5.0+: must be set before FFMPEG
            render.image_settings.media_type = "VIDEO"
        render.image_settings.file_format = "FFMPEG"
        render.ffmpeg.format, render.ffmpeg.codec, render.ffmpeg.constant_rate_factor = "MPEG4", "H264", "LOSSLESS"
        render.filepath = os.path.join(folder, "movie.mp4")
        bpy.ops.render.render(animation=True, scene=source.name)
        return os.path.join(folder, "movie.mp4")
    finally:
        bpy.data.scenes.remove(source)


def scene_state(scene):
    """What a failed or refused job must not change: every strip's identity, place, files and selection."""
    from conftest import FRAMEWEAVER
    compat = FRAMEWEAVER.operators.compat
    editor = scene.sequence_editor
    strips = sorted(
        (s.name, s.type, s.channel, compat.left_handle(s), compat.right_handle(s), s.select,
         getattr(s, "directory", ""), tuple(e.filename for e in getattr(s, "elements", ())))
        for s in compat.all_strips(editor)) if editor else []
    active = editor.active_strip.name if editor and editor.active_strip else None
    return strips, active, len(bpy.data.scenes), len(bpy.data.images)


def tree_state(folder):
    """Every file and folder under ``folder``: (relative path, size, mtime) - any new, lost or rewritten file shows.

    A folder counts by its name only (its mtime changes whenever something inside comes and goes).
    """
    entries = []
    for root, dirs, files in os.walk(folder):
        entries += [(os.path.relpath(os.path.join(root, name), folder), -1, 0) for name in dirs]
        for name in files:
            info = os.lstat(os.path.join(root, name))
            entries.append((os.path.relpath(os.path.join(root, name), folder), info.st_size, info.st_mtime_ns))
    return sorted(entries)


class Unchanged:
    """``with Unchanged(scene, folder): ...`` fails unless the scene's strips and the files under ``folder`` are as before."""

    def __init__(self, scene, folder):
        self.scene, self.folder = scene, str(folder)

    def __enter__(self):
        self.before = scene_state(self.scene), tree_state(self.folder)
        return self

    def __exit__(self, *exc):
        after = scene_state(self.scene), tree_state(self.folder)
        assert after[0] == self.before[0], f"the scene changed: {self.before[0]} -> {after[0]}"
        assert after[1] == self.before[1], f"files changed: {sorted(set(after[1]) ^ set(self.before[1]))}"
        return False


def mask_coordinates(x, y, width, height):
    """Pixels from the top-left corner (y down) to Mask space: centred, a unit spans the longer side."""
    scale = max(width, height)
    return (x - width / 2) / scale + 0.5, (height / 2 - y) / scale + 0.5


def guide_mask(name, strokes, size=(64, 48), handles="VECTOR", cyclic=False):
    """A Mask with a layer per stroke name, each holding splines through the given pixel points."""
    mask = bpy.data.masks.new(name)
    for stroke, splines in strokes.items():
        layer = mask.layers.new(name=stroke)
        for points in splines:
            spline = layer.splines.new()
            spline.points.add(len(points) - 1)
            spline.use_cyclic = cyclic
            for point, (x, y) in zip(spline.points, points):
                point.co = mask_coordinates(x, y, *size)
            for point in spline.points:  # handles follow the neighbours: set once every point is placed
                point.handle_type = handles
    return mask


def render_mask(scene, mask, width, height, folder):
    """Blender's own render of a Mask, as a Mask strip in a frame of ``width`` x ``height``: (H, W) coverage."""
    from conftest import FRAMEWEAVER
    strips = FRAMEWEAVER.operators.compat.strips(scene.sequence_editor)
    strip = strips.new_mask(name="rendered mask", mask=mask, channel=1, frame_start=1)
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    scene.frame_start = scene.frame_end = 1
    scene.view_settings.view_transform = "Standard"
    render.image_settings.file_format, render.filepath = "PNG", os.path.join(folder, "mask_")
    bpy.ops.render.render(animation=True, scene=scene.name)
    strips.remove(strip)
    return read_image(os.path.join(folder, "mask_0001.png"))[0][..., 0]


def with_torch(name: str, *args):
    """``module.function(*args)`` where torch is: in this process, or, where Blender's Python has none
    (bpy 5.1+ in scripts/test.sh), in the Python that runs the workers. The module is one without bpy
    (in nn/, or tests/model_files.py); the arguments and result are plain JSON data, or the result a numpy array."""
    from conftest import ROOT, TORCH_HERE, WORKER_PYTHON
    module, function = name.rsplit(".", 1)
    if TORCH_HERE:
        return getattr(importlib.import_module(module), function)(*args)
    with tempfile.TemporaryDirectory(prefix="frameweaver-with-torch-") as folder:
        result, arguments = os.path.join(folder, "result"), os.path.join(folder, "arguments.json")
        with open(arguments, "w") as file:
            json.dump(args, file)
        script = (f"import json, sys, numpy\nsys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
                  f"from {module} import {function} as function\n"
                  f"value = function(*json.load(open({arguments!r})))\n"
                  f"if isinstance(value, numpy.ndarray): numpy.save({result + '.npy'!r}, value)\n"
                  f"else: json.dump(value, open({result + '.json'!r}, 'w'))\n")
        done = subprocess.run([WORKER_PYTHON, "-c", script], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        if os.path.exists(result + ".npy"):
            return np.load(result + ".npy")
        with open(result + ".json") as file:
            return json.load(file)


def rasterized(polygons, width, height):
    """(H, W) bool: the pixels of the worker's own region fill (nn.loop.hints) of ``polygons``."""
    return with_torch("nn.loop.hints.rasterize_polygons", polygons, width, height)
