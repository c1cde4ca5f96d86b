"""The worker process: ``python -m nn.worker SPEC.json [--chunk I/N]``.

It imports torch and this package only, never bpy, and reports on stdout in
JSON lines (protocol in ``operators/jobs.py``). Blender starts it with its own
Python and kills it to cancel, which also frees all GPU memory. ``--chunk I/N`` runs chunk I of N
of the job only (``farm/chunks.py``): the command a farm manager runs once per chunk.
"""
from __future__ import annotations

import ctypes
import importlib
import json
import os
import sys
import threading
import traceback
from dataclasses import dataclass

from . import files
from .farm import chunks

# task name -> module (relative to this package) with ``run(params, ctx) -> (outputs, info)``
TASKS = {
    "inbetween": ".inbetween.task",
    "loop": ".loop.task",
    "loop_train": ".loop.train",
    "probe": ".probe",
    "stylize": ".stylize.task",
}

PYTORCH_MISSING = (
    "PyTorch is not installed for the Python that runs the worker ({python}). "
    "Open Preferences > Add-ons > Frameweaver and press 'Install PyTorch'."
)


OUT_OF_MEMORY = (
    "To need less memory: set Flow Scale to Half or Quarter (Inbetweens), use smaller frames, switch on "
    "Half Precision on a GPU, choose the CPU as Device in Preferences > Add-ons > Frameweaver when the GPU is "
    "the one that ran out, or close other programs."
)
HEARTBEAT_SECONDS = 5.0  # Blender's side stops a worker it has not heard from for a while (operators/jobs.py)
# The finished task's outputs and info go to this file beside the spec, never into a protocol line: a
# 100,000-frame job names megabytes of paths, and Blender's reader drops any line over 1 MiB.
RESULT_NAME = "result.json"

# Frame-sized buffers (a 1080p RGB float picture is 25 MB) fall under glibc's self-raising mmap
# threshold (up to 32 MB), so freed ones stay in its arenas and fragment them: a 1080p x2 retime's
# worker grew 26% from 100 to 1000 frames (docs/BENCHMARKS.md). Served by mmap, they are returned
# when freed, at the cost of zeroing fresh pages (about 0.04 s of CPU per 1080p frame).
HEAP_MMAP_THRESHOLD = 4 << 20
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number

_protocol = None  # the channel to Blender once main() moved everything else off stdout
_protocol_lock = threading.Lock()


def emit(event: str, **fields) -> None:
    line = json.dumps({"event": event, **fields})
    channel = _protocol or sys.stdout
    with _protocol_lock:
        channel.write(line + "\n")
        channel.flush()


def keep_protocol_clean() -> None:
    """Give the protocol a private copy of stdout and send fd 1 (every print, C libraries' too) to stderr."""
    global _protocol
    _protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", errors="replace")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def start_heartbeat(interval: float = HEARTBEAT_SECONDS) -> None:
    def beat():
        while not stopped.wait(interval):
            emit("heartbeat")

    stopped = threading.Event()
    threading.Thread(target=beat, daemon=True).start()


def steady_heap() -> None:
    """Serve allocations of a frame's size by mmap, so a long job's memory does not grow (glibc only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass  # not glibc (musl has no mallopt): its allocator stays as it is


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, numpy's MemoryError, or the CPU allocator's RuntimeError."""
    text = str(error)
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in text or "not enough memory" in text
                                             or "out of memory" in text.lower()))


@dataclass
class TaskContext:
    device: object  # torch.device
    half: bool

    def progress(self, fraction: float, message: str, preview: str | None = None) -> None:
        emit("progress", fraction=round(float(fraction), 4), message=message, preview=preview)


class TaskError(Exception):
    """A problem with the user's input or files: reported without a traceback."""


def main(spec_path: str, chunk: tuple[int, int] | None = None) -> int:
    keep_protocol_clean()
    steady_heap()
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    if chunk:
        spec["params"] = {**spec["params"], "chunk": chunk}
    start_heartbeat()
    try:
        import torch
    except ImportError:
        emit("error", message=PYTORCH_MISSING.format(python=sys.executable), traceback=traceback.format_exc())
        return 1
    from .device import pick_device, use_half

    device = "the CPU"
    try:
        device = pick_device(spec.get("device", "auto"))
        emit("start", device=str(device), torch=torch.__version__)
        task = importlib.import_module(TASKS[spec["task"]], __package__)
        if chunk:
            chunks.frame_count(spec["task"], spec["params"])  # refuses a task that cannot be split
        outputs, info = task.run(spec["params"], TaskContext(device, use_half(device, spec.get("half", False))))
        result = json.dumps({"outputs": outputs, "info": info}).encode()
        files.write_new(os.path.join(os.path.dirname(os.path.abspath(spec_path)), RESULT_NAME), result, replace=True)
    except Exception as error:
        emit("error", message=error_message(error, device), traceback=traceback.format_exc())
        return 1
    emit("done", count=len(outputs))
    return 0


def error_message(error: Exception, device) -> str:
    """One line for the user: what happened and, where there is one, what to change."""
    if is_out_of_memory(error):
        return f"Out of memory on {device}. {OUT_OF_MEMORY}"
    if isinstance(error, OSError):
        return files.describe(error)
    if isinstance(error, (TaskError, ValueError, RuntimeError)):
        return str(error)
    return f"Internal error ({type(error).__name__}): {error}"  # anything else is a bug: say so


def command_line(argv: list[str]) -> tuple[str, tuple[int, int] | None]:
    """(spec path, chunk) from ``SPEC.json [--chunk I/N]``; anything else ends the process with one line."""
    if len(argv) == 3 and argv[1] == "--chunk":
        try:
            return argv[0], chunks.parse_chunk(argv[2])
        except chunks.ChunkRequestError as error:
            sys.exit(f"error: {error}")
    if len(argv) != 1:
        sys.exit("usage: python -m nn.worker SPEC.json [--chunk I/N]")
    return argv[0], None


if __name__ == "__main__":
    # Run the imported ``nn.worker``, not this ``__main__`` copy, so the TaskError that tasks raise
    # (imported from nn.worker) is the class main() catches.
    worker = importlib.import_module("nn.worker")
    sys.exit(worker.main(*worker.command_line(sys.argv[1:])))
