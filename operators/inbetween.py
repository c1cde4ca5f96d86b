"""Generate Inbetweens on the Blender side: which frames to make, and the strip they become.

Used by the operator and by scripts (``frameweaver.generate_inbetweens``).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import compat, job_runner, strip_io

FRAME_MODES = [
    ("GAPS", "Fill Gaps", "Generate the empty frames between consecutive keyframes"),
    ("COUNT", "Fixed Count", "Generate a set number of frames after each keyframe"),
]

FLOW_SCALES = [
    ("0", "Auto", "Full resolution below 2K, half at 2K and above"),
    ("1.0", "Full", "Estimate motion at full resolution"),
    ("0.5", "Half", "Half resolution: better for large motion, a quarter of the memory"),
    ("0.25", "Quarter", "Quarter resolution: very large motion, 4K and 8K"),
]

MODELS = [
    ("rife-v4.25", "RIFE 4.25", "Practical-RIFE 4.25: any in-between time; best on real footage"),
    ("rife-hdv3", "RIFE HDv3", "ECCV2022-RIFE HDv3: sharp on clean renders; odd times by bisection"),
    ("blend", "Cross-fade", "No network: a plain dissolve between keyframes"),
]


@dataclass(frozen=True)
class Key:
    start: int  # first frame shown
    end: int  # one past the last frame shown


@dataclass
class Plan:
    """Unique frames to generate (key_a, key_b, t) and, per timeline frame, which one it shows."""

    frame_start: int
    frames: list[tuple[int, int, float]]
    timeline: list[int]


def plan_gaps(keys: list[Key], names: list[str]) -> Plan:
    """Fill the empty frames between consecutive keyframes; keys keep their holds.

    In a gap of n frames after key a, frame j (1..n) gets t = j / (n + 1),
    so each gap is timed on its own even when gaps differ.
    """
    frames, timeline = [], []
    for index, key in enumerate(keys):
        frames.append((index, index, 0.0))
        timeline += [len(frames) - 1] * (key.end - key.start)
        if index + 1 == len(keys):
            break
        gap = keys[index + 1].start - key.end
        if gap <= 0:
            raise strip_io.StripInputError(
                f"No empty frames between '{names[index]}' and '{names[index + 1]}'. "
                "Move them apart, or set a number of inbetweens instead of filling gaps."
            )
        for step in range(1, gap + 1):
            frames.append((index, index + 1, step / (gap + 1)))
            timeline.append(len(frames) - 1)
    return Plan(keys[0].start, frames, timeline)


def plan_count(keys: list[Key], count: int) -> Plan:
    """``count`` inbetweens after each keyframe, one frame each, from the first key on."""
    frames = []
    for index in range(len(keys)):
        frames.append((index, index, 0.0))
        if index + 1 < len(keys):
            frames += [(index, index + 1, step / (count + 1)) for step in range(1, count + 1)]
    return Plan(keys[0].start, frames, list(range(len(frames))))


def keyframe_strips(scene) -> list:
    selected = compat.selected_strips(scene)
    wrong = [s for s in selected if s.type != "IMAGE"]
    if wrong:
        raise strip_io.StripInputError(
            f"Only image strips can be keyframes; '{wrong[0].name}' is a {wrong[0].type.lower()} strip"
        )
    if len(selected) < 2:
        raise strip_io.StripInputError("Select at least two image strips as keyframes")
    return sorted(selected, key=compat.left_handle)


def prepare(scene, *, model: str = "rife-v4.25", mode: str = "GAPS", count: int = 3, fit_sizes: bool = False,
            flow_scale: float = 0.0, strips=None, output_dir: str = "", context=None) -> job_runner.SceneJob:
    """Validate the keyframes, create the job folder and start the worker."""
    key_strips = list(strips) if strips is not None else keyframe_strips(scene)
    if len(key_strips) < 2:
        raise strip_io.StripInputError("Select at least two image strips as keyframes")
    key_strips.sort(key=compat.left_handle)
    paths = [strip_io.key_image(s) for s in key_strips]
    names = [s.name for s in key_strips]
    keys = [Key(compat.left_handle(s), compat.right_handle(s)) for s in key_strips]
    plan = plan_count(keys, count) if mode == "COUNT" else plan_gaps(keys, names)

    title = f"Inbetweens {names[0]}–{names[-1]}"
    frame_end = plan.frame_start + len(plan.timeline)
    channel = strip_io.free_channel(scene.sequence_editor, plan.frame_start, frame_end,
                                    above=max(s.channel for s in key_strips))
    root, temporary = strip_io.output_root(output_dir)
    folder = strip_io.new_job_folder(root, f"inbetween_{names[0]}_{names[-1]}")
    params = {
        "keys": paths, "frames": plan.frames, "model": model, "fit_sizes": fit_sizes, "flow_scale": flow_scale,
        "hub": job_runner.hub_settings(context), "output_dir": folder, "prefix": "inbetween",
    }

    def finish(job):
        files = [job.outputs[i] for i in plan.timeline]
        return strip_io.add_image_sequence(scene, title, files, channel, plan.frame_start)

    return job_runner.start(scene, "inbetween", params, title, folder, temporary, finish, context)


def generate_inbetweens(scene, **options):
    """Scripting API: generate inbetweens for the selected (or given) keyframe strips; returns the new strip.

    Runs to the end in the calling thread, so it works under ``blender -b``.
    Options are those of :func:`prepare`. Raises on bad input or a failed job.
    """
    return job_runner.run_sync(prepare(scene, **options), job_runner.print_progress)
