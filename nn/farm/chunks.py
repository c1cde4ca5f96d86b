"""A job in independent chunks: chunk I of N computes a contiguous share of the job's frames.

A chunk writes only its own frames, each through the checked writer (complete under its final
name or not at all), and skips those already there, so a rerun or a retried chunk resumes where
the last attempt stopped. ``python -m nn.worker SPEC.json --chunk I/N`` runs one chunk: the
command a farm manager (Flamenco, Deadline, OpenCue, Ray) runs once per chunk.
"""
from __future__ import annotations

import glob
import os


class ChunkRequestError(ValueError):
    """A chunk that does not exist (``5/4``, ``0/4``, ``a/b``) or a task that cannot be split."""


def parse_chunk(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 1 <= I <= N."""
    index, slash, count = text.partition("/")
    if not slash or not index.strip().isdigit() or not count.strip().isdigit():
        raise ChunkRequestError(f"--chunk takes I/N, chunk I of N (for example 2/8), not {text!r}")
    index, count = int(index), int(count)
    if count < 1 or not 1 <= index <= count:
        raise ChunkRequestError(f"--chunk {text}: there is no chunk {index} of {count}; I must be 1 to N "
                                f"(chunks count from 1)")
    return index, count


def frame_count(task: str, params: dict) -> int:
    """How many output frames a job makes; refuses a task that cannot be split into chunks."""
    if task == "inbetween":
        if params.get("model") == "generative":
            raise ChunkRequestError("The generative model makes one video through all the keys, so its frames do "
                                    "not split into chunks: run it on one machine")
        return len(params["frames"])
    if task == "loop" and not params.get("field_only"):
        if params.get("motion_source") == "generative":
            raise ChunkRequestError("A generative loop is one video, so its frames do not split into chunks: run it "
                                    "on one machine")
        return int(params["frames"])
    if task == "stylize":
        if not params.get("model_file") or params.get("resume"):
            raise ChunkRequestError("Style propagation splits into chunks only once its model is trained: apply a "
                                    "trained model (no training in the same job)")
        return len(params["frames"])
    raise ChunkRequestError(f"A '{task}' job cannot be split into chunks (inbetweens, retimes, loops and "
                            "trained style models can)")


def frame_range(total: int, chunk: tuple[int, int] | list | None) -> range:
    """The frames (0-based) of chunk (I, N) of a job of ``total`` frames; every frame for no chunk."""
    if not chunk:
        return range(total)
    index, count = chunk
    return range(total * (index - 1) // count, total * index // count)


def wanted(path: str, chunk) -> bool:
    """Whether a chunk must still make ``path``: not when it exists already (published files are complete).

    A killed attempt can leave its partial file behind (``imageio.write_image`` names it
    ``.<stem>.partial-<pid><ext>``); the chunk that owns the frame removes it before writing.
    Outside a chunk (a whole job in a fresh folder) the writer's refusal to overwrite stands.
    """
    if not chunk:
        return True
    if os.path.lexists(path):
        return False
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(stem)}.partial-*{glob.escape(ext)}")):
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass
    return True
