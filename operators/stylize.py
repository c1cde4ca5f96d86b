"""Style propagation on the Blender side: footage, painted keyframes and mask in, one styled strip out.

A painted keyframe is a single-image strip on the channel just above the
footage, placed at the frame it stylizes. Used by the operators and by scripts
(``frameweaver.stylize_clip``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from . import compat, job_runner, strip_io
from ..nn import values

STOP_FILE = "stop-training"  # created in the job folder by "Stop & Propagate"
MODEL_FILE = "style_model.safetensors"


@dataclass(frozen=True)
class PaintedKey:
    strip_name: str
    index: int  # footage frame it stylizes, 0-based
    path: str


def is_footage(strip) -> bool:
    return strip.type == "MOVIE" or (strip.type == "IMAGE" and len(strip.elements) > 1)


def footage_strip(scene, name: str = ""):
    """The named footage strip, else the active one; an image sequence or a movie."""
    editor = scene.sequence_editor
    strip = compat.all_strips(editor).get(name) if name else editor.active_strip
    if strip is None:
        raise strip_io.StripInputError(
            f"No strip named '{name}'" if name else "Choose the footage strip (an image sequence or a movie)")
    if not is_footage(strip):
        raise strip_io.StripInputError(
            f"'{strip.name}' is not footage: choose an image sequence or a movie strip")
    return strip


def painted_keys(scene, footage, exclude=()) -> list[PaintedKey]:
    """Single-image strips on the channel just above ``footage``, each at the footage frame it starts on."""
    start, end = compat.left_handle(footage), compat.right_handle(footage)
    keys = []
    for strip in compat.all_strips(scene.sequence_editor):
        if strip.channel != footage.channel + 1 or strip.type != "IMAGE" or len(strip.elements) != 1:
            continue
        if strip.name in exclude:
            continue
        frame = compat.left_handle(strip)
        if not start <= frame < end:
            raise strip_io.StripInputError(
                f"Keyframe '{strip.name}' starts at frame {frame}, outside the footage (frames {start} to {end - 1}): "
                "it sits on no footage frame. Move it to the frame it paints.")
        keys.append(PaintedKey(strip.name, frame - start, strip_io.key_image(strip)))
    return sorted(keys, key=lambda key: key.index)


def mask_files(mask, footage) -> list[str | None]:
    """Per footage frame, the mask image shown at that frame (None where the mask strip has none)."""
    if mask.type != "IMAGE":
        raise strip_io.StripInputError(f"The mask '{mask.name}' must be an image or image-sequence strip")
    shown = dict(strip_io.image_frames(mask))
    return [shown.get(frame) for frame in range(compat.left_handle(footage), compat.right_handle(footage))]


def prepare(scene, *, footage: str = "", mask: str = "", seconds: float = 120.0, model_file: str = "",
            resume: bool = False, fit_sizes: bool = False, output_dir: str = "", farm: bool = False,
            context=None) -> job_runner.SceneJob:
    """Check footage, keyframes and mask, create the job folder and start training and propagation.

    ``farm`` applies a trained model (``model_file``, no ``resume``) as chunks on the Ray cluster set in
    the preferences; training runs on one machine.
    """
    values.check("seconds", seconds)
    job_runner.refuse_if_busy(scene)
    if farm and (not model_file or resume):
        raise strip_io.StripInputError("Run on Farm applies a trained model: train here first (Train & Propagate), "
                                       "then send Apply Model to the farm")
    source = footage_strip(scene, footage)
    mask_strip = compat.all_strips(scene.sequence_editor).get(mask) if mask else None
    if mask and mask_strip is None:
        raise strip_io.StripInputError(f"No mask strip named '{mask}'")
    keys = painted_keys(scene, source, exclude={mask})
    if not keys and not model_file:
        raise strip_io.StripInputError(
            f"No painted keyframes above '{source.name}': put each painted image on channel {source.channel + 1}, "
            "at the frame it paints")
    if model_file and not os.path.isfile(model_file):
        raise strip_io.StripInputError(f"The trained model is missing: {model_file}")
    title = f"Style {source.name}"
    start, end = compat.left_handle(source), compat.right_handle(source)
    above = max([source.channel] + [s.channel for s in compat.all_strips(scene.sequence_editor)
                                    if s.name in {k.strip_name for k in keys} | {mask}])
    channel = strip_io.free_channel(scene.sequence_editor, start, end, above=above)
    root, temporary = strip_io.output_root(output_dir)
    folder = strip_io.new_job_folder(root, title)
    try:
        frames = [path for _, path in strip_io.clip_frames(source, folder)]
        masks = mask_files(mask_strip, source) if mask_strip else None
    except Exception:
        strip_io.discard_job_folder(folder)
        raise
    current = scene.frame_current - start
    params = {
        "frames": frames, "keys": [{"index": k.index, "path": k.path} for k in keys], "masks": masks,
        "output_dir": folder, "prefix": "style", "seconds": seconds,
        "stop_file": os.path.join(folder, STOP_FILE), "model_file": model_file or None,
        "resume": bool(model_file and resume), "save_model": os.path.join(folder, MODEL_FILE),
        "preview_index": current if 0 <= current < len(frames) else (keys[0].index if keys else 0),
        "fit_sizes": fit_sizes, "hub": job_runner.hub_settings(context),
    }

    def finish(job):
        strip = strip_io.add_image_sequence(scene, title, job.outputs, channel, start)
        strip_io.discard_working_files(folder)
        if os.path.isfile(params["save_model"]):
            scene.frameweaver.style_model = params["save_model"]  # for Resume and for longer clips
        return strip

    def warnings(job):
        return "; ".join(job.info.get("notes", []))

    strip = {"timeline": list(range(len(frames))), "channel": channel, "frame_start": start} if farm else None
    return job_runner.start(scene, "stylize", params, title, folder, temporary, finish, context, warnings, strip)


def stop_training(job) -> bool:
    """Ask a running style job to stop training and propagate what it learned. False if not one."""
    stop_file = job.params.get("stop_file") if job and job.task == "stylize" and not job.finished else None
    if not stop_file:
        return False
    with open(stop_file, "a", encoding="utf-8"):
        pass
    return True


def stylize_clip(scene, **options):
    """Scripting API: learn the painted keyframes' look and stylize the footage; returns the new strip.

    Runs to the end in the calling thread, so it works under ``blender -b``.
    Options are those of :func:`prepare`. Raises on bad input or a failed job.
    """
    return job_runner.run_sync(prepare(scene, **options), job_runner.print_progress)
