"""What every command line shares: where weights come from, and which device runs."""
from __future__ import annotations

import argparse
import os
import sys

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
