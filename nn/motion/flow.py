"""Optical flow between two frames, from our RIFE v4.25 networks (``nn.inbetween``): used by
style propagation (its guides), the loop motion trainer (its targets) and inbetweening.

``motion_view`` is the image every flow estimate sees, whatever the frame's channels and encoding.
"""
from __future__ import annotations

import torch

from ..colour import to_display
from .warp import warp


def motion_view(frame: torch.Tensor, is_float: bool) -> torch.Tensor:
    """The (1, 3, H, W) image the flow network sees: display-referred RGB in [0, 1]."""
    colour = frame[:, :3] if frame.shape[1] >= 3 else frame[:, :1].expand(-1, 3, -1, -1)
    return to_display(colour, is_float).clamp(0.0, 1.0)  # EXR: motion is estimated on what people see


def auto_flow_scale(params: dict) -> float:
    """User's flow scale, or 0.5 at 2K and above (large motion, and a quarter of the memory)."""
    scale = float(params.get("flow_scale", 0.0))
    if scale > 0:
        return scale
    return 0.5 if max(params.get("size", (0, 0))) >= 2048 else 1.0


class Flow:
    """Optical flow between neighbouring frames, from our RIFE v4.25 run at t = 0.5.

    RIFE gives the flows from the middle moment to both frames; their difference is the
    motion between the frames, located at the middle moment, and moved to the target frame
    by one more warp. Endpoint times (t = 0 or 1) are outside what the network was trained
    on and give far worse flow. Frames up to 1024 px are estimated at twice their size (the
    finer pyramid follows small detail: on lynx at 512x288 the carried key scores 27.3 dB
    against style010 instead of 26.5).
    """

    def __init__(self, interpolator, is_float: bool = False):
        self.interpolator = interpolator
        self.is_float = is_float

    @classmethod
    def load(cls, settings, device, half: bool, is_float: bool = False) -> "Flow":
        """Raises ``hub.WeightsUnavailable`` when the RIFE weights are missing."""
        from .. import hub
        from .rife import Interpolator

        return cls(Interpolator("rife-v4.25", hub.load_state_dict("rife-v4.25", settings), device, half), is_float)

    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(1, 2, H, W) flow such that ``warp(source, flow)`` looks like ``target``."""
        height, width = target.shape[-2:]
        scale = 2.0 if max(height, width) <= 1024 else auto_flow_scale({"size": (width, height)})
        flow, _ = self.interpolator.estimate(motion_view(source, self.is_float), motion_view(target, self.is_float),
                                             0.5, flow_scale=scale)
        return key_flows(flow.float())[1]


def key_flows(mid_flow: torch.Tensor, iterations: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows between the two frames, (F01 at frame 0's pixels, F10 at frame 1's), each (1, 2, H, W).

    ``mid_flow`` (1, 4, H, W) is RIFE's at t = 0.5: mid -> frame 0 and mid -> frame 1. Their
    difference is the motion between the frames, at the middle moment's pixels; each frame's
    pixel x finds the mid pixel m whose flow lands on it, m = x - f(m), by ``iterations``
    fixed-point steps from m = x - f(x) (one suffices for small motion; large motion needs more).
    """
    to_first, to_second = mid_flow[:, 0:2], mid_flow[:, 2:4]
    motion = to_second - to_first  # frame 0 -> frame 1, at mid positions

    def at_frame(to_frame: torch.Tensor) -> torch.Tensor:
        back = -to_frame
        for _ in range(iterations - 1):
            back = -warp(to_frame, back)
        return warp(motion, back)

    return at_frame(to_first), -at_frame(to_second)


def length(flow: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) length of each vector of ``flow`` (B, 2, H, W). ``hypot`` because PyTorch's CPU
    ``norm(dim=1)`` of a 720p flow takes about 160 ms, against 7 ms for this."""
    return torch.hypot(flow[:, 0:1], flow[:, 1:2])
