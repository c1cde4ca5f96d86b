"""Worker jobs: heavy work runs in a subprocess that reports in JSON lines.

A ``Job`` is a plain object. The UI polls it from a modal operator; scripts,
``blender -b`` and tests call ``run_to_end()``. Nothing here imports bpy or
torch, so a CUDA crash or a leak in the worker cannot take Blender down, and
killing the worker frees its GPU memory.

Protocol (one JSON object per stdout line of ``python -m nn.worker SPEC``):
``start`` {device, torch}, ``progress`` {fraction, message, preview?},
``heartbeat`` {} (every few seconds, from a thread of the worker), ``done`` {count},
``error`` {message, traceback}. ``done``'s outputs (``count`` paths) and info are in the file
``result.json`` beside the spec, so no line grows with the job's length. A message may share its
line with other output; anything else on stdout is ignored.
"""
from __future__ import annotations

import errno
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from ..nn import files
from ..nn.worker import OUT_OF_MEMORY, RESULT_NAME

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Seconds. The worker says it is alive every HEARTBEAT_SECONDS (nn/worker.py); a worker silent for
# SILENCE_TIMEOUT is hung (stopped, deadlocked in C, swapping to death) and is stopped.
SILENCE_TIMEOUT = 60.0
# Without any progress for this long a job is stopped too; 0 waits for ever. A batch run must end,
# and no task goes this long between two progress reports (the slowest, an 8K frame pair, takes minutes).
PROGRESS_TIMEOUT = 1800.0
EXIT_GRACE = 2.0  # after the worker exits, how long a grandchild holding its stdout may delay the end
MAX_LINE = 1 << 20  # bytes; protocol lines are short, so a longer line is noise and is dropped
WORKER_KILLED = -9  # SIGKILL: the OOM killer, or someone else


@dataclass
class WorkerRuntime:
    """How to start a worker: which Python, which extra import paths, which device, how long to wait."""

    python: str = sys.executable
    extra_paths: tuple[str, ...] = ()  # PyTorch deps folder, Blender's OpenImageIO folder
    device: str = "auto"
    half: bool = False
    online: bool = False  # bpy.app.online_access: when off, the worker's libraries are told so too
    token: str | None = None  # the Hub token goes through the environment, never into a file
    silence_timeout: float = SILENCE_TIMEOUT
    progress_timeout: float = PROGRESS_TIMEOUT

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONNOUSERSITE"] = "1"  # user-site packages are a classic source of torch clashes
        env["PYTHONUNBUFFERED"] = "1"
        # OpenMP threads that spin while waiting made a CPU training step 10-50x slower whenever
        # another process kept a core busy (docs/BENCHMARKS.md, style propagation); it must be set
        # before torch starts, so it is set here. A user's own setting wins.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if self.online:
            if self.token:
                env["HF_TOKEN"] = self.token
        else:
            env.update(OFFLINE_ENVIRONMENT)
        paths = [EXTENSION_ROOT, *self.extra_paths]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env


# Online access off: every library the worker uses must stay off the network, telemetry included.
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_OFFLINE": "1",
                       "HF_DATASETS_OFFLINE": "1", "DO_NOT_TRACK": "1"}


class LineProcess:
    """A subprocess whose stdout lines a thread collects, so polling never blocks.

    stdout is read as bytes and split on newlines here, so nothing a process prints
    (bytes that are not UTF-8, a line of gigabytes, no final newline) can stop the reader.
    stderr goes to ``log_path`` so a crash can be explained from its tail. The process
    runs in its own process group, so a kill also ends any children it started.
    """

    def __init__(self, argv: list[str], env: dict[str, str], log_path: str, cwd: str | None = None):
        self.log_path = log_path
        self._lines: queue.Queue[str] = queue.Queue()
        self._exited_at: float | None = None
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                bufsize=0, start_new_session=os.name == "posix",
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream, pending, dropping = self._proc.stdout, b"", False
        while block := stream.read(1 << 16):
            *complete, pending = (pending + block).split(b"\n")
            for line in complete:
                if not dropping:
                    self._put(line)
                dropping = False
            if len(pending) > MAX_LINE:
                pending, dropping = b"", True
        if pending and not dropping:
            self._put(pending)  # an unterminated last line still counts
        stream.close()

    def _put(self, line: bytes) -> None:
        if len(line) <= MAX_LINE:
            self._lines.put(line.decode("utf-8", "replace").rstrip("\r"))

    def new_lines(self) -> list[str]:
        lines = []
        while True:
            try:
                lines.append(self._lines.get_nowait())
            except queue.Empty:
                return lines

    @property
    def finished(self) -> bool:
        """True once the process exited and every line it printed was collected.

        A grandchild that inherited stdout can keep the pipe open after the worker
        exits; such a pipe is given ``EXIT_GRACE`` seconds, then no longer waited for.
        """
        if self._proc.poll() is None:
            return False
        if self._exited_at is None:
            self._exited_at = time.monotonic()
        return not self._reader.is_alive() or time.monotonic() - self._exited_at > EXIT_GRACE

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def kill(self) -> None:
        """Kill the process and its group at once; never waits long (Cancel must not freeze Blender)."""
        if os.name == "posix":
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)  # the group outlives its leader while children run
            except (ProcessLookupError, PermissionError):
                pass
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass  # unkillable (a process stuck in the kernel): nothing more can be done from here
        self._reader.join(timeout=0.5)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - chars))
                return log.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""


class JobBusyError(RuntimeError):
    pass


class WorkerStartError(RuntimeError):
    """The worker process could not be started (a bad Worker Python, no space for its scratch)."""


def start_error(error: OSError, python: str) -> WorkerStartError:
    """Why a worker could not start: a full disk under the system temp folder (its scratch), else the Python."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        temp = tempfile.gettempdir()
        free = files.free_bytes(temp)
        return WorkerStartError(
            f"The disk is full: the job's scratch files cannot be written in the system temp folder {temp} "
            f"({files.size_text(free or 0)} free). Free some space on that disk, or start Blender with TMPDIR set "
            "to a folder on another disk")
    return WorkerStartError(f"Cannot start the worker with {python}: {error.strerror or error}. "
                            "Check Worker Python in Preferences > Add-ons > Frameweaver")


class Job:
    """One run of a worker task, from start to done, error or cancel."""

    RUNNING, DONE, FAILED, CANCELLED = "RUNNING", "DONE", "FAILED", "CANCELLED"

    def __init__(self, task: str, params: dict, runtime: WorkerRuntime, title: str = ""):
        self.task = task
        self.params = params
        self.runtime = runtime
        self.title = title or task
        self.state = self.RUNNING
        self.fraction = 0.0
        self.message = "Starting worker…"
        self.preview: str | None = None
        self.device: str | None = None
        self.torch_version: str | None = None
        self.outputs: list[str] = []
        self.info: dict = {}
        self.error: str | None = None
        self.traceback: str | None = None
        try:
            self._scratch = tempfile.mkdtemp(prefix="frameweaver-job-")
        except OSError as error:
            raise start_error(error, runtime.python) from error
        try:
            spec_path = os.path.join(self._scratch, "spec.json")
            with open(spec_path, "w", encoding="utf-8") as f:
                json.dump({"task": task, "device": runtime.device, "half": runtime.half, "params": params}, f)
            self._process = LineProcess(
                [runtime.python, "-m", "nn.worker", spec_path],
                env=runtime.environment(),
                log_path=os.path.join(self._scratch, "worker.log"),
                cwd=EXTENSION_ROOT,
            )
        except OSError as error:  # a bad Worker Python, or no space for the spec: nothing may stay behind
            shutil.rmtree(self._scratch, ignore_errors=True)
            raise start_error(error, runtime.python) from error
        self._heard_at = self._progressed_at = time.monotonic()
        _live_jobs.add(self)

    @property
    def finished(self) -> bool:
        return self.state != self.RUNNING

    @property
    def worker_pid(self) -> int:
        return self._process.pid

    def poll(self) -> bool:
        """Read what the worker reported since the last call. Returns True while running.

        Never raises: whatever goes wrong ends the job as FAILED, with the worker stopped
        and its scratch folder removed.
        """
        if self.finished:
            return False
        try:
            exited = self._process.finished  # read before draining, so no line is missed
            for line in self._process.new_lines():
                if not self.finished:
                    self._handle(line)
            if not self.finished and exited:
                self._fail(self._crash_message(), self._process.log_tail())
            if not self.finished:
                self._check_timeouts()
        except Exception as error:  # a bug here must not leak the worker, the scratch or the caller's modal
            self._fail(f"Internal error while reading the worker ({type(error).__name__}): {error}", None)
        if self.finished:
            self._close()
        return not self.finished

    def run_to_end(self, on_progress=None, interval: float = 0.05) -> "Job":
        """Block until the job ends (batch scripts, ``blender -b``, tests); the timeouts bound the wait."""
        while self.poll():
            if on_progress:
                on_progress(self)
            time.sleep(interval)
        return self

    def cancel(self, message: str = "Cancelled") -> None:
        if self.finished:
            return
        self.state = self.CANCELLED
        self.message = message
        self._close()

    def _handle(self, line: str) -> None:
        event = protocol_event(line)
        if event is None:
            return  # stray prints from libraries are not protocol lines
        kind = event["event"]
        self._heard_at = time.monotonic()
        if kind in ("start", "progress", "done"):
            self._progressed_at = self._heard_at
        try:
            self._apply(kind, event)
        except (TypeError, ValueError, AttributeError) as error:
            if kind in ("done", "error"):  # an ending that cannot be read must still end the job
                self._fail(f"The worker sent a malformed '{kind}' message ({error})", line[:2000])
            # a malformed progress report is skipped; the next one will do

    def _apply(self, kind: str, event: dict) -> None:
        if kind == "start":
            self.device, self.torch_version = str(event.get("device")), str(event.get("torch"))
            self.message = f"Running on {self.device}"
        elif kind == "progress":
            fraction = float(event.get("fraction", self.fraction))
            message = str(event.get("message", self.message))
            preview = event.get("preview")
            if preview is not None and not isinstance(preview, str):
                raise TypeError(f"preview must be a path, not {type(preview).__name__}")
            self.fraction, self.message = min(max(fraction, 0.0), 1.0), message
            self.preview = preview or self.preview
        elif kind == "done":
            self.outputs, self.info = self._result(event.get("count"))
            self.fraction, self.message, self.state = 1.0, "Done", self.DONE
        elif kind == "error":
            traceback = event.get("traceback")
            self._fail(str(event.get("message", "Unknown error")), traceback if isinstance(traceback, str) else None)

    def _result(self, count) -> tuple[list[str], dict]:
        """The outputs and info the worker wrote to its result file; ``count`` is how many outputs it says."""
        if not isinstance(count, int):
            raise TypeError("count must be a whole number")
        try:
            with open(os.path.join(self._scratch, RESULT_NAME), "rb") as f:
                result = json.loads(f.read())
        except OSError as error:
            raise ValueError(f"its result file cannot be read: {error.strerror or error}") from error
        outputs, info = result.get("outputs"), result.get("info")
        if not isinstance(outputs, list) or not all(isinstance(p, str) for p in outputs):
            raise TypeError("outputs must be a list of paths")
        if not isinstance(info, dict):
            raise TypeError("info must be an object")
        if len(outputs) != count:
            raise ValueError(f"it names {count} outputs but its result file holds {len(outputs)}")
        return outputs, info

    def _check_timeouts(self) -> None:
        now, runtime = time.monotonic(), self.runtime
        if runtime.silence_timeout and now - self._heard_at > runtime.silence_timeout:
            self._fail(f"The worker stopped responding (nothing heard for {runtime.silence_timeout:g} s), so it "
                       "was stopped. Nothing was changed.", self._process.log_tail())
        elif runtime.progress_timeout and now - self._progressed_at > runtime.progress_timeout:
            self._fail(f"The worker made no progress for {runtime.progress_timeout:g} s, so it was stopped. "
                       "Nothing was changed. Raise Worker Timeout in Preferences > Add-ons > Frameweaver if a "
                       "step of this job needs longer.", self._process.log_tail())

    def _fail(self, message: str, traceback: str | None) -> None:
        self.state, self.error, self.traceback = self.FAILED, message, traceback
        self.message = message

    def _crash_message(self) -> str:
        code = self._process.returncode
        if code == WORKER_KILLED:
            return (f"The worker process stopped unexpectedly (exit code {code}). It was killed, most likely "
                    f"because the system ran out of memory. {OUT_OF_MEMORY}")
        tail = self._process.log_tail(600)
        last = tail.splitlines()[-1] if tail else "no output"
        return f"The worker process stopped unexpectedly (exit code {code}): {last}"

    def _close(self) -> None:
        self._process.kill()  # also ends anything the worker started
        shutil.rmtree(self._scratch, ignore_errors=True)
        _live_jobs.discard(self)


def protocol_event(line: str) -> dict | None:
    """The protocol message in ``line``, also when other output shares the line (an unterminated print)."""
    at = line.find('{"event"')
    if at < 0:
        return None
    try:
        event, _ = json.JSONDecoder().raw_decode(line, at)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


# Every job whose worker may still run, whoever started it: file loads, quitting and unregistering end them.
_live_jobs: set[Job] = set()


def cancel_all(message: str) -> None:
    for job in list(_live_jobs):
        job.cancel(message)


# One job per scene: the key is the scene's pointer, stable while the scene lives.
_active_jobs: dict[int, Job] = {}


def active_job(scene_key: int) -> Job | None:
    return _active_jobs.get(scene_key)


def refuse_if_busy(scene_key: int) -> None:
    current = _active_jobs.get(scene_key)
    if current is not None and not current.finished:
        raise JobBusyError(f"'{current.title}' is still running in this scene; cancel it or wait for it to finish")


def claim(scene_key: int, job_factory) -> Job:
    """Start a job for a scene, refusing while another one runs there."""
    refuse_if_busy(scene_key)
    job = job_factory()
    _active_jobs[scene_key] = job
    return job


def release(scene_key: int, job: Job) -> None:
    if _active_jobs.get(scene_key) is job:
        del _active_jobs[scene_key]


def release_all() -> None:
    """Forget every scene's job (the scenes are going away: a file load, quit or unregister)."""
    _active_jobs.clear()
