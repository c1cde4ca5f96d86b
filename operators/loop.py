"""Animate Loop on the Blender side: a still, a motion region and motion hints in, one looping strip out.

Hints come from a Mask datablock, drawn in the Mask editor over the still:
open splines are strokes drawn in the direction of motion (first point to
last), closed splines outline the region that may move. We chose Mask splines
over annotation strokes because they are a datablock with image-space
coordinates that survive save and undo, read the same on 4.2 to 5.x without a
display, and can be edited point by point; annotations belong to an editor and
their API changed with Grease Pencil v3. A mask image strip works as the region too.
"""
from __future__ import annotations

import os

import bpy

from . import compat, generative, job_runner, mask_space, strip_io
from ..nn import values

MOTION_SOURCES = [
    ("HINTS", "Hints", "Motion drawn as open splines in the Mask, spread over the region that may move"),
    ("LEARNED", "Learned", "Motion predicted from the picture by a model trained with nn.loop.train"),
    ("GENERATIVE", "Generative", "Wan2.1 VACE video diffusion inside the region (the whole picture without one), "
                                 "from the still back to the still. Needs a CUDA GPU and its weights"),
]
WORKER_MOTION = {"HINTS": "hints", "LEARNED": "learned", "GENERATIVE": "generative"}


class LoopMotionProperties:
    """What both Animate Loop and Preview Motion need to make the motion field."""

    speed: bpy.props.FloatProperty(name="Speed", default=1.0, soft_min=0.01, soft_max=100.0,
                                   description="Pixels per frame where the strokes are drawn (Learned: on average)")
    mask: bpy.props.StringProperty(name="Motion Mask", description="Mask datablock: open splines are motion "
                                   "strokes (first point to last), closed splines outline what may move")
    mask_strip: bpy.props.StringProperty(name="Mask Strip", description="Optional image strip: white may move")
    motion_source: bpy.props.EnumProperty(name="Motion", items=MOTION_SOURCES, default="HINTS")
    motion_model: bpy.props.StringProperty(name="Motion Model", subtype="FILE_PATH",
                                           description="Trained motion model; empty: the weights folder's own")

    def motion_options(self) -> dict:
        mask = bpy.data.masks.get(self.mask) if self.mask else None
        if self.mask and mask is None:
            raise ValueError(f"No Mask named '{self.mask}'")
        return {"speed": self.speed, "mask": mask, "mask_strip": self.mask_strip,
                "motion_source": self.motion_source, "motion_model": self.motion_model}


def still_strip(scene):
    selected = [s for s in compat.selected_strips(scene) if s.type == "IMAGE"]
    if len(selected) != 1:
        raise strip_io.StripInputError("Select the one image strip to animate")
    return selected[0]


def image_size(strip) -> tuple[int, int]:
    element = strip.strip_elem_from_frame(compat.left_handle(strip))
    if element is None or not element.orig_width:
        return 0, 0
    return element.orig_width, element.orig_height


def mask_splines(mask, width: int, height: int) -> tuple[list, list]:
    """(region polygons, strokes) in pixels from a Mask datablock's splines (y down, as images are)."""
    polygons, strokes = [], []
    for layer in mask.layers:
        if layer.hide_render:
            continue
        for spline in layer.splines:
            points = [mask_space.to_pixels(p.co, width, height) for p in spline.points]
            if spline.use_cyclic and len(points) >= 3:
                polygons.append(points)
            elif not spline.use_cyclic and len(points) >= 2:
                strokes.append(points)
    return polygons, strokes


def named_image(scene, name: str, role: str) -> str:
    """The image file of the image strip called ``name``, used as the loop's ``role`` (a mask, a reference)."""
    strip = compat.all_strips(scene.sequence_editor).get(name)
    if strip is None or strip.type != "IMAGE":
        raise strip_io.StripInputError(f"The {role} '{name}' must be an image strip")
    return strip_io.key_image(strip)


def points_outside(splines, width: int, height: int) -> int:
    """How many spline points lie off the still (half a pixel of slack for points on its edge)."""
    return sum(not (-0.5 <= x <= width + 0.5 and -0.5 <= y <= height + 0.5) for spline in splines for x, y in spline)


def free_channel_pair(editor, frame_start: int, frame_end: int, above: int) -> int:
    """Lowest channel above ``above`` that, with the channel over it, has nothing in [frame_start, frame_end)."""
    channel = strip_io.free_channel(editor, frame_start, frame_end, above)
    while (upper := strip_io.free_channel(editor, frame_start, frame_end, channel)) != channel + 1:
        channel = upper
    return channel


def loop_warnings(info: dict, mask_name: str, off_still: int, width: int, height: int) -> str:
    """What the user should know about a finished loop: hints or Mask points that were ignored."""
    notes = []
    if off_still:
        notes.append(f"{off_still} point(s) of the Mask '{mask_name}' lie outside the {width}x{height} still; was it "
                     "drawn over an image of another shape? Parts outside the still are ignored")
    if info.get("hints_outside_mask"):
        notes.append(f"{info['hints_outside_mask']} of {info['hints']} hint segments lie outside the region that may "
                     "move and were ignored")
    notes.extend(info.get("notes", []))  # the generative model's (a prompt cut to the encoder's length)
    return "; ".join(notes)


def add_layers(scene, title: str, still, files: list[str], channel: int, start: int) -> list:
    """The still's copy on ``channel`` and the moving region's RGBA strip (``files``) alpha-over it, above.

    Both or neither: if the second cannot be made, the first is removed again.
    """
    editor = scene.sequence_editor
    background = compat.strips(editor).new_image(name=f"{title} background", filepath=strip_io.key_image(still),
                                                 channel=channel, frame_start=start)
    try:
        compat.set_duration(background, len(files))
        for attribute in ("alpha_mode", "color_multiply", "color_saturation"):  # shown as the still is
            setattr(background, attribute, getattr(still, attribute))
        background.colorspace_settings.name = still.colorspace_settings.name
        moving = strip_io.add_image_sequence(scene, f"{title} moving", files, channel + 1, start)
    except Exception:
        compat.strips(editor).remove(background)
        raise
    moving.blend_type = "ALPHA_OVER"
    return [background, moving]


def prepare(scene, *, frames: int = 120, speed: float = 1.0, mask_strip: str = "", mask=None,
            motion_source: str = "HINTS", motion_model: str = "", dusk: float = 0.0,
            dusk_colour=(1.0, 0.55, 0.3), light_reference: str = "", endless: bool = False,
            seamless: bool = False, layers: bool = False, strip=None, output_dir: str = "",
            motion_only: bool = False, prompt: str = "", seed: int = 0, steps: int = 30, guidance: float = 5.0,
            farm: bool = False, context=None) -> job_runner.SceneJob:
    """Check the still, region and hints, create the job folder and start rendering the loop.

    ``motion_only`` draws the motion field as arrows over the still instead (the job's result
    is then that picture's path), so the motion can be checked before a long render.
    ``motion_source`` "LEARNED" predicts the motion with ``motion_model`` (default: the file
    placed in the weights folder); hints are then not needed, and without a region what moves
    is where the model sees motion. ``light_reference`` names an image strip whose colours the light
    moves towards, instead of ``dusk_colour``. ``endless`` makes a clip that never repeats (``seamless``: one
    that still ends where it starts); ``layers`` also lays the moving region, as its own RGBA strip,
    over an untouched copy of the still, on the two channels above the composite. ``motion_source``
    "GENERATIVE" has the generative model make the region's frames (``prompt``, ``seed``, ``steps``, ``guidance``).
    ``farm`` renders the frames as chunks on the Ray cluster set in the preferences.
    """
    values.check("frames", frames)
    values.check("speed", speed)
    values.check("dusk", dusk)
    values.check_colour(dusk_colour)
    values.check_generative(seed, steps, guidance)
    job_runner.refuse_if_busy(scene)
    if farm and (layers or motion_only or motion_source == "GENERATIVE"):
        raise strip_io.StripInputError("Run on Farm renders a loop's frames from its motion; the motion preview, "
                                       "Layers and generative loops are made on this machine. Turn Layers off to "
                                       "run on the farm")
    learned = motion_source in ("LEARNED", "GENERATIVE")  # both need no strokes
    model = bpy.path.abspath(motion_model) if motion_model else ""
    if model and not os.path.isfile(model):
        raise strip_io.StripInputError(f"The motion model {model} does not exist")
    still = strip or still_strip(scene)
    path = strip_io.key_image(still)
    width, height = image_size(still)
    polygons, strokes = mask_splines(mask, width, height) if mask is not None else ([], [])
    region = named_image(scene, mask_strip, "motion mask") if mask_strip else None
    if not strokes and not learned:
        raise strip_io.StripInputError(
            "Draw the motion first: in a Mask datablock over the still, draw open splines in the direction things "
            "should move (first point to last), and a closed spline (or a mask image strip) around what may move")
    if region is None and not polygons and not learned:
        raise strip_io.StripInputError(
            "Say what may move: a closed spline in the Mask, or a mask image strip (white moves, black stays)")
    off_still = points_outside(polygons + strokes, width, height)
    if off_still and off_still == sum(len(spline) for spline in polygons + strokes):
        raise strip_io.StripInputError(
            f"Every point of the Mask '{mask.name}' lies outside the {width}x{height} still. Draw it over this "
            "still (Image Editor, Mask mode, with the still as its image)")
    reference = named_image(scene, light_reference, "light reference") if light_reference and dusk > 0 else None
    title = f"{'Motion' if motion_only else 'Loop'} {still.name}"
    start = compat.left_handle(still)
    channel = strip_io.free_channel(scene.sequence_editor, start, start + frames, above=still.channel)
    layer_channel = free_channel_pair(scene.sequence_editor, start, start + frames, above=channel) if layers else 0
    root, temporary = (strip_io.preview_root(), True) if motion_only else strip_io.output_root(output_dir)
    folder = strip_io.new_job_folder(root, title)
    params = {
        "image": path, "mask": region, "mask_polygons": polygons or None, "hints": [], "strokes": strokes,
        "frames": frames, "speed": speed, "output_dir": folder, "prefix": "loop", "field_only": motion_only,
        "appearance": {"target_rgb": list(dusk_colour), "reference": reference, "strength": dusk} if dusk > 0 else None,
        "motion_source": WORKER_MOTION[motion_source], "motion_model": model,
        "endless": endless, "seamless": seamless, "layers": layers and not motion_only,
        "hub": job_runner.hub_settings(context),
    }
    if motion_source == "GENERATIVE":
        params.update(generative.params(context, prompt=prompt, seed=seed, steps=steps, guidance=guidance))

    def finish(job):
        if motion_only:  # a preview replaces the last one, files included
            strip_io.discard_preview(scene.frameweaver.loop_motion_preview)
            scene.frameweaver.loop_motion_preview = job.outputs[0]
            return job.outputs[0]
        composite = strip_io.add_image_sequence(scene, title, job.outputs, channel, start)
        if job.info.get("layers"):
            try:
                layered = add_layers(scene, title, still, job.info["layers"], layer_channel, start)
            except Exception:
                compat.strips(scene.sequence_editor).remove(composite)
                raise
            for part in layered:
                part.select = False
            composite.select, scene.sequence_editor.active_strip = True, composite
        return composite

    def warnings(job):
        return loop_warnings(job.info, mask.name if mask is not None else "", off_still, width, height)

    strip = {"timeline": list(range(frames)), "channel": channel, "frame_start": start} if farm else None
    return job_runner.start(scene, "loop", params, title, folder, temporary, finish, context, warnings, strip)


MOTION_MODEL_FILE = "loop_motion.safetensors"


def prepare_training(scene, *, clips: str, steps: int = 2000, output_dir: str = "",
                     context=None) -> job_runner.SceneJob:
    """Start training the loop motion predictor on a folder of clips (sub-folders of frames).

    The model is written to a fresh job folder, never over a file; once done, the scene's Loop
    settings switch to *Learned* motion with that model.
    """
    values.check("steps", steps)
    job_runner.refuse_if_busy(scene)
    folder_in = bpy.path.abspath(clips) if clips else ""
    if not folder_in or not os.path.isdir(folder_in):
        raise strip_io.StripInputError(
            f"Choose a folder of clips to learn motion from{f' ({folder_in} is not a folder)' if folder_in else ''}: "
            "each sub-folder holds one clip's frames as images")
    root, temporary = strip_io.output_root(output_dir)
    folder = strip_io.new_job_folder(root, "Motion model")
    model = os.path.join(folder, MOTION_MODEL_FILE)
    params = {"clips": folder_in, "out": model, "steps": steps, "hub": job_runner.hub_settings(context)}

    def finish(job):
        settings = scene.frameweaver
        settings.loop_motion_model, settings.loop_motion_source = job.outputs[0], "LEARNED"
        return job.outputs[0]

    return job_runner.start(scene, "loop_train", params, "Train motion model", folder, temporary, finish, context)


def train_motion_model(scene, **options) -> str:
    """Scripting API: train the loop motion predictor to the end; returns the model's path.

    Options are those of :func:`prepare_training`. Raises on bad input or a failed job.
    """
    return job_runner.run_sync(prepare_training(scene, **options), job_runner.print_progress)


def loop_still(scene, **options):
    """Scripting API: animate the selected (or given) still into a seamless loop; returns the new strip.

    Runs to the end in the calling thread, so it works under ``blender -b``.
    Options are those of :func:`prepare`. Raises on bad input or a failed job.
    """
    return job_runner.run_sync(prepare(scene, **options), job_runner.print_progress)


def preview_motion(scene, **options) -> str:
    """The motion field drawn over the still (a PNG path); also kept for the Loop panel."""
    return job_runner.run_sync(prepare(scene, motion_only=True, **options))
