"""What every command line shares: where weights come from, and which device runs."""
from __future__ import annotations

import argparse
import os
import sys

from .worker import TaskContext, error_message, steady_heap

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "frameweaver", "hub")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights-dir", default="", help="folder holding <name>/<file> weights, used before the Hub")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE, help="Hugging Face cache for downloaded weights")
    parser.add_argument("--offline", action="store_true", help="never download")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--half", action="store_true", help="fp16 on CUDA")


def add_farm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", metavar="HOST:PORT", help="run the job's chunks on the Ray cluster whose head is "
                        "there (token from RAY_AUTH_TOKEN or ~/.ray/auth_token); --out must be a folder every "
                        "node sees")
    parser.add_argument("--chunks", type=int, default=0, help="with --ray: how many chunks (default: one per GPU, "
                        "or per CPU on a cluster without GPUs)")
    parser.add_argument("--retries", type=int, default=3, help="with --ray: how often a chunk whose worker died is "
                        "run again")


def run_on_farm(args: argparse.Namespace, task: str, params: dict) -> tuple[list[str], dict]:
    """Run a job's chunks on the Ray cluster at ``args.ray``, printing the frames done as they appear."""
    from .farm import ray_driver

    shown = [-1]

    def progress(done: int, total: int) -> None:
        if done != shown[0]:
            shown[0] = done
            print(f"{done} of {total} frames", file=sys.stderr, flush=True)

    # Ray prints its own notes (a worker died, a chunk is retried) on stdout: they go to stderr, with
    # the progress, so that stdout lists the frames alone, as it does without --ray.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        return ray_driver.run(task, params, args.ray, chunk_count=args.chunks, retries=args.retries,
                              device=getattr(args, "device", "auto"), half=getattr(args, "half", False),
                              progress=progress)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def hub_settings(args: argparse.Namespace) -> dict:
    """Absolute paths: with --ray, the tasks run in other processes, maybe on other machines."""
    return {"cache_dir": os.path.abspath(args.cache_dir), "local_dir": args.weights_dir and os.path.abspath(args.weights_dir),
            "online": not args.offline}


class PrintPaths(TaskContext):
    """Progress as a command line shows it: the path of each file as it is written."""

    def progress(self, fraction: float, message: str, preview: str | None = None) -> None:
        if preview:
            print(preview, flush=True)


def task_context(args: argparse.Namespace, context=TaskContext) -> TaskContext:
    from .device import pick_device, use_half  # torch: not needed by a farm job's driver

    device = pick_device(args.device)
    return context(device, use_half(device, args.half))


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
