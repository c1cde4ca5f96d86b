"""Worker jobs: heavy work runs in a subprocess that reports in JSON lines.

A ``Job`` is a plain object. The UI polls it from a modal operator; scripts,
``blender -b`` and tests call ``run_to_end()``. Nothing here imports bpy or
torch, so a CUDA crash or a leak in the worker cannot take Blender down, and
killing the worker frees its GPU memory.

Protocol (one JSON object per stdout line of ``python -m nn.worker SPEC``):
``start`` {device, torch}, ``progress`` {fraction, message, preview?},
``done`` {outputs, info}, ``error`` {message, traceback}.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class WorkerRuntime:
    """How to start a worker: which Python, which extra import paths, which device."""

    python: str = sys.executable
    extra_paths: tuple[str, ...] = ()  # PyTorch deps folder, Blender's OpenImageIO folder
    device: str = "auto"
    half: bool = False

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONNOUSERSITE"] = "1"  # user-site packages are a classic source of torch clashes
        env["PYTHONUNBUFFERED"] = "1"
        # OpenMP threads that spin while waiting made a CPU training step 10-50x slower whenever
        # another process kept a core busy (docs/BENCHMARKS.md, style propagation); it must be set
        # before torch starts, so it is set here. A user's own setting wins.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        paths = [EXTENSION_ROOT, *self.extra_paths]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env


class LineProcess:
    """A subprocess whose stdout lines a thread collects, so polling never blocks.

    stderr goes to ``log_path`` so a crash can be explained from its tail.
    """

    def __init__(self, argv: list[str], env: dict[str, str], log_path: str, cwd: str | None = None):
        self.log_path = log_path
        self._lines: queue.Queue[str] = queue.Queue()
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._proc.stdout.close()

    def new_lines(self) -> list[str]:
        lines = []
        while True:
            try:
                lines.append(self._lines.get_nowait())
            except queue.Empty:
                return lines

    @property
    def finished(self) -> bool:
        """True once the process exited and every line it printed was collected."""
        return self._proc.poll() is not None and not self._reader.is_alive()

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._reader.join(timeout=5)

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
        self._scratch = tempfile.mkdtemp(prefix="frameweaver-job-")
        spec_path = os.path.join(self._scratch, "spec.json")
        with open(spec_path, "w", encoding="utf-8") as f:
            json.dump({"task": task, "device": runtime.device, "half": runtime.half, "params": params}, f)
        self._process = LineProcess(
            [runtime.python, "-m", "nn.worker", spec_path],
            env=runtime.environment(),
            log_path=os.path.join(self._scratch, "worker.log"),
            cwd=EXTENSION_ROOT,
        )

    @property
    def finished(self) -> bool:
        return self.state != self.RUNNING

    def poll(self) -> bool:
        """Read what the worker reported since the last call. Returns True while running."""
        if self.finished:
            return False
        exited = self._process.finished  # read before draining, so no line is missed
        for line in self._process.new_lines():
            self._handle(line)
        if not self.finished and exited:
            self._fail(self._crash_message(), self._process.log_tail())
        if self.finished:
            self._close()
        return not self.finished

    def run_to_end(self, on_progress=None, interval: float = 0.05) -> "Job":
        """Block until the job ends (batch scripts, ``blender -b``, tests)."""
        while self.poll():
            if on_progress:
                on_progress(self)
            time.sleep(interval)
        return self

    def cancel(self) -> None:
        if self.finished:
            return
        self._process.kill()
        self.state = self.CANCELLED
        self.message = "Cancelled"
        self._close()

    def _handle(self, line: str) -> None:
        try:
            event = json.loads(line)
            kind = event["event"]
        except (ValueError, KeyError, TypeError):
            return  # stray prints from libraries are not protocol lines
        if kind == "start":
            self.device, self.torch_version = event.get("device"), event.get("torch")
            self.message = f"Running on {self.device}"
        elif kind == "progress":
            self.fraction = float(event.get("fraction", self.fraction))
            self.message = event.get("message", self.message)
            self.preview = event.get("preview") or self.preview
        elif kind == "done":
            self.outputs = list(event.get("outputs", []))
            self.info = dict(event.get("info", {}))
            self.fraction, self.message, self.state = 1.0, "Done", self.DONE
        elif kind == "error":
            self._fail(event.get("message", "Unknown error"), event.get("traceback"))

    def _fail(self, message: str, traceback: str | None) -> None:
        self.state, self.error, self.traceback = self.FAILED, message, traceback
        self.message = message

    def _crash_message(self) -> str:
        code = self._process.returncode
        tail = self._process.log_tail(600)
        last = tail.splitlines()[-1] if tail else "no output"
        return f"The worker process stopped unexpectedly (exit code {code}): {last}"

    def _close(self) -> None:
        if not self._process.finished:
            self._process.kill()
        shutil.rmtree(self._scratch, ignore_errors=True)


# One job per scene: the key is the scene's pointer, stable while the scene lives.
_active_jobs: dict[int, Job] = {}


def active_job(scene_key: int) -> Job | None:
    return _active_jobs.get(scene_key)


def claim(scene_key: int, job_factory) -> Job:
    """Start a job for a scene, refusing while another one runs there."""
    current = _active_jobs.get(scene_key)
    if current is not None and not current.finished:
        raise JobBusyError(f"'{current.title}' is still running in this scene; cancel it or wait for it to finish")
    job = job_factory()
    _active_jobs[scene_key] = job
    return job


def release(scene_key: int, job: Job) -> None:
    if _active_jobs.get(scene_key) is job:
        del _active_jobs[scene_key]
