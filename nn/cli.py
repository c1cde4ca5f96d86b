"""What every command line shares: where weights come from, and which device runs."""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager

from .device import pick_device, use_half
from .worker import TaskContext, error_message, steady_heap

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "frameweaver", "hub")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights-dir", default="", help="folder holding <name>/<file> weights, used before the Hub")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE, help="Hugging Face cache for downloaded weights")
    parser.add_argument("--offline", action="store_true", help="never download")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--half", action="store_true", help="fp16 on CUDA")


def hub_settings(args: argparse.Namespace) -> dict:
    return {"cache_dir": args.cache_dir, "local_dir": args.weights_dir, "online": not args.offline}


@contextmanager
def output_folder(path: str, option: str = "--out"):
    """The folder a command writes to, made if missing; if the command then fails, a folder it made and left
    empty is removed again (nothing of a failed run stays behind). A file of that name is refused by name."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"{option} {path} is a file; give a folder for the outputs")
    made = not os.path.lexists(path)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    except BaseException:
        if made and not os.listdir(path):
            os.rmdir(path)
        raise


def task_context(args: argparse.Namespace) -> TaskContext:
    device = pick_device(args.device)
    return TaskContext(device, use_half(device, args.half))


def run_command(main) -> int:
    """Run a command line's ``main``; any failure ends it with one line on stderr and exit status 1.

    The same words as in Blender: a full disk, missing weights (which file, and where to put
    it) or an out-of-memory say so plainly, without a traceback.
    """
    steady_heap()
    try:
        return main()
    except Exception as error:
        sys.exit(f"error: {error_message(error, 'this device')}")
