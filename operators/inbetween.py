"""Generate Inbetweens on the Blender side: which frames to make, and the strip they become.

Used by the operator and by scripts (``frameweaver.generate_inbetweens``).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import compat, generative, guides, job_runner, strip_io
from ..nn import values
from .loop import image_size
from .timing import curve_points, gap_timings, retime_frames

FRAME_MODES = [
    ("GAPS", "Fill Gaps", "Generate the empty frames between consecutive keyframes"),
    ("COUNT", "Fixed Count", "Generate a set number of frames after each keyframe"),
    ("RETIME", "Retime Clip", "Raise the frame rate of one image-sequence or movie strip"),
]

RETIME_RATES = [
    ("2", "×2", "Twice the frames: smooth half-speed slow motion, or double frame rate"),
    ("4", "×4", "Four times the frames"),
    ("8", "×8", "Eight times the frames"),
    ("FPS", "Target FPS", "As many frames as the target frame rate needs for the same duration"),
]

CUT_MODES = [
    ("HOLD", "Hold", "At a scene cut, hold the last frame of one shot, then the first of the next"),
    ("BLEND", "Cross-fade", "At a scene cut, cross-fade between the shots"),
    ("IGNORE", "Morph Anyway", "No cut detection: always interpolate motion (very different keyframes)"),
]

FLOW_SCALES = [
    ("0", "Auto", "Full resolution below 2K, half at 2K and above"),
    ("1.0", "Full", "Estimate motion at full resolution"),
    ("0.5", "Half", "Half resolution: better for large motion, a quarter of the memory"),
    ("0.25", "Quarter", "Quarter resolution: very large motion, 4K and 8K"),
]

GUIDED_MODELS = {"keymotion", "auto"}  # the models that follow guide strokes (Auto: in the gaps Key Motion makes)

MODELS = [
    ("auto", "Auto", "Key Motion, and the generative model for the gaps that motion cannot explain (turns, "
                     "occlusion, redrawn poses) when it is installed and a GPU is present"),
    ("rife-v4.25", "RIFE 4.25", "Practical-RIFE 4.25: any in-between time; best on real footage"),
    ("rife-hdv3", "RIFE HDv3", "ECCV2022-RIFE HDv3: sharp on clean renders; odd times by bisection"),
    ("keymotion", "Key Motion", "One motion per gap, splatted: moves across large gaps evenly; follows guide strokes"),
    ("generative", "Generative", "Wan2.1 VACE video diffusion through all the keys: draws what motion cannot "
                                 "explain (turns, occlusion, redrawn poses). Needs a CUDA GPU and its weights"),
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


def plan_retime(frame_start: int, source_frames: int, ratio: float) -> Plan:
    """``ratio`` output frames per source frame, the last source frame held to fill the duration.

    Output frame j shows source position j / ratio, so the clip keeps its length
    in time once played at ``ratio`` times the rate.
    """
    count = max(round(source_frames * ratio), 1)
    frames = []
    for j in range(count):
        position = min(j / ratio, source_frames - 1)
        index = int(position)
        frames.append((index, min(index + 1, source_frames - 1), position - index))
    return Plan(frame_start, frames, list(range(count)))


def retime_strip(scene):
    """The one selected image-sequence or movie strip to retime."""
    selected = compat.selected_strips(scene)
    if len(selected) != 1:
        raise strip_io.StripInputError("Select exactly one image-sequence or movie strip to retime")
    strip = selected[0]
    if strip.type not in {"IMAGE", "MOVIE"}:
        raise strip_io.StripInputError(
            f"Only image sequences and movies can be retimed; '{strip.name}' is a {strip.type.lower()} strip")
    if compat.right_handle(strip) - compat.left_handle(strip) < 2:
        raise strip_io.StripInputError(f"'{strip.name}' shows a single frame; there is no motion to retime")
    return strip


def retime_ratio(scene, rate: str, target_fps: float) -> float:
    if rate != "FPS":
        return float(rate)
    scene_fps = scene.render.fps / scene.render.fps_base
    if target_fps <= scene_fps:
        raise strip_io.StripInputError(
            f"Target {target_fps:g} fps is not above the scene's {scene_fps:g} fps; there is nothing to add")
    return target_fps / scene_fps


def cut_warning(info: dict, names: list[str]) -> str:
    """What the user must know about detected cuts and repeated frames ('' when none)."""
    if info.get("all_identical"):
        return "All keyframes are identical: wrote holds"
    parts = []
    if info.get("cuts"):
        pairs = ", ".join(f"'{names[a]}' → '{names[b]}'" for a, b in info["cuts"][:3])
        more = f" and {len(info['cuts']) - 3} more" if len(info["cuts"]) > 3 else ""
        parts.append(f"Scene cut between {pairs}{more}: not morphed")
    if info.get("repeated_frames"):
        parts.append(f"{info['repeated_frames']} repeated frames were timed over, not duplicated")
    return ". ".join(parts)


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


def prepare(scene, *, model: str = "auto", mode: str = "GAPS", count: int = 3, fit_sizes: bool = False,
            flow_scale: float = 0.0, high_quality: bool = False, cuts: str = "HOLD", retime_rate: str = "2",
            target_fps: float = 60.0, dedupe: bool = True, timing: str = "EVEN", timing_curve=None, strips=None,
            output_dir: str = "", prompt: str = "", seed: int = 0, steps: int = 30, guidance: float = 5.0,
            farm: bool = False, context=None) -> job_runner.SceneJob:
    """Validate the input strips, create the job folder and start the worker.

    ``timing`` spaces the inbetweens of every gap whose first key strip says "As All Gaps" (its
    Frameweaver timing); "CUSTOM" follows ``timing_curve``: (x, y) points or a node group made by
    Add Timing Curve. Keys' Guide Masks become guide point pairs (operators/guides.py). ``prompt``, ``seed``,
    ``steps`` and ``guidance`` are the generative model's. ``farm`` runs the job's chunks on the Ray cluster
    set in the preferences (the output folder must be one every node sees).
    """
    values.check("count", count)
    values.check("target_fps", target_fps)
    values.check_flow_scale(flow_scale)
    values.check_generative(seed, steps, guidance)
    if timing_curve is not None and not hasattr(timing_curve, "nodes"):  # points; a node group is sampled
        values.check_curve_points(timing_curve)
    job_runner.refuse_if_busy(scene)
    if mode == "RETIME" and model == "generative":
        raise strip_io.StripInputError("The generative model makes frames between keyframes; to retime a clip, use "
                                       "RIFE 4.25 or Key Motion")
    if mode == "RETIME":
        source = strips[0] if strips else retime_strip(scene)
        ratio = retime_ratio(scene, retime_rate, target_fps)
        title, inputs = f"Retime {source.name}", [source]
    else:
        inputs = sorted(strips if strips is not None else keyframe_strips(scene), key=compat.left_handle)
        if len(inputs) < 2:
            raise strip_io.StripInputError("Select at least two image strips as keyframes")
        pointers = [s.as_pointer() for s in inputs]
        if twice := next((s for s, p in zip(inputs, pointers) if pointers.count(p) > 1), None):
            raise strip_io.StripInputError(f"'{twice.name}' is given more than once; give each keyframe strip once")
        title = f"Inbetweens {inputs[0].name}–{inputs[-1].name}"
    root, temporary = strip_io.output_root(output_dir)
    folder = strip_io.new_job_folder(root, title.replace("–", "_"))
    try:
        if mode == "RETIME":
            frames = strip_io.clip_frames(source, folder)
            names, paths = [f"frame {frame}" for frame, _ in frames], [path for _, path in frames]
            plan, guide_pairs = plan_retime(compat.left_handle(source), len(paths), ratio), {}
        else:
            names, paths = [s.name for s in inputs], [strip_io.key_image(s) for s in inputs]
            keys = [Key(compat.left_handle(s), compat.right_handle(s)) for s in inputs]
            plan = plan_count(keys, count) if mode == "COUNT" else plan_gaps(keys, names)
            gaps = [timing if s.frameweaver.timing == "ALL" else s.frameweaver.timing for s in inputs[:-1]]
            plan.frames = retime_frames(plan.frames, gap_timings(gaps, curve_points(timing_curve)))
            guide_pairs = guides.key_guides([(s.name, s.frameweaver.guide_mask, image_size(s)) for s in inputs])
        channel = strip_io.free_channel(scene.sequence_editor, plan.frame_start, plan.frame_start + len(plan.timeline),
                                        above=max(s.channel for s in inputs))
    except Exception:
        strip_io.discard_job_folder(folder)
        raise
    params = {
        "keys": paths, "frames": plan.frames, "model": model, "fit_sizes": fit_sizes, "flow_scale": flow_scale,
        "high_quality": high_quality, "cuts": cuts, "clip": mode == "RETIME", "dedupe": mode == "RETIME" and dedupe,
        "hub": job_runner.hub_settings(context), "output_dir": folder, "prefix": "inbetween",
        "guides": guide_pairs,
    }
    if model in ("generative", "auto"):
        params.update(generative.params(context, prompt=prompt, seed=seed, steps=steps, guidance=guidance))

    def finish(job):
        files = [job.outputs[i] for i in plan.timeline]
        strip = strip_io.add_image_sequence(scene, title, files, channel, plan.frame_start)
        strip_io.discard_working_files(folder)
        return strip

    model_label = next((label for name, label, _ in MODELS if name == model), model)
    ignored_guides = guide_pairs and model not in GUIDED_MODELS
    guide_note = f"Guide strokes are followed by Key Motion only; {model_label} ignored them" if ignored_guides else ""

    def warnings(job):
        notes = (cut_warning(job.info, names), guide_note, *job.info.get("notes", []))
        return ". ".join(note for note in notes if note)

    strip = {"timeline": plan.timeline, "channel": channel, "frame_start": plan.frame_start} if farm else None
    return job_runner.start(scene, "inbetween", params, title, folder, temporary, finish, context, warnings, strip)


def generate_inbetweens(scene, **options):
    """Scripting API: generate inbetweens for the selected (or given) keyframe strips; returns the new strip.

    Runs to the end in the calling thread, so it works under ``blender -b``.
    Options are those of :func:`prepare`. Raises on bad input or a failed job.
    """
    return job_runner.run_sync(prepare(scene, **options), job_runner.print_progress)
