"""Choosing the compute device, and describing what this machine offers."""
from __future__ import annotations

import torch


def pick_device(choice: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then Apple MPS, then the CPU; an explicit choice must exist."""
    choice = choice.lower()
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if choice == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if choice == "cuda" and not cuda:
        raise RuntimeError(f"CUDA was chosen but this PyTorch ({torch.__version__}) sees no CUDA GPU; choose Auto or CPU")
    if choice == "mps" and not mps:
        raise RuntimeError("Apple MPS was chosen but is not available on this machine; choose Auto or CPU")
    return torch.device(choice)


def use_half(device: torch.device, requested: bool) -> bool:
    """fp16 only where it is fast and supported: CUDA."""
    return requested and device.type == "cuda"


def describe() -> dict:
    """What the worker's PyTorch can use, for the preferences' device probe."""
    info = {
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "mps": torch.backends.mps.is_available(),
        "threads": torch.get_num_threads(),
        "gpus": [],
    }
    for index in range(torch.cuda.device_count() if info["cuda"] else 0):
        props = torch.cuda.get_device_properties(index)
        info["gpus"].append(f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
    return info
