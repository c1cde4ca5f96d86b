"""Frames in and out of the Sequencer: the files behind strips, and new result strips."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field

import bpy

from ..nn import files
from . import compat


class StripInputError(ValueError):
    """The selection cannot be used; the message says why, for the user."""


def image_path(strip, element) -> str:
    return os.path.normpath(bpy.path.abspath(os.path.join(strip.directory, element.filename), library=strip.id_data.library))


def image_frames(strip) -> list[tuple[int, str]]:
    """(scene frame, file) for every frame an IMAGE strip shows, in timeline order."""
    if strip.type != "IMAGE":
        raise StripInputError(f"'{strip.name}' is a {strip.type.lower()} strip, not an image strip")
    frames = []
    for frame in range(compat.left_handle(strip), compat.right_handle(strip)):
        element = strip.strip_elem_from_frame(frame)
        if element is not None:
            frames.append((frame, image_path(strip, element)))
    return frames


def key_image(strip) -> str:
    """The file of a keyframe strip: the image it shows at its first frame, which must exist."""
    frames = image_frames(strip)
    if not frames:
        raise StripInputError(f"'{strip.name}' shows no image")
    path = frames[0][1]
    if not os.path.isfile(path):
        raise StripInputError(f"The image of '{strip.name}' is missing: {path}")
    return path


DECODE_CHUNK = 2  # movie frames decoded per step: at 1080p a step stays well under a second
# Decoded 16-bit PNGs of camera footage rarely come out below three quarters of their raw size (noise
# does not compress), so that is what the free-space check asks for.
DECODED_SHARE = 0.75


@dataclass
class MovieDecode:
    """A movie strip's frames rendered by Blender's own decoder to 16-bit PNGs, a few per ``step``.

    OpenImageIO in the worker cannot decode movies, so Blender does it, through a throwaway
    scene that holds only this movie. Everything needed is copied from the strip when planned,
    so a step never touches the user's strips, and stepping can stop at any point (cancel).
    """

    movie: str  # the movie file
    strip_start: int  # the strip's frame_start, where the movie's first frame sits
    first: int  # the first scene frame shown
    end: int  # one past the last
    fps: int
    fps_base: float
    width: int
    height: int
    folder: str
    frames: list[tuple[int, str]] = field(default_factory=list)  # (scene frame, PNG), planned in advance
    decoded: int = 0

    @classmethod
    def plan(cls, strip, folder: str) -> "MovieDecode":
        """What decoding ``strip`` into ``folder`` takes; refuses a missing movie and a disk without room."""
        if strip.type != "MOVIE":
            raise StripInputError(f"'{strip.name}' is a {strip.type.lower()} strip, not a movie strip")
        path = bpy.path.abspath(strip.filepath)
        if not os.path.isfile(path):
            raise StripInputError(f"The movie of '{strip.name}' is missing: {path}")
        source = strip.id_data
        element = strip.elements[0] if len(strip.elements) else None
        decode = cls(
            movie=path, strip_start=round(compat.content_start(strip)), first=compat.left_handle(strip),
            end=compat.right_handle(strip), fps=source.render.fps, fps_base=source.render.fps_base,
            width=element.orig_width if element and element.orig_width else source.render.resolution_x,
            height=element.orig_height if element and element.orig_height else source.render.resolution_y,
            folder=folder,
        )
        decode.check_space(strip.name)
        with decode._extract_scene() as scene:
            decode.frames = [(frame, scene.render.frame_path(frame=frame)) for frame in range(decode.first, decode.end)]
        return decode

    @property
    def count(self) -> int:
        return self.end - self.first

    @property
    def complete(self) -> bool:
        return self.decoded >= self.count

    def needed_bytes(self) -> int:
        return int(self.width * self.height * 3 * 2 * self.count * DECODED_SHARE)

    def check_space(self, name: str) -> None:
        needed, free = self.needed_bytes(), files.free_bytes(self.folder)
        if free is not None and free < needed:
            raise StripInputError(
                f"Decoding '{name}' ({self.count} frames, {self.width}x{self.height}) needs about "
                f"{files.size_text(needed)} in {self.folder}, but only {files.size_text(free)} are free. Free some space, "
                "or choose another output folder")

    def step(self) -> None:
        """Decode the next few frames; a frame that did not land on disk (a full disk) raises."""
        start = self.first + self.decoded
        stop = min(start + DECODE_CHUNK, self.end)
        with self._extract_scene() as scene:
            # An animation render: a still render of a scene that is not the context's comes out black.
            scene.frame_start, scene.frame_end = start, stop - 1
            bpy.ops.render.render(animation=True, scene=scene.name)
        for _, path in self.frames[self.decoded:stop - self.first]:
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                raise files.write_failed(path, "Blender could not write the decoded frame",
                                         needed=self.needed_bytes() // max(self.count, 1))
        self.decoded = stop - self.first

    @contextmanager
    def _extract_scene(self):
        scene = bpy.data.scenes.new("Frameweaver movie extract")
        try:
            editor = scene.sequence_editor_create()
            compat.strips(editor).new_movie(name="extract", filepath=self.movie, channel=1, frame_start=self.strip_start)
            render = scene.render
            render.fps, render.fps_base = self.fps, self.fps_base
            render.resolution_x, render.resolution_y, render.resolution_percentage = self.width, self.height, 100
            render.use_sequencer = True
            scene.view_settings.view_transform = "Standard"  # no AgX tone mapping on plain footage
            settings = render.image_settings
            settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGB", "16"
            render.filepath = os.path.join(self.folder, "movie_######")
            yield scene
        finally:
            bpy.data.scenes.remove(scene)


def movie_frames(strip, folder: str) -> list[tuple[int, str]]:
    """Decode every frame a MOVIE strip shows to 16-bit PNGs in ``folder`` at once (timeline order)."""
    decode = MovieDecode.plan(strip, folder)
    while not decode.complete:
        decode.step()
    return decode.frames


DECODED_FOLDER = "decoded"  # inside a job folder: movie frames decoded for the worker
PREVIEWS_FOLDER = "previews"  # inside a job folder: the worker's previews while it trains (nn/stylize/task.py)
FARM_FOLDER = "farm"  # the spec of a job run on the farm (operators/farm_job.py)
PREVIEW_PREFIX = "frameweaver-preview-"  # private temp folders of throwaway previews (Preview Motion)

# Job folder -> the movies its job must decode before its worker starts (see job_runner.start).
_pending_decodes: dict[str, list[MovieDecode]] = {}


def clip_frames(strip, job_folder: str) -> list[tuple[int, str]]:
    """(scene frame, file) for every frame an image-sequence or movie strip shows, in timeline order.

    A movie is only planned here: its frames are decoded into ``job_folder``/decoded step by
    step once the job runs (``take_decodes``), so Blender stays responsive and Cancel works.
    For image sequences every image must exist.
    """
    if strip.type == "MOVIE":
        folder = os.path.join(job_folder, DECODED_FOLDER)
        os.makedirs(folder, exist_ok=True)
        decode = MovieDecode.plan(strip, folder)
        _pending_decodes.setdefault(job_folder, []).append(decode)
        return decode.frames
    frames = image_frames(strip)
    if missing := [path for _, path in frames if not os.path.isfile(path)]:
        raise StripInputError(f"'{strip.name}' has {len(missing)} missing images, first {missing[0]}")
    return frames


def take_decodes(job_folder: str) -> list[MovieDecode]:
    """The movies planned for ``job_folder`` that its job must decode first (handed over once)."""
    return _pending_decodes.pop(job_folder, [])


def discard_working_files(job_folder: str) -> None:
    """Remove decoded movie frames, training previews and a farm job's spec once the result strip no longer needs them."""
    for name in (DECODED_FOLDER, PREVIEWS_FOLDER, FARM_FOLDER):
        shutil.rmtree(os.path.join(job_folder, name), ignore_errors=True)


def preview_root() -> str:
    """A new private temp folder for a throwaway preview (see ``discard_preview``)."""
    root = tempfile.mkdtemp(prefix=PREVIEW_PREFIX)
    _made_roots.add(root)
    return root


def discard_preview(path: str) -> None:
    """Remove the private temp folder of an earlier preview; any other path is left alone."""
    root = os.path.dirname(os.path.dirname(path)) if path else ""
    if os.path.basename(root).startswith(PREVIEW_PREFIX) and os.path.dirname(root) == tempfile.gettempdir():
        shutil.rmtree(root, ignore_errors=True)


def discard_all_previews() -> None:
    """Remove every preview folder this session made (quit, disable): a preview never outlives Blender."""
    for root in [r for r in _made_roots if os.path.basename(r).startswith(PREVIEW_PREFIX)]:
        shutil.rmtree(root, ignore_errors=True)
        _made_roots.discard(root)


def output_root(chosen: str = "") -> tuple[str, bool]:
    """The chosen folder, else ``//frameweaver`` beside the saved .blend, else a new private temp folder.

    Also says whether the folder is temporary (the user is told so). The temp folder is made
    here, readable by this user only, so nobody else on the machine can plant files or links in it.
    """
    if chosen:
        return bpy.path.abspath(chosen), False
    if bpy.data.filepath:
        return bpy.path.abspath("//frameweaver"), False
    root = tempfile.mkdtemp(prefix="frameweaver-")
    _made_roots.add(root)
    return root, True


# Output roots a job created (the temp folder, or //frameweaver on first use): removed again when the
# job that made them fails, so a failure leaves no empty folder behind.
_made_roots: set[str] = set()


def new_job_folder(root: str, job_name: str) -> str:
    """Create a fresh, empty folder ``root/<job_name>[_N]``; never reuse an existing one."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", job_name).strip("._") or "job"
    try:
        if not os.path.isdir(root):
            os.makedirs(root)
            _made_roots.add(root)
        for suffix in range(1, 10000):
            folder = os.path.join(root, safe if suffix == 1 else f"{safe}_{suffix}")
            try:
                os.mkdir(folder)
                return folder
            except FileExistsError:
                continue
    except OSError as error:
        raise StripInputError(
            f"Cannot write generated frames to {root}: {error.strerror or error}. "
            "Save the .blend somewhere writable, or choose another output folder."
        ) from error
    raise StripInputError(f"Too many earlier results in {root}; clean some up")


def discard_job_folder(folder: str) -> None:
    """Remove a folder this job created, after a failure or a cancel; and its root, if a job made it and it is empty."""
    _pending_decodes.pop(folder, None)
    shutil.rmtree(folder, ignore_errors=True)
    root = os.path.dirname(folder)
    if root in _made_roots:
        try:
            os.rmdir(root)  # only if empty: other results may live there
            _made_roots.discard(root)
        except OSError:
            pass


def free_channel(editor, frame_start: int, frame_end: int, above: int) -> int:
    """Lowest channel above ``above`` with nothing in [frame_start, frame_end)."""
    busy = {
        s.channel for s in compat.strips(editor)
        if compat.left_handle(s) < frame_end and compat.right_handle(s) > frame_start
    }
    channel = above + 1
    while channel in busy:
        channel += 1
    if channel > 128:
        raise StripInputError("No free channel above the selected strips")
    return channel


def add_image_sequence(scene, name: str, files: list[str], channel: int, frame_start: int):
    """One new image-sequence strip showing ``files`` (one per frame), selected and active.

    Files must share a folder. If anything fails midway, the half-made strip is removed.
    """
    if not files:
        raise StripInputError("The job reported no frames")
    if missing := [path for path in files if not os.path.isfile(path)]:
        raise StripInputError(f"The job reported frames it did not write ({missing[0]})")
    editor = scene.sequence_editor_create()
    folder = os.path.dirname(files[0])
    strip = compat.strips(editor).new_image(name=name, filepath=files[0], channel=channel, frame_start=frame_start)
    try:
        for path in files[1:]:
            if os.path.dirname(path) != folder:
                raise StripInputError("Generated frames must share one folder")
            strip.elements.append(os.path.basename(path))
        if bpy.data.filepath:
            strip.directory = bpy.path.relpath(folder) + os.sep
        for other in compat.selected_strips(scene):
            other.select = False
        strip.select = True
        editor.active_strip = strip
    except Exception:
        compat.strips(editor).remove(strip)
        raise
    return strip
