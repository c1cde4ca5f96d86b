"""The published RIFE checkpoints we support, and a frame interpolator around them.

``Interpolator`` takes RGB tensors of any size: it flips to the BGR order the weights were
trained on, pads right/bottom with zeros to the model's multiple (as the original inference
scripts do), and crops flow, mask and frames back.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .ifnet import IFNet, IFNetHD
from .warp import warp


@dataclass(frozen=True)
class ModelSpec:
    network: type[nn.Module]
    pad_multiple: int  # H and W are zero-padded on the right/bottom to a multiple of this
    scales: tuple[float, ...]  # downscale factor of each IFBlock, coarse to fine
    time_conditioned: bool  # False: the network only makes the midpoint
    training_only_prefixes: tuple[str, ...]  # checkpoint keys that inference drops


MODEL_SPECS: dict[str, ModelSpec] = {
    "rife-v4.25": ModelSpec(IFNet, 128, (16, 8, 4, 2, 1), True, ("teacher.", "caltime.")),
    "rife-hdv3": ModelSpec(IFNetHD, 32, (4, 2, 1), False, ("block_tea.",)),
}

# Frames of a time-unconditioned model are made by bisection until this close to t.
BISECTION_TOLERANCE = 1.0 / 64

# Above this many pixels motion is estimated on a smaller copy and applied at full size: the
# network's full-resolution layers grow with the frame (about 4 GB at 4K in fp32 on the CPU),
# while motion at 8K has no detail that 4K misses. Warping happens in bands of rows of at most
# WARP_BAND_PIXELS, so 8K frames never need a full-size sampling grid.
MAX_ESTIMATE_PIXELS = 3840 * 2160
WARP_BAND_PIXELS = 1 << 21


def _spec(name: str) -> ModelSpec:
    if name not in MODEL_SPECS:
        raise ValueError(f"Unknown interpolation model {name!r}; known: {', '.join(MODEL_SPECS)}")
    return MODEL_SPECS[name]


def _listing(keys: set[str], limit: int = 5) -> str:
    shown = sorted(keys)[:limit]
    return ", ".join(shown) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def state_dict_from_checkpoint(name: str, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Clean a published checkpoint into our network's state dict.

    Strips the ``module.`` prefix left by DataParallel, drops training-only tensors (the
    distillation teacher, v4.25's time calibrator) and checks names and shapes against the
    network, raising ValueError on any mismatch. Idempotent, so cleaned dicts pass through.
    """
    spec = _spec(name)
    cleaned = {}
    for key, value in raw.items():
        key = key.removeprefix("module.")
        if key.startswith(spec.training_only_prefixes):
            continue
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        cleaned[key] = value
    with torch.device("meta"):  # shapes only, no memory or init cost
        expected = {key: tensor.shape for key, tensor in spec.network().state_dict().items()}
    problems = []
    if missing := expected.keys() - cleaned.keys():
        problems.append(f"missing {len(missing)} tensors ({_listing(missing)})")
    if unexpected := cleaned.keys() - expected.keys():
        problems.append(f"{len(unexpected)} unexpected tensors ({_listing(unexpected)})")
    if reshaped := {k for k in expected.keys() & cleaned.keys() if cleaned[k].shape != expected[k]}:
        problems.append(f"{len(reshaped)} tensors of the wrong shape ({_listing(reshaped)})")
    if problems:
        raise ValueError(f"Not a {name} checkpoint: " + "; ".join(problems))
    return cleaned


class Interpolator:
    """Makes in-between frames with one of ``MODEL_SPECS``.

    Images are ``(B, C, H, W)`` tensors, RGB(A), in [0, 1] (or float HDR for ``synthesize``).
    ``state_dict`` may be a raw checkpoint; it is cleaned with ``state_dict_from_checkpoint``.
    ``half`` runs the estimator in fp16 (for CUDA); flows, masks and frames come back in the
    input's dtype, and warping is always done at least in fp32.
    """

    def __init__(self, name: str, state_dict: dict[str, torch.Tensor], device: str | torch.device = "cpu",
                 half: bool = False, max_estimate_pixels: int = MAX_ESTIMATE_PIXELS):
        self.name = name
        self.max_estimate_pixels = max_estimate_pixels
        self.spec = _spec(name)
        self.device = torch.device(device)
        self.dtype = torch.float16 if half else torch.float32
        net = self.spec.network()
        net.load_state_dict(state_dict_from_checkpoint(name, state_dict))
        self.net = net.to(self.device, self.dtype).eval().requires_grad_(False)

    def estimating_at_most(self, pixels: int) -> "Interpolator":
        """The same network, estimating motion on a copy of at most ``pixels`` (frames stay full size)."""
        capped = copy.copy(self)
        capped.max_estimate_pixels = min(pixels, self.max_estimate_pixels)
        return capped

    @torch.no_grad()
    def estimate(self, img0: torch.Tensor, img1: torch.Tensor, t: float,
                 flow_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow ``(B, 4, H, W)`` (t->0, t->1, pixels) and blend mask ``(B, 1, H, W)`` for RGB inputs.

        ``flow_scale`` < 1 estimates on a coarser pyramid (every block sees 1/flow_scale
        smaller inputs), for speed and for large motion in high-resolution frames; > 1 for
        small, detailed frames. It must be a power of two from 0.25 to 4 (Practical-RIFE's
        choices; coarser ones would pad to huge multiples). The result is always full size;
        frames over ``max_estimate_pixels`` are estimated on a smaller copy (8K as 4K).
        Time-unconditioned models only accept t = 0.5 here (see ``__call__``).
        """
        if not self.spec.time_conditioned and t != 0.5:
            raise ValueError(f"{self.name} has no time input and only estimates t=0.5; "
                             "call the Interpolator itself to bisect towards other times")
        if flow_scale not in (0.25, 0.5, 1.0, 2.0, 4.0):
            raise ValueError(f"flow_scale must be 0.25, 0.5, 1, 2 or 4, got {flow_scale}")
        height, width = img0.shape[-2:]
        if height * width <= self.max_estimate_pixels:
            return self._estimate_native(img0, img1, t, flow_scale)
        factor = (self.max_estimate_pixels / (height * width)) ** 0.5
        size = (max(round(height * factor), 1), max(round(width * factor), 1))
        small0, small1 = (F.interpolate(i, size=size, mode="area") for i in (img0, img1))  # (B, 3, h, w)
        flow, mask = self._estimate_native(small0, small1, t, flow_scale)
        # Flow is in pixels, so its values grow with the frame as well as its grid.
        gain = torch.tensor([width / size[1], height / size[0]] * 2, dtype=flow.dtype, device=flow.device)
        flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False) * gain.view(1, 4, 1, 1)
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
        return flow, mask  # (B, 4, H, W), (B, 1, H, W)

    def _estimate_native(self, img0: torch.Tensor, img1: torch.Tensor, t: float,
                         flow_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        out_dtype = img0.dtype
        height, width = img0.shape[-2:]
        # Coarser pyramids need a larger multiple so the coarsest level still divides evenly
        # (the Practical-RIFE rule: max(128, 128 / scale)).
        multiple = max(self.spec.pad_multiple, int(self.spec.pad_multiple / flow_scale))
        pad = (0, -width % multiple, 0, -height % multiple)

        def prepare(image: torch.Tensor) -> torch.Tensor:  # RGB (B, 3, H, W) -> padded BGR
            return F.pad(image[:, [2, 1, 0]].to(self.device, self.dtype), pad)

        scales = tuple(s / flow_scale for s in self.spec.scales)
        if self.spec.time_conditioned:
            flow, mask = self.net(prepare(img0), prepare(img1), t, scales)
        else:
            flow, mask = self.net(prepare(img0), prepare(img1), scales)
        # Flow and mask are per pixel, so cropping keeps them valid for the unpadded frames.
        return flow[..., :height, :width].to(out_dtype), mask[..., :height, :width].to(out_dtype)

    @staticmethod
    def synthesize(img0: torch.Tensor, img1: torch.Tensor, flow: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        """Warp both frames (any channels, e.g. RGBA) to time t and blend them by ``mask``.

        A convex blend of bilinear samples, so it never leaves the inputs' value range.
        """
        flow, mask = flow.to(img0), mask.to(img0)
        band = max(WARP_BAND_PIXELS // img0.shape[-1], 1)
        out = torch.empty_like(img0)  # (B, C, H, W)
        for top in range(0, img0.shape[-2], band):
            rows = slice(top, top + band)
            m = mask[..., rows, :]
            out[..., rows, :] = warp(img0, flow[:, :2, rows], top) * m + warp(img1, flow[:, 2:4, rows], top) * (1 - m)
        return out

    @torch.no_grad()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor, t: float, flow_scale: float = 1.0) -> torch.Tensor:
        """The frame at time t in [0, 1] between img0 (t=0) and img1 (t=1).

        The network sees the first three (RGB) channels; any further ones (alpha, or the
        real pixels when the first three are a copy made for motion estimation, e.g. display
        encoded HDR) are warped along, so the result has the inputs' channels.
        A time-conditioned model runs once.
        A midpoint-only model (HDv3) bisects: it makes the midpoint of the closest pair of
        frames known so far, starting from (img0, img1), and stops at the first midpoint
        within ``BISECTION_TOLERANCE`` (1/64) of t. Dyadic times k/64 are therefore exact,
        and one frame costs at most 6 network runs (t=0.5: 1, t=0.25: 2).
        """
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"t must be in [0, 1], got {t}")
        if self.spec.time_conditioned:
            return self.synthesize(img0, img1, *self.estimate(img0[:, :3], img1[:, :3], t, flow_scale))
        if t in (0.0, 1.0):
            return (img1 if t else img0).clone()
        (t_lo, lo), (t_hi, hi) = (0.0, img0), (1.0, img1)
        while True:
            t_mid = (t_lo + t_hi) / 2
            mid = self.synthesize(lo, hi, *self.estimate(lo[:, :3], hi[:, :3], 0.5, flow_scale))
            if abs(t_mid - t) < BISECTION_TOLERANCE:
                return mid
            if t < t_mid:
                t_hi, hi = t_mid, mid
            else:
                t_lo, lo = t_mid, mid
