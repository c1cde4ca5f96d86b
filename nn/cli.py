"""What every command line shares: where weights come from, and which device runs."""
from __future__ import annotations

import argparse
import os

from .device import pick_device, use_half
from .worker import TaskContext

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
