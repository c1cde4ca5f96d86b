"""Running worker jobs for a scene: synchronously (scripts, ``blender -b``) or from a modal operator.

A feature prepares a ``SceneJob``: the worker job, the folder it writes to,
and a ``finish`` step that turns the outputs into a strip. Failure or cancel
removes the folder and touches nothing else, so no half-made strip remains.
"""
from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass
from typing import Callable

import bpy

from . import compat, farm_job, jobs, strip_io
from .ray_jobs import FarmUnavailable
from ..ui.preferences import addon_preferences, extension_dir


class JobFailed(RuntimeError):
    pass


def worker_runtime(context=None) -> jobs.WorkerRuntime:
    prefs = addon_preferences(context or bpy.context)
    python = bpy.path.abspath(prefs.python_path) if prefs and prefs.python_path else sys.executable
    # Install PyTorch puts packages built for Blender's own Python in deps/; on another Python (Worker Python,
    # often another version: Blender 5.1+ runs 3.13, studio installs 3.11) they would shadow its own torch.
    own_python = os.path.abspath(python) == os.path.abspath(sys.executable)
    return jobs.WorkerRuntime(
        python=python,
        extra_paths=(extension_dir("deps"),) if own_python else (),
        device=prefs.device.lower() if prefs else "auto",
        half=bool(prefs.use_half) if prefs else False,
        online=bool(bpy.app.online_access),
        token=(prefs.hf_token or None) if prefs else None,
        progress_timeout=prefs.worker_timeout if prefs else jobs.PROGRESS_TIMEOUT,
    )


def hub_settings(context=None) -> dict:
    """Where the worker finds weights, and whether it may download them (the token goes by environment)."""
    prefs = addon_preferences(context or bpy.context)
    cache = bpy.path.abspath(prefs.cache_dir) if prefs and prefs.cache_dir else extension_dir("hub")
    local = bpy.path.abspath(prefs.local_weights_dir) if prefs and prefs.local_weights_dir else extension_dir("weights")
    return {"cache_dir": cache, "local_dir": local, "online": bool(bpy.app.online_access),
            "pypi": bool(prefs.use_pypi) if prefs else True,
            "local_dir_setting": "the Local Weights folder, Preferences > Add-ons > Frameweaver",
            "online_setting": "allow online access (Preferences > System)"}


@dataclass(eq=False)  # identity: kept in a set of unfinished jobs
class SceneJob:
    scene: bpy.types.Scene
    job: jobs.Job  # or a DecodeThenRun, which stands in for one
    folder: str
    folder_is_temporary: bool
    finish: Callable[[jobs.Job], object]  # outputs -> the new strip
    warnings: Callable[[jobs.Job], str] | None = None  # what the user must know about a finished job
    on_farm: bool = False  # its record on the scene (Collect Farm Job) goes once it ends here

    def warning(self) -> str:
        return self.warnings(self.job) if self.warnings and self.job.state == jobs.Job.DONE else ""

    def complete(self):
        """Build the result after a successful job; on any error, leave nothing behind."""
        try:
            jobs.release(self.scene.as_pointer(), self.job)
            if self.on_farm:
                farm_job.forget(self.scene)
        except ReferenceError:  # the scene went with a file load, which already ended the job
            pass
        _unfinished.discard(self)
        if self.job.state != jobs.Job.DONE:
            strip_io.discard_job_folder(self.folder)
            if self.job.state == jobs.Job.CANCELLED:
                raise JobFailed(f"{self.job.title}: cancelled; nothing was changed")
            raise JobFailed(f"{self.job.title} failed: {self.job.error}")
        try:
            return self.finish(self.job)
        except Exception:
            strip_io.discard_job_folder(self.folder)
            raise

    def cancel(self) -> None:
        self.job.cancel()

    def where(self) -> str:
        kind = "a temporary folder (save the .blend to keep results beside it)" if self.folder_is_temporary else "folder"
        return f"Frames written to {kind}: {self.folder}"


def running_job(scene) -> jobs.Job | None:
    """The scene's job while it runs (None without a scene, a job, or once it has ended)."""
    job = jobs.active_job(scene.as_pointer()) if scene else None
    return job if job is not None and not job.finished else None


def refuse_if_busy(scene) -> None:
    """One job per scene: checked before a job makes any folder or decodes anything."""
    jobs.refuse_if_busy(scene.as_pointer())


class DecodeThenRun:
    """A worker job whose movies Blender decodes first, a few frames per ``poll``, on the main thread.

    bpy may only be used from the main thread, so decoding cannot move to a thread of its own;
    in small steps between polls it leaves Blender responsive, shows its progress, and stops
    at the next step on Cancel. The worker starts once every frame is on disk. Until then this
    stands in for the job (the same attributes); after, it follows it.
    """

    def __init__(self, decodes: list, start_worker: Callable[[], jobs.Job], title: str, task: str, params: dict):
        self.title, self.task, self.params = title, task, params
        self.state, self.fraction, self.preview = jobs.Job.RUNNING, 0.0, None
        self.message, self.error, self.traceback = "Decoding the movie…", None, None
        self.outputs, self.info, self.device = [], {}, None
        self._decodes, self._start_worker, self._job = decodes, start_worker, None

    @property
    def finished(self) -> bool:
        return self.state != jobs.Job.RUNNING

    @property
    def worker_pid(self) -> int | None:
        return self._job.worker_pid if self._job else None

    def poll(self) -> bool:
        if self._job is None and not self.finished:
            try:
                self._decode_a_step()
            except Exception as error:  # a full disk, an unreadable movie, a bad Worker Python
                self.state, self.error = jobs.Job.FAILED, str(error)
                self.message = self.error
                return False
        if self._job is not None:
            running = self._job.poll()
            for name in ("state", "fraction", "message", "preview", "outputs", "info", "error", "traceback", "device"):
                setattr(self, name, getattr(self._job, name))
            return running
        return not self.finished

    run_to_end = jobs.Job.run_to_end

    def _decode_a_step(self) -> None:
        pending = next((decode for decode in self._decodes if not decode.complete), None)
        if pending is None:
            self._job = self._start_worker()
            return
        pending.step()
        done, total = sum(d.decoded for d in self._decodes), sum(d.count for d in self._decodes)
        self.fraction, self.message = 0.0, f"Decoding the movie: frame {done} of {total}"

    def cancel(self, message: str = "Cancelled") -> None:
        if self._job is not None:
            self._job.cancel(message)
            self.state, self.message = self._job.state, self._job.message
        elif not self.finished:
            self.state, self.message = jobs.Job.CANCELLED, message


def farm_address(context=None) -> str:
    prefs = addon_preferences(context or bpy.context)
    return prefs.farm_address if prefs else ""


def start(scene, task: str, params: dict, title: str, folder: str, temporary: bool, finish, context=None,
          warnings=None, farm: dict | None = None) -> SceneJob:
    """Start ``task`` for ``scene``, refusing while another job runs in that scene.

    Movies planned for ``folder`` (``strip_io.clip_frames``) are decoded first, within the job.
    ``farm`` runs it on the Ray cluster of the preferences instead: what the strip needs
    ({"timeline", "channel", "frame_start"}), stored on the scene with the job's id.
    """
    runtime = worker_runtime(context)
    decodes = strip_io.take_decodes(folder)
    address = farm_address(context) if farm is not None else ""

    def on_farm() -> farm_job.FarmJob:
        job = farm_job.FarmJob(task, params, runtime, title, address, folder)
        farm_job.remember(scene, job, folder, farm)
        return job

    def new_job():
        start_worker = on_farm if farm is not None else lambda: jobs.Job(task, params, runtime, title)  # noqa: E731
        return DecodeThenRun(decodes, start_worker, title, task, params) if decodes else start_worker()

    try:
        job = jobs.claim(scene.as_pointer(), new_job)
    except (jobs.JobBusyError, jobs.WorkerStartError, FarmUnavailable, OSError):
        strip_io.discard_job_folder(folder)
        raise
    scene_job = SceneJob(scene, job, folder, temporary, finish, warnings, on_farm=farm is not None)
    if farm is None:  # a farm job goes on without Blender; a file load leaves it to Collect Farm Job
        _unfinished.add(scene_job)
    return scene_job


# Scene jobs not completed yet: a file load, quitting or unregistering must end their workers and remove
# their folders, because the modal operator that would have done it dies with the file.
_unfinished: set[SceneJob] = set()


def abandon_all(why: str) -> None:
    """Cancel every worker and remove every unfinished job's folder; no strip is made."""
    jobs.cancel_all(f"Cancelled: {why}")
    for scene_job in list(_unfinished):
        scene_job.job.cancel(f"Cancelled: {why}")  # also a job still decoding its movie
        strip_io.discard_job_folder(scene_job.folder)
    _unfinished.clear()
    jobs.release_all()


@bpy.app.handlers.persistent
def abandon_on_load(*_args) -> None:
    abandon_all("another file was loaded")


def register() -> None:
    bpy.app.handlers.load_pre.append(abandon_on_load)
    atexit.register(abandon_all, "Blender quit")
    atexit.register(strip_io.discard_all_previews)


def unregister() -> None:
    atexit.unregister(abandon_all)
    atexit.unregister(strip_io.discard_all_previews)
    if abandon_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(abandon_on_load)
    abandon_all("Frameweaver was disabled")
    strip_io.discard_all_previews()


def run_sync(scene_job: SceneJob, on_progress=None):
    """Run to the end and return the new strip (``blender -b`` and scripts); warnings go to stderr."""
    scene_job.job.run_to_end(on_progress)
    strip = scene_job.complete()
    if warning := scene_job.warning():
        print(f"[Frameweaver] Warning: {warning}", file=sys.stderr)
    return strip


def print_progress(job: jobs.Job) -> None:
    """Console progress for batch runs: one line whenever the message changes."""
    if getattr(job, "_printed", None) != job.message:
        job._printed = job.message
        print(f"[Frameweaver] {job.title}: {job.fraction * 100:5.1f}% {job.message}", file=sys.stderr)


class JobModalMixin:
    """Thin UI shell: start in ``invoke``, poll on a timer, finish once done.

    Background mode never runs modal operators, so ``execute`` runs the same
    job to the end synchronously.
    """

    @classmethod
    def poll(cls, context):
        return compat.has_sequencer(context)

    def prepare(self, context) -> SceneJob:
        raise NotImplementedError

    def execute(self, context):
        try:
            scene_job = self.prepare(context)
            strip = run_sync(scene_job, print_progress)
        except Exception as error:  # the user sees every failure as a message, never a traceback
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        return self.report_created(strip, scene_job)

    def report_created(self, result, scene_job: SceneJob) -> set:
        if warning := scene_job.warning():
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, self.created_message(result, scene_job))
        return {"FINISHED"}

    def created_message(self, strip, scene_job: SceneJob) -> str:
        """What the finished job made; operators whose result is not a strip say it their way."""
        return f"Created '{strip.name}'. {scene_job.where()}"

    def invoke(self, context, event):
        try:
            self._scene_job = self.prepare(context)
        except Exception as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        scene_job = self._scene_job
        if event.type == "ESC":
            scene_job.cancel()
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        running = scene_job.job.poll()
        context.window_manager.progress_update(int(scene_job.job.fraction * 100))
        for area in context.screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()
        if running:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        try:
            strip = scene_job.complete()
        except Exception as error:
            self.report({"WARNING"} if scene_job.job.state == jobs.Job.CANCELLED else {"ERROR"}, str(error))
            return {"CANCELLED"}
        return self.report_created(strip, scene_job)


def follow(job: jobs.Job, on_end: Callable[[jobs.Job], None]) -> None:
    """Call ``on_end`` once ``job`` ends: polled by a timer in the UI, at once in background mode."""
    if bpy.app.background:
        on_end(job.run_to_end())
        return

    def tick():
        if job.poll():
            return 0.25
        on_end(job)
        return None

    bpy.app.timers.register(tick, first_interval=0.25)
