"""The worker process: ``python -m nn.worker SPEC.json``.

It imports torch and this package only, never bpy, and reports on stdout in
JSON lines (protocol in ``operators/jobs.py``). Blender starts it with its own
Python and kills it to cancel, which also frees all GPU memory.
"""
from __future__ import annotations

import importlib
import json
import sys
import traceback
from dataclasses import dataclass

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


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


@dataclass
class TaskContext:
    device: object  # torch.device
    half: bool

    def progress(self, fraction: float, message: str, preview: str | None = None) -> None:
        emit("progress", fraction=round(float(fraction), 4), message=message, preview=preview)


class TaskError(Exception):
    """A problem with the user's input or files: reported without a traceback."""


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    try:
        import torch
    except ImportError:
        emit("error", message=PYTORCH_MISSING.format(python=sys.executable), traceback=traceback.format_exc())
        return 1
    from .device import pick_device, use_half

    try:
        device = pick_device(spec.get("device", "auto"))
        emit("start", device=str(device), torch=torch.__version__)
        task = importlib.import_module(TASKS[spec["task"]], __package__)
        outputs, info = task.run(spec["params"], TaskContext(device, use_half(device, spec.get("half", False))))
    except torch.OutOfMemoryError:
        emit("error", message="Out of memory. Lower the resolution or the tile size, switch on half precision, "
             "or choose the CPU in the preferences.", traceback=traceback.format_exc())
        return 1
    except (TaskError, OSError, ValueError, RuntimeError) as error:
        emit("error", message=str(error), traceback=traceback.format_exc())
        return 1
    except Exception as error:  # anything else is a bug: say so, with the traceback
        emit("error", message=f"Internal error ({type(error).__name__}): {error}", traceback=traceback.format_exc())
        return 1
    emit("done", outputs=outputs, info=info)
    return 0


if __name__ == "__main__":
    # Run the imported ``nn.worker``, not this ``__main__`` copy, so the TaskError that tasks raise
    # (imported from nn.worker) is the class main() catches.
    sys.exit(importlib.import_module("nn.worker").main(sys.argv[1]))
