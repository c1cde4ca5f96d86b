"""RIFE IFNet flow estimators, written from the published checkpoints' tensor names and shapes.

Two variants share the idea (a coarse-to-fine stack of IFBlocks, each seeing the inputs
downscaled by its `scale`, refining a bidirectional flow and a blend mask) but not layers:

- ``IFNet``: Practical-RIFE v4.25. A feature ``Head`` plus 5 ``IFBlock``s; time-conditioned,
  so any t in [0, 1]; blocks pass 8 hidden feature channels to the next one.
- ``IFNetHD``: ECCV2022-RIFE HDv3. 3 ``IFBlockHD``s, each run on (A, B) and on (B, A) and
  averaged; no time input (t = 0.5).

Both take BGR images in [0, 1] whose H and W are multiples of the model's padding, and
return the flow ``(B, 4, H, W)`` (t->0 in [:, :2], t->1 in [:, 2:4], in pixels) and the mask
``(B, 1, H, W)`` after the sigmoid. The frame is
``warp(img0, flow[:, :2]) * mask + warp(img1, flow[:, 2:4]) * (1 - mask)``, which is exactly
the original code's last "merged" output: neither checkpoint has a refinement stage.
Module attribute names mirror the checkpoint keys so the state dicts load unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .warp import warp


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear rescale as in the original (align_corners=False); factor 1 is a no-op."""
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def swap_directions(flow: torch.Tensor) -> torch.Tensor:
    """(t->0, t->1) flow as seen with the two frames exchanged: (t->1, t->0)."""
    return torch.cat([flow[:, 2:4], flow[:, :2]], dim=1)


# ---------------------------------------------------------------------------------------
# Practical-RIFE v4.25
# ---------------------------------------------------------------------------------------


def conv_lrelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2))


class ResConv(nn.Module):
    """3x3 residual conv with a learnt per-channel gain on the residual branch."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x) * self.beta + x, 0.2)


class Head(nn.Module):
    """Per-frame learnt features, (B, 3, H, W) -> (B, 4, H, W), warped along with the pixels."""

    def __init__(self):
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)  # half resolution
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(16, 4, 4, 2, 1)  # back to full resolution

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.cnn0(image), 0.2)
        x = F.leaky_relu(self.cnn1(x), 0.2)
        x = F.leaky_relu(self.cnn2(x), 0.2)
        return self.cnn3(x)


class IFBlock(nn.Module):
    """One pyramid level of v4.25: flow update, mask logits and 8 hidden feature channels.

    Works at 1/(4*scale) resolution internally; inputs and outputs are full resolution.
    """

    hidden_channels = 8

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.conv0 = nn.Sequential(conv_lrelu(in_channels, width // 2, 2), conv_lrelu(width // 2, width, 2))
        self.convblock = nn.Sequential(*(ResConv(width) for _ in range(8)))
        # 4 flow + 1 mask + 8 hidden = 13 channels, produced at 2x by the transposed conv and
        # another 2x by the pixel shuffle (4 * 13 channels -> 13).
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(width, 4 * 13, 4, 2, 1), nn.PixelShuffle(2))

    def forward(
        self, x: torch.Tensor, flow: torch.Tensor | None, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = resize(x, 1.0 / scale)  # (B, C, H/s, W/s)
        if flow is not None:
            x = torch.cat([x, resize(flow, 1.0 / scale) / scale], dim=1)  # flow in pixels of this level
        out = self.lastconv(self.convblock(self.conv0(x)))  # (B, 13, H/s, W/s)
        out = resize(out, scale)  # (B, 13, H, W)
        return out[:, :4] * scale, out[:, 4:5], out[:, 5:]


class IFNet(nn.Module):
    """Practical-RIFE v4.25 flow estimator (time-conditioned)."""

    def __init__(self):
        super().__init__()
        image_pair, features, time, mask, flow = 6, 2 * 4, 1, 1, 4
        refine_in = image_pair + features + time + mask + IFBlock.hidden_channels + flow  # 28
        self.block0 = IFBlock(image_pair + features + time, 192)  # 15 inputs, no flow yet
        self.block1 = IFBlock(refine_in, 128)
        self.block2 = IFBlock(refine_in, 96)
        self.block3 = IFBlock(refine_in, 64)
        self.block4 = IFBlock(refine_in, 32)
        self.encode = Head()

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor, t: float, scales: tuple[float, ...] = (16, 8, 4, 2, 1)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # img0, img1: (B, 3, H, W) BGR
        time = torch.full_like(img0[:, :1], t)  # (B, 1, H, W)
        feat0, feat1 = self.encode(img0), self.encode(img1)  # (B, 4, H, W) each
        blocks = (self.block0, self.block1, self.block2, self.block3, self.block4)
        flow, mask, hidden = blocks[0](torch.cat([img0, img1, feat0, feat1, time], 1), None, scales[0])
        for block, scale in zip(blocks[1:], scales[1:]):
            flow0, flow1 = flow[:, :2], flow[:, 2:4]
            x = torch.cat([warp(img0, flow0), warp(img1, flow1), warp(feat0, flow0), warp(feat1, flow1),
                           time, mask, hidden], 1)  # (B, 24, H, W)
            delta, mask, hidden = block(x, flow, scale)  # the mask is re-predicted, not accumulated
            flow = flow + delta
        return flow, torch.sigmoid(mask)


# ---------------------------------------------------------------------------------------
# ECCV2022-RIFE HDv3
# ---------------------------------------------------------------------------------------


def conv_prelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.PReLU(out_channels))


def upconv_head(width: int, out_channels: int) -> nn.Sequential:
    """Two 2x transposed convs from 1/4 back to the block's input resolution."""
    return nn.Sequential(
        nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.PReLU(width // 2),
        nn.ConvTranspose2d(width // 2, out_channels, 4, 2, 1),
    )


class IFBlockHD(nn.Module):
    """One pyramid level of HDv3: flow update and mask-logit update, both full resolution."""

    def __init__(self, in_channels: int, width: int = 90):
        super().__init__()
        self.conv0 = nn.Sequential(conv_prelu(in_channels, width // 2, 2), conv_prelu(width // 2, width, 2))
        self.convblock0 = nn.Sequential(conv_prelu(width, width), conv_prelu(width, width))
        self.convblock1 = nn.Sequential(conv_prelu(width, width), conv_prelu(width, width))
        self.convblock2 = nn.Sequential(conv_prelu(width, width), conv_prelu(width, width))
        self.convblock3 = nn.Sequential(conv_prelu(width, width), conv_prelu(width, width))
        self.conv1 = upconv_head(width, 4)  # flow
        self.conv2 = upconv_head(width, 1)  # mask logits

    def forward(self, x: torch.Tensor, flow: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([resize(x, 1.0 / scale), resize(flow, 1.0 / scale) / scale], 1)  # (B, C+4, H/s, W/s)
        feat = self.conv0(x)  # (B, width, H/4s, W/4s)
        for residual in (self.convblock0, self.convblock1, self.convblock2, self.convblock3):
            feat = residual(feat) + feat
        return resize(self.conv1(feat), scale) * scale, resize(self.conv2(feat), scale)


class IFNetHD(nn.Module):
    """ECCV2022-RIFE HDv3 flow estimator (midpoint only)."""

    def __init__(self):
        super().__init__()
        in_channels = 3 + 3 + 1 + 4  # warped pair, mask logits, flow
        self.block0 = IFBlockHD(in_channels)
        self.block1 = IFBlockHD(in_channels)
        self.block2 = IFBlockHD(in_channels)

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor, scales: tuple[float, ...] = (4, 2, 1)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # img0, img1: (B, 3, H, W) BGR
        batch, _, height, width = img0.shape
        flow = img0.new_zeros(batch, 4, height, width)
        mask = img0.new_zeros(batch, 1, height, width)  # logits
        warped0, warped1 = img0, img1
        blocks = (self.block0, self.block1, self.block2)
        for i, (block, scale) in enumerate(zip(blocks, scales)):
            # Estimate from both orders and average, mapping the swapped answer back, so the
            # result is symmetric in the two frames (the mask flips sign with the order).
            flow_ab, mask_ab = block(torch.cat([warped0, warped1, mask], 1), flow, scale)
            flow_ba, mask_ba = block(torch.cat([warped1, warped0, -mask], 1), swap_directions(flow), scale)
            flow = flow + (flow_ab + swap_directions(flow_ba)) / 2
            mask = mask + (mask_ab - mask_ba) / 2
            if i + 1 < len(blocks):
                warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        return flow, torch.sigmoid(mask)
