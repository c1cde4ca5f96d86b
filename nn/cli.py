"""What every command line shares: where weights come from, and which device runs."""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager

from . import values
from .worker import TaskContext, error_message, steady_heap

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "frameweaver", "hub")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_arguments(parser)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--half", action="store_true", help="fp16 on CUDA")


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights-dir", default="", help="folder holding <name>/<file> weights, used before the Hub")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE, help="Hugging Face cache for downloaded weights")
    parser.add_argument("--offline", action="store_true", help="never download")


def add_generative_arguments(parser: argparse.ArgumentParser) -> None:
    """The generative model's options (``nn.generate``): where it is, and what to make."""
    group = parser.add_argument_group("generative model")
    group.add_argument("--model-dir", default="", help="a local Wan2.1 VACE pipeline folder (diffusers' "
                                                       "save_pretrained layout), instead of the Hub's")
    group.add_argument("--generative-model", default="wan2.1-vace-1.3b", choices=["wan2.1-vace-1.3b", "wan2.1-vace-14b"],
                       help="which model's weights to use without --model-dir (Local Weights folder, then the Hub)")
    group.add_argument("--prompt", default="", help="what the frames show (optional)")
    group.add_argument("--negative-prompt", default="")
    group.add_argument("--seed", type=values.argument("seed", "--seed"), default=0,
                       help="the same seed gives the same frames")
    group.add_argument("--steps", type=values.argument("denoising_steps", "--steps"), default=30,
                       help="denoising steps")
    group.add_argument("--guidance", type=values.argument("guidance", "--guidance"), default=5.0,
                       help="how closely to follow the prompt")
    group.add_argument("--low-vram", action="store_true", help="CPU offload and tiled decoding, for small GPUs")


def generative_params(args: argparse.Namespace, ctx: TaskContext) -> dict:
    """The task parameters of ``add_generative_arguments``: chosen, it runs on the CPU too, with a warning."""
    chosen = "generative" in (getattr(args, "model", None), getattr(args, "motion", None))
    if not chosen and getattr(args, "model", None) != "auto":
        return {}
    if chosen and ctx.device.type != "cuda":
        print(f"warning: the generative model runs on {ctx.device}: expect minutes per frame at full size",
              file=sys.stderr, flush=True)
    return {"model_dir": args.model_dir, "generative_model": args.generative_model, "prompt": args.prompt, "negative_prompt": args.negative_prompt,
            "seed": args.seed, "steps": args.steps, "guidance": args.guidance, "low_vram": args.low_vram,
            "allow_cpu": chosen}  # Auto uses it on a GPU only


def add_farm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", metavar="HOST:PORT", help="run the job's chunks on the Ray cluster whose head is "
                        "there (token from RAY_AUTH_TOKEN or ~/.ray/auth_token); --out must be a folder every "
                        "node sees")
    parser.add_argument("--chunks", type=values.argument("chunks", "--chunks"), default=0, help="with --ray: how many chunks (default: one per GPU, "
                        "or per CPU on a cluster without GPUs)")
    parser.add_argument("--retries", type=values.argument("retries", "--retries"), default=3, help="with --ray: how often a chunk whose worker died is "
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


class CommandContext(TaskContext):
    """A task's progress on a command line: its messages on stderr, so stdout lists only what was written."""

    def progress(self, fraction: float, message: str, preview: str | None = None) -> None:
        print(message, file=sys.stderr, flush=True)


class PrintPaths(TaskContext):
    """The path of each frame on stdout as it is written (the task's previews are its frames), and nothing
    else: stderr stays for the one line that says what went wrong."""

    def progress(self, fraction: float, message: str, preview: str | None = None) -> None:
        if preview:
            print(preview, flush=True)


def task_context(args: argparse.Namespace, context=CommandContext) -> TaskContext:
    from .device import pick_device, use_half  # PyTorch: not needed by a farm job's driver

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
