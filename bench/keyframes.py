"""Keyframes far apart (issue 10): every inbetween against its true frame, all methods in one run.

    python bench/keyframes.py [--clips objects camera cel demo bbb antoni cottonbro koolshooters lynx]
                              [--gaps 2 4 6 8 12 16] [--methods rife-v4.25 rife-hdv3 ffmpeg blend NAME ...]
                              [--limit N | --quick] [--max-side PX] [--threads 1] [--shared DIR] [--weights-dir DIR] [--json FILE]

Clips, each a fixed window from its first frame (keys every k frames, k = each gap size it offers):
- rendered shots (scripts/render_shots.py, rendered into bench/cache/shots/ when missing), 49 frames at
  960x540 RGBA, k = 6, 8, 12, 16: ``objects``, ``camera``, ``cel``; and ``demo``, the demo's 480x270
  keys (6 frames apart, 3 keys) with their true in-betweens;
- real footage (../shared/data), frames 0..32, k = 2, 4, 8, 16: ``bbb`` (Big Buck Bunny, 1280x720),
  the three Pexels clips ``antoni``, ``cottonbro``, ``koolshooters``, and ``lynx`` (style/lynx/frames).
A window holds every gap of k frames that fits; ``--limit N`` keeps its first N gaps (``--quick``: 1).
``--max-side PX`` scales every frame down (area filter) so its longer side is at most PX, and the shots' tracks
with it: a reduced run for a slow machine, to be stated beside its figures.

Measures per clip and k, the mean over every inbetween of the window (../shared/data/README.md):
- PSNR and SSIM on 8-bit RGB; RGBA frames are scored premultiplied (over black);
- alpha error: mean |alpha - true alpha| in 0..255 (RGBA shots);
- timing error (rendered shots): each inbetween is searched along the exact screen paths of tracked
  points (object centres, a blade tip; ``tracks.json``) for the time whose window around the path best
  matches the true frame's window; the error is |found time - true time| / k, mean and worst inbetween;
- spacing error (rendered shots), the issue's wording of timing: the object as the true frame shows it is
  found in the inbetween, and its progress along the chord between its places on the two keys is compared
  with t, |progress - t|, mean and worst inbetween (even spacing scores 0; the "true frames" row is what the
  real motion scores, as a curved or accelerating path is not even along its chord);
- warping error: the sequence key, inbetweens, key, ... with flow of the true frames (our RIFE flow,
  forward-backward check at 1 px), mean |O_t - warp(O_t+1)| in 0..255, at --stability-width (the true
  frames' own figure is the "true frames" row);
- ms per inbetween, and its ratio to RIFE v4.25 per t in the same run.

Rows: any model that ``nn.inbetween.task.load_model`` knows (``rife-v4.25`` and ``rife-hdv3`` per t, ``blend``
the cross-fade, ``keymotion``, ``auto``, ``generative`` with --generative-dir on a GPU, or a new method's name)
and ``ffmpeg`` (minterpolate at k times the keys' rate). A model with ``inbetween(keys, times, is_float)``, or
one that sees whole gaps (Auto, generative), gets every key of the window at once; others are called per t.
The ``auto`` row adds "unexpl", the mean share of each gap's change that Key Motion's motion leaves
unexplained, and "hard", the share of gaps over ``UNEXPLAINED_LIMIT`` (Auto gives those to the generative model).
HDv3 bisects towards each t from the same keys, so midpoints are estimated once per gap (the same frames as
per-t calls; its time is that of the gap's distinct midpoints).
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: the CPU is shared
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from measures import consistent_flows, decode_movie, ffmpeg_interpolate, pair_errors, psnr, ssim, to8  # noqa: E402
from nn import hub  # noqa: E402
from nn.imageio import ImageFormat, read_image, write_image  # noqa: E402
from nn.motion.flow import Flow  # noqa: E402
from nn.inbetween.auto import UNEXPLAINED_LIMIT, Auto  # noqa: E402
from nn.inbetween.task import load_model, needs_sequence, sequence_for  # noqa: E402
from nn.worker import TaskContext, TaskError  # noqa: E402

SHARED = ROOT.parent / "shared"
SHOTS = ROOT / "bench" / "cache" / "shots"
RENDERED_GAPS, FOOTAGE_GAPS = (6, 8, 12, 16), (2, 4, 8, 16)
FOOTAGE_FRAMES = 33  # frames 0..32: two gaps of 16
TIMING_SEARCH = 0.25  # the search runs this far (fraction of the gap) beyond each key
TIMING_MIN_TRAVEL = 8.0  # px: a track that moves less over the gap says nothing about timing
AMBIGUITY = 1.1  # local minima this close to the best are the same picture (a pendulum's way back)
LINE_SHARE = 0.5  # spacing is scored on a track whose key-to-key chord is at least this share of its reach


@dataclass(frozen=True)
class Clip:
    name: str
    gaps: tuple[int, ...]
    frames: int
    footage: str = ""  # a movie (decoded by ffmpeg) or a folder of images under ../shared/data; "": a shot

    @property
    def rendered(self) -> bool:
        return not self.footage


CLIPS = {clip.name: clip for clip in [
    Clip("objects", RENDERED_GAPS, 49),
    Clip("camera", RENDERED_GAPS, 49),
    Clip("cel", RENDERED_GAPS, 49),
    Clip("demo", (6,), 13),
    Clip("bbb", FOOTAGE_GAPS, FOOTAGE_FRAMES, "video/bigbuckbunny.mp4"),
    Clip("antoni", FOOTAGE_GAPS, FOOTAGE_FRAMES, "video/pexels/pexels-antoni-shkraba-8048492-540x960-25fps.mp4"),
    Clip("cottonbro", FOOTAGE_GAPS, FOOTAGE_FRAMES, "video/pexels/pexels-cottonbro-studio-6649832-960x506-25fps.mp4"),
    Clip("koolshooters", FOOTAGE_GAPS, FOOTAGE_FRAMES, "video/pexels/pexels-koolshooters-7322716.mp4"),
    Clip("lynx", FOOTAGE_GAPS, FOOTAGE_FRAMES, "style/lynx/frames"),
]}


def frame_paths(clip: Clip, data: Path, workdir: str) -> list[Path]:
    """The clip's frames in order, rendering a missing shot or decoding a movie first."""
    if clip.rendered:
        folder = SHOTS / clip.name
        if not (folder / "tracks.json").is_file():
            subprocess.run([sys.executable, str(ROOT / "scripts" / "render_shots.py"), "--shots", clip.name],
                           check=True)
    else:
        folder = data / clip.footage
        if folder.is_file():
            return decode_movie(folder, os.path.join(workdir, clip.name), clip.frames)[:clip.frames]
    return sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))[:clip.frames]


def load_frame(path: Path) -> torch.Tensor:
    return torch.from_numpy(read_image(str(path))[0]).permute(2, 0, 1)[None]  # (1, C, H, W)


def display(frame: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) what is scored: RGB, premultiplied by alpha when there is one (RGBA over black)."""
    return frame[:, :3] * frame[:, 3:4] if frame.shape[1] == 4 else frame[:, :3]


def alpha_error(frame: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean |alpha - true alpha| in 0..255."""
    return float((frame[:, 3] - truth[:, 3]).abs().mean() * 255)


def timing_error(frame: np.ndarray, truth: np.ndarray, tracks: list[dict], substeps: int, time: int,
                 gap: tuple[int, int], min_travel: float = TIMING_MIN_TRAVEL) -> float | None:
    """|found - true time| / gap length for an inbetween at frame ``time`` of the gap (first, last), or None.

    ``frame`` and ``truth`` are (H, W, C) pictures; each track is {"path": [[x, y], ...] per 1/substeps frame,
    "radius": px}. Per track, the truth's window around the track's true position is compared with the
    inbetween's window around each position of the path from TIMING_SEARCH of the gap before the first key
    to as far after the last; the found time is the local minimum of the squared difference nearest the
    true time among those within AMBIGUITY of the best (where the picture repeats, it cannot tell them apart).
    The error is the mean over tracks that move at least ``min_travel`` px within the gap.
    """
    first, last = gap
    span = last - first
    height, width = truth.shape[:2]
    errors = []
    for track in tracks:
        path, r = np.asarray(track["path"]), int(track["radius"])
        steps = np.arange(max(0, round((first - TIMING_SEARCH * span) * substeps)),
                          min(len(path) - 1, round((last + TIMING_SEARCH * span) * substeps)) + 1)
        inside = lambda p: r <= p[0] < width - r and r <= p[1] < height - r  # noqa: E731
        centre = path[time * substeps]
        gap_path = path[first * substeps:last * substeps + 1]
        if not inside(centre) or np.max(np.linalg.norm(gap_path - gap_path[0], axis=1)) < min_travel:
            continue
        window = lambda image, p: image[int(p[1]) - r:int(p[1]) + r + 1, int(p[0]) - r:int(p[0]) + r + 1]  # noqa: E731
        target = window(truth, centre)
        costs = np.array([np.mean((window(frame, path[s]) - target) ** 2) if inside(path[s]) else np.inf
                          for s in steps])
        if not np.isfinite(costs).any():
            continue
        padded = np.concatenate([[np.inf], costs, [np.inf]])
        minima = np.flatnonzero((costs <= padded[:-2]) & (costs <= padded[2:]) & np.isfinite(costs))
        best = costs[minima].min()
        candidates = steps[minima[costs[minima] <= best * AMBIGUITY + 1e-12]]
        found = candidates[np.argmin(np.abs(candidates - time * substeps))] / substeps
        errors.append(abs(found - time) / span)
    return float(np.mean(errors)) if errors else None


def spacing_error(frame: np.ndarray, truth: np.ndarray, tracks: list[dict], substeps: int, time: int,
                  gap: tuple[int, int], min_travel: float = TIMING_MIN_TRAVEL) -> float | None:
    """The issue's timing error, "how far each inbetween's motion is from t times the gap's true motion, as a
    fraction of the gap": |progress - t| for an inbetween at frame ``time`` of the gap (first, last), or None.

    Per track, the object as the truth shows it then (its window around the true position) is found in the
    inbetween by least squared difference over every position within the box of the gap's true path and
    chord, grown by TIMING_SEARCH of the chord; its progress is its offset from the track's place on the first
    key along the chord to its place on the last, (P - A) . (B - A) / |B - A|^2, and t = (time - first) / span.
    Unlike ``timing_error`` (the true time along the true path), this scores spacing alone: evenly spaced
    inbetweens score 0 on a curved path too, a hold t and a pop 1 - t. Mean over the tracks that travel at
    least ``min_travel`` px and whose window fits the frame.
    """
    first, last = gap
    t = (time - first) / (last - first)
    height, width = truth.shape[:2]
    image, picture = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1)[None]
                      for x in (frame, truth))
    errors = []
    for track in tracks:
        path, r = np.asarray(track["path"]), int(track["radius"])
        start, end, centre = path[first * substeps], path[last * substeps], path[time * substeps]
        chord = end - start
        travel = float(np.linalg.norm(chord))
        inside = lambda p: r <= p[0] < width - r and r <= p[1] < height - r  # noqa: E731
        gap_path = path[first * substeps:last * substeps + 1]  # holds both keys' places, so the chord too
        excursion = float(np.max(np.linalg.norm(gap_path - start, axis=1)))
        if travel < max(min_travel, LINE_SHARE * excursion) or not inside(centre):
            continue  # too short to time, or a path that comes back (a swing): t times its motion is no place
        reach = TIMING_SEARCH * travel
        x0, y0 = np.floor(gap_path.min(0) - reach).astype(int)
        x1, y1 = np.ceil(gap_path.max(0) + reach).astype(int)
        x0, y0, x1, y1 = max(x0, r), max(y0, r), min(x1, width - r - 1), min(y1, height - r - 1)
        if x0 > x1 or y0 > y1:
            continue
        cx, cy = int(centre[0]), int(centre[1])
        template = picture[..., cy - r:cy + r + 1, cx - r:cx + r + 1]  # (1, C, 2r + 1, 2r + 1): the object then
        region = image[..., y0 - r:y1 + r + 1, x0 - r:x1 + r + 1]  # every window centred in the box
        row, column = best_match(region, template)
        found = np.array([x0 + column, y0 + row], dtype=float)
        progress = float(np.dot(found - start, chord)) / travel ** 2
        errors.append(abs(progress - t))
    return float(np.mean(errors)) if errors else None


def best_match(region: torch.Tensor, template: torch.Tensor) -> tuple[int, int]:
    """Top-left (row, column) of the window of ``region`` (1, C, H, W) least different from ``template``
    (1, C, h, w) in squared difference: searched on copies pooled to about 16 px templates, then refined
    at full size around the coarse answer."""
    size = template.shape[-1]
    factor = max(1, size // 16)

    def costs(image, kernel):  # (rows, columns) of sum (I - T)^2 less the constant sum T^2
        return (F.conv2d(image.pow(2).sum(1, keepdim=True), torch.ones_like(kernel[:, :1]))
                - 2 * F.conv2d(image, kernel))[0, 0]

    coarse = costs(F.avg_pool2d(region, factor), F.avg_pool2d(template, factor))
    row, column = divmod(int(coarse.argmin()), coarse.shape[1])
    last_row, last_column = region.shape[-2] - template.shape[-2], region.shape[-1] - size
    top, left = min(max(row * factor - factor, 0), last_row), min(max(column * factor - factor, 0), last_column)
    bottom, right = min(row * factor + factor, last_row), min(column * factor + factor, last_column)
    fine = costs(region[..., top:bottom + template.shape[-2], left:right + size], template)
    row, column = divmod(int(fine.argmin()), fine.shape[1])
    return top + row, left + column


class SharedMidpoints:
    """A midpoint-only model (HDv3) per t, with the midpoints that its bisections towards the t of one gap
    share estimated once: the same frames as one call per t, fewer network runs."""

    def __init__(self, model):
        self.model, self.cache = model, {}
        self.estimate = model.interpolator.estimate
        model.interpolator.estimate = self.cached_estimate

    def cached_estimate(self, img0, img1, t, flow_scale=1.0):
        digest = lambda x: hashlib.blake2b(x.contiguous().numpy().tobytes(), digest_size=16).digest()  # noqa: E731
        key = (digest(img0), digest(img1), t, flow_scale)
        if key not in self.cache:
            self.cache[key] = self.estimate(img0, img1, t, flow_scale)
        return self.cache[key]

    def inbetween(self, keys, times, is_float):
        frames = []
        for g, ts in enumerate(times):
            self.cache.clear()
            frames += inbetweens(self.model, keys[g:g + 2], [ts], is_float)
        self.cache.clear()
        return frames


class FfmpegMinterpolate:
    """ffmpeg minterpolate at k times the keys' rate, on RGB (alpha is not interpolated): even times only."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        os.makedirs(workdir)

    def inbetween(self, keys, times, is_float):
        factor = len(times[0]) + 1
        if any(list(ts) != [j / factor for j in range(1, factor)] for ts in times):
            raise ValueError("ffmpeg minterpolate makes evenly timed frames only")
        paths = []
        for index, key in enumerate(keys):
            paths.append(Path(self.workdir) / f"key_{index:03d}.png")
            write_image(str(paths[-1]), display(key)[0].permute(1, 2, 0).numpy(), ImageFormat(".png", "uint8", 3))
        # The first and last keys are given twice, as PEERS.md runs it: output i shows time i / factor - 1.
        frames = ffmpeg_interpolate([paths[0], *paths, paths[-1]], factor, self.workdir)
        as_tensor = lambda i: torch.from_numpy(frames[i][..., :3]).permute(2, 0, 1)[None]  # noqa: E731
        return [[as_tensor((g + 1) * factor + j) for j in range(1, factor)] for g in range(len(times))]


def inbetweens(model, keys: list[torch.Tensor], times: list[list[float]], is_float: bool = False):
    """Frames per gap: the model's own ``inbetween`` when it has one, the add-on's sequence through every key
    for the models that see whole gaps (Auto, generative), else one call per t."""
    if hasattr(model, "inbetween"):
        return model.inbetween(keys, times, is_float)
    if needs_sequence(model):
        gaps = {(g, g + 1): len(ts) + 1.0 for g, ts in enumerate(times)}
        sequence = sequence_for(model, keys.__getitem__, is_float, gaps)
        return [[sequence.frame(g, g + 1, t) for t in ts] for g, ts in enumerate(times)]
    return [[model(keys[g], keys[g + 1], t, is_float) for t in ts] for g, ts in enumerate(times)]


def load_methods(names: list[str], weights_dir: str, device, workdir: str, generative_dir: str = "") -> dict:
    """Rows by name, as the add-on's defaults load them; their scratch files go under ``workdir``. The
    generative model runs from ``generative_dir`` (or the weights folder) on a GPU; without it, its row is skipped."""
    ctx = TaskContext(device, False)
    settings = {"cache_dir": os.path.join(workdir, "hub"), "local_dir": weights_dir, "online": False}
    methods = {}
    for name in names:
        if name == "ffmpeg":
            if not shutil.which("ffmpeg"):
                sys.exit("ffmpeg is not installed (apt-get install ffmpeg), or leave it out of --methods")
            methods[name] = FfmpegMinterpolate(os.path.join(workdir, "ffmpeg"))
            continue
        try:  # Flow Scale Auto, as users get it
            model = load_model({"model": name, "hub": settings, "model_dir": generative_dir}, ctx)
        except TaskError as error:
            print(f"Row {name} not measured: {error}", file=sys.stderr)
            continue
        interpolator = getattr(model, "interpolator", None)
        methods[name] = model if interpolator is None or interpolator.spec.time_conditioned else SharedMidpoints(model)
    return methods


def windows(clip: Clip, limit: int) -> dict[int, list[int]]:
    """Key frame indices per gap size k: every k-th frame of the clip, at most ``limit`` gaps (0: all)."""
    out = {}
    for k in clip.gaps:
        count = (clip.frames - 1) // k
        out[k] = [k * i for i in range((min(count, limit) if limit else count) + 1)]
    return out


def shrink(frame: torch.Tensor, width: int) -> torch.Tensor:
    if not width or frame.shape[-1] <= width:
        return frame
    return F.interpolate(frame, size=(round(frame.shape[-2] * width / frame.shape[-1]), width), mode="area")


def side_scale(frame: torch.Tensor, max_side: int) -> float:
    """The factor that brings the frame's longer side down to ``max_side`` (1: no change or 0)."""
    return min(1.0, max_side / max(frame.shape[-2:])) if max_side else 1.0


def scaled_tracks(tracks: dict, scale: float) -> dict:
    """``tracks.json`` for frames scaled by ``scale``: paths and window radii in the scaled pixels."""
    return {**tracks, "tracks": [{**t, "path": (np.asarray(t["path"]) * scale).tolist(),
                                  "radius": max(1, round(t["radius"] * scale))} for t in tracks["tracks"]]}


def run_clip(clip: Clip, methods: dict, gaps: list[int], limit: int, flow, stability_width: int, data: Path,
             workdir: str, max_side: int = 0):
    paths = frame_paths(clip, data, workdir)
    frames = [load_frame(p) for p in paths]
    width = frames[0].shape[-1]
    target = round(width * side_scale(frames[0], max_side))
    if target < width:
        frames = [shrink(f, target) for f in frames]
    scale = target / width
    rgba = frames[0].shape[1] == 4
    tracks = json.loads((SHOTS / clip.name / "tracks.json").read_text()) if clip.rendered else None
    if tracks and scale < 1.0:
        tracks = scaled_tracks(tracks, scale)
    plans = {k: keys for k, keys in windows(clip, limit).items() if k in gaps}
    last = max((keys[-1] for keys in plans.values()), default=0)
    flows = consistent_flows([shrink(display(f), stability_width) for f in frames[:last + 1]], flow) if flow else []
    table = {}
    for k, keys in plans.items():
        truths = frames[keys[0]:keys[-1] + 1]
        rows, truth_row = {}, {}
        if flows:
            truth_row["warp_error"] = float(np.mean(
                pair_errors([shrink(display(f), stability_width) for f in truths], flows[:len(truths) - 1])))
        if tracks:  # what the real motion scores: how far from even along each gap's chord it is itself
            spacing = [spacing_error(to8(display(frames[i])), to8(display(frames[i])), tracks["tracks"],
                                     tracks["substeps"], i, (a, b), TIMING_MIN_TRAVEL * scale)
                       for a, b in zip(keys, keys[1:]) for i in range(a + 1, b)]
            truth_row.update(mean_and_worst([e for e in spacing if e is not None], "spacing"))
        if truth_row:
            rows["true frames"] = truth_row
        times = [[j / k for j in range(1, k)] for _ in keys[:-1]]
        for name, model in methods.items():
            if isinstance(model, Auto):
                model.shares.clear()  # its gaps are numbered from each window's first key
            start = time.perf_counter()
            with torch.inference_mode():
                made = inbetweens(model, [frames[i] for i in keys], times)
            seconds = time.perf_counter() - start
            sequence, scores = [], {"psnr": [], "ssim": [], "alpha": [], "timing": [], "spacing": []}
            for g, gap_frames in enumerate(made):
                sequence.append(frames[keys[g]])
                for j, out in enumerate(gap_frames, start=1):
                    index = keys[g] + j
                    truth = frames[index]
                    a, b = to8(display(out)), to8(display(truth))
                    scores["psnr"].append(psnr(a, b))
                    scores["ssim"].append(ssim(a, b))
                    if rgba and out.shape[1] == 4:
                        scores["alpha"].append(alpha_error(out, truth))
                    for measure, score in ((("timing", timing_error), ("spacing", spacing_error)) if tracks else ()):
                        error = score(a, b, tracks["tracks"], tracks["substeps"], index, (keys[g], keys[g + 1]),
                                      TIMING_MIN_TRAVEL * scale)
                        if error is not None:
                            scores[measure].append(error)
                    sequence.append(out)
            sequence.append(frames[keys[-1]])
            count = len(scores["psnr"])
            row = {"psnr": float(np.mean(scores["psnr"])), "ssim": float(np.mean(scores["ssim"])),
                   "ms": seconds * 1000 / count, "n": count}
            if scores["alpha"]:
                row["alpha_error"] = float(np.mean(scores["alpha"]))
            row.update(mean_and_worst(scores["timing"], "timing"))
            row.update(mean_and_worst(scores["spacing"], "spacing"))
            if flows:
                row["warp_error"] = float(np.mean(pair_errors([shrink(display(f), stability_width) for f in sequence],
                                                              flows[:len(sequence) - 1])))
            if isinstance(model, Auto):  # how much of each gap's change its motion leaves unexplained
                shares = [model.shares[g, g + 1] for g in range(len(keys) - 1)]
                row["unexplained"] = float(np.mean(shares))
                row["hard_gaps"] = float(np.mean([share > UNEXPLAINED_LIMIT for share in shares]))
                row["gap_psnr"] = [float(np.mean(scores["psnr"][g * (k - 1):(g + 1) * (k - 1)]))
                                   for g in range(len(keys) - 1)]
                row["gap_unexplained"] = shares
            rows[name] = row
            print(f"  {clip.name} k={k} {name}: {row['psnr']:.2f} dB, {row['ms']:.0f} ms", file=sys.stderr, flush=True)
        reference = rows.get("rife-v4.25", {}).get("ms")
        for row in rows.values():
            if reference and "ms" in row:
                row["time_ratio"] = row["ms"] / reference
        table[str(k)] = rows
    return table


def mean_and_worst(errors: list[float], measure: str) -> dict:
    """{"<measure>_error": mean, "<measure>_worst": largest} over the inbetweens scored ({} when none was)."""
    return {f"{measure}_error": float(np.mean(errors)), f"{measure}_worst": max(errors)} if errors else {}


def print_table(table):
    cell = lambda row, key, spec: format(row[key], spec) if key in row else "-"  # noqa: E731
    for clip, per_gap in table.items():
        for k, rows in per_gap.items():
            print(f"\n{clip}, keys every {k} frames")
            print(f"{'method':18s} {'PSNR':>6s} {'SSIM':>6s} {'alpha':>6s} {'timing':>6s} {'worst':>6s} "
                  f"{'spacing':>7s} {'worst':>6s} {'warp':>6s} {'ms':>7s} {'x v4.25':>7s} {'n':>4s} "
                  f"{'unexpl':>6s} {'hard':>5s}")
            for name, r in rows.items():
                print(f"{name:18s} {cell(r, 'psnr', '6.2f'):>6s} {cell(r, 'ssim', '6.3f'):>6s} "
                      f"{cell(r, 'alpha_error', '6.2f'):>6s} {cell(r, 'timing_error', '6.3f'):>6s} "
                      f"{cell(r, 'timing_worst', '6.3f'):>6s} {cell(r, 'spacing_error', '7.3f'):>7s} "
                      f"{cell(r, 'spacing_worst', '6.3f'):>6s} {cell(r, 'warp_error', '6.2f'):>6s} "
                      f"{cell(r, 'ms', '7.0f'):>7s} {cell(r, 'time_ratio', '7.2f'):>7s} {cell(r, 'n', '4d'):>4s} "
                      f"{cell(r, 'unexplained', '6.3f'):>6s} {cell(r, 'hard_gaps', '5.2f'):>5s}")


def measure(args, shared: Path, device, workdir: str) -> dict:
    """Every row on every clip of ``args``: {clip: {k: {method: figures}}}."""
    methods = load_methods(args.methods, args.weights_dir, device, workdir, args.generative_dir)
    flow = None
    if args.stability_width:
        settings = hub.HubSettings(cache_dir=os.path.join(workdir, "hub"), local_dir=args.weights_dir, online=False)
        flow = Flow.load(settings, device, half=False)
    table = {}
    for name in args.clips:
        clip = CLIPS[name]
        if not clip.rendered and not (shared / "data" / clip.footage).exists():
            print(f"Skipping {name}: {shared / 'data' / clip.footage} is missing", file=sys.stderr)
            continue
        table[name] = run_clip(clip, methods, args.gaps, 1 if args.quick else args.limit, flow,
                               args.stability_width, shared / "data", workdir, args.max_side)
        if args.json:  # after every clip, so a long run that is stopped keeps what it measured
            Path(args.json).write_text(json.dumps(table, indent=2))
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--gaps", type=int, nargs="+", default=[2, 4, 6, 8, 12, 16],
                        help="key spacings to run, of those each clip offers")
    parser.add_argument("--methods", nargs="+", default=["rife-v4.25", "rife-hdv3", "ffmpeg", "blend"],
                        help="rows: ffmpeg, or any name nn.inbetween.task.load_model knows")
    parser.add_argument("--limit", type=int, default=0, help="at most N gaps per clip and spacing (0: all)")
    parser.add_argument("--quick", action="store_true", help="the same as --limit 1")
    parser.add_argument("--max-side", type=int, default=0,
                        help="scale frames down so the longer side is at most this many pixels (0: as they are)")
    parser.add_argument("--stability-width", type=int, default=320,
                        help="warping error on frames scaled down to this width (0: no warping error)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    parser.add_argument("--shared", default=str(SHARED), help="the measurement data folder (data/, weights/)")
    parser.add_argument("--weights-dir", help="<model>/<file> checkpoints (default: SHARED/weights)")
    parser.add_argument("--json", help="also write {clip: {k: {method: measures}}}")
    parser.add_argument("--generative-dir", default="", help="a Wan2.1 VACE pipeline folder for the generative "
                        "and auto rows (default: the weights folder's wan2.1-vace-1.3b/; a CUDA GPU is needed)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shared = Path(args.shared)
    args.weights_dir = args.weights_dir or str(shared / "weights")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    workdir = tempfile.mkdtemp(prefix="bench-keyframes-")
    try:
        table = measure(args, shared, device, workdir)
    finally:  # decoded frames and scratch files go, even when a run is stopped
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(table)


if __name__ == "__main__":
    main()
