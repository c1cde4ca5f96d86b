"""The style generator (U-Net-like, ResNet blocks at 1/4 resolution) and a patch discriminator.

No normalisation layers: the generator trains on small patches and runs on whole frames or
tiles, and batch or instance statistics would differ between those, which shows as seams and
brightness shifts. Without them a patch, a tile and the whole frame go through identical maths.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Two stride-2 stages: frames are padded to a multiple of this before the generator runs.
GENERATOR_MULTIPLE = 4


def conv_act(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    # LeakyReLU keeps gradients alive for the all-negative units a from-scratch net starts with.
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2, inplace=True))


class ResBlock(nn.Module):
    """x + conv(act(conv(x))): deep enough to see brush-stroke context, cheap at 1/4 resolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_act(channels, channels), nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Up(nn.Module):
    """Nearest x2 then a conv (no transposed conv: its checkerboard shows in flat paint)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = conv_act(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Generator(nn.Module):
    """(B, in_channels, H, W) -> (B, 3, H, W), H and W multiples of ``GENERATOR_MULTIPLE``.

    Input is the frame's RGB followed by the guide channels. The network predicts a change to
    the three input channels starting at ``base`` (the carried paint, or the frame itself): the
    last conv starts at zero, so an untrained net already outputs that base, and training only
    has to learn the corrections, which a small net learns in far fewer steps than the whole
    look. The output is unbounded during training (a clamp would stop gradients on saturated
    paint); inference clamps to [0, 1].
    """

    def __init__(self, in_channels: int, channels: int = 16, blocks: int = 2, base: int = 0):
        super().__init__()
        c, self.base = channels, base
        self.enter = conv_act(in_channels, c)
        self.down1 = conv_act(c, 2 * c, stride=2)
        self.down2 = conv_act(2 * c, 4 * c, stride=2)
        self.body = nn.Sequential(*(ResBlock(4 * c) for _ in range(blocks)))
        self.up2 = Up(4 * c, 2 * c)
        self.fuse2 = conv_act(4 * c, 2 * c)
        self.up1 = Up(2 * c, c)
        self.exit = nn.Conv2d(2 * c, 3, 3, 1, 1)
        nn.init.zeros_(self.exit.weight)
        nn.init.zeros_(self.exit.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enter(x)  # (B, c, H, W)
        d1 = self.down1(e)  # (B, 2c, H/2, W/2)
        d2 = self.body(self.down2(d1))  # (B, 4c, H/4, W/4)
        u2 = self.fuse2(torch.cat([self.up2(d2), d1], 1))  # (B, 2c, H/2, W/2): skip keeps mid detail
        change = self.exit(torch.cat([self.up1(u2), e], 1))  # (B, 3, H, W): skip keeps full-res edges
        return x[:, self.base:self.base + 3] + change


class PatchDiscriminator(nn.Module):
    """(B, 3, H, W) -> (B, 1, H/8, W/8) logits, each judging a ~30 px patch as painted or generated."""

    def __init__(self, channels: int = 32):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            conv_act(3, c, stride=2),  # (B, c, H/2, W/2)
            conv_act(c, 2 * c, stride=2),  # (B, 2c, H/4, W/4)
            conv_act(2 * c, 4 * c, stride=2),  # (B, 4c, H/8, W/8)
            nn.Conv2d(4 * c, 1, 3, 1, 1),  # (B, 1, H/8, W/8)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
