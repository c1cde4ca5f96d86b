"""VGG-19 convolutional features for the perceptual loss, loading timm's ``vgg19.tv_in1k`` weights.

The layer list mirrors torchvision's ``features`` indices (conv at 0, 2, 5, ...; ReLU after
each conv; max-pool closing each stage), so the checkpoint's ``features.N.weight`` keys load as
they are. The classifier (``pre_logits.*``, ``head.*``) is dropped: only features are used.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Convolutions per stage (VGG-19 configuration E) and their output channels.
STAGES = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
# ReLU outputs compared by the loss: relu1_2, relu2_2, relu3_4, relu4_4 (torchvision indices).
LOSS_LAYERS = (3, 8, 17, 26)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layers() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for convs, channels in STAGES:
        for _ in range(convs):
            layers += [nn.Conv2d(in_channels, channels, 3, 1, 1), nn.ReLU(inplace=False)]
            in_channels = channels
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """Frozen VGG-19 trunk, cut after the deepest loss layer; input RGB in [0, 1]."""

    def __init__(self, state_dict: dict[str, torch.Tensor]):
        super().__init__()
        self.features = vgg19_layers()
        self.features.load_state_dict({k.removeprefix("features."): v for k, v in state_dict.items()
                                       if k.startswith("features.")})
        self.features = self.features[: max(LOSS_LAYERS) + 1]  # later layers are never used
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std  # (B, 3, H, W)
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in LOSS_LAYERS:
                out.append(x)
        return out

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean L1 between feature maps, the sum over layers."""
        return sum(F.l1_loss(a, b) for a, b in zip(self(output), self(target)))


def load_vgg(settings) -> VGGFeatures:
    """Raises ``hub.WeightsUnavailable`` (with where to put the file) when the weights are missing."""
    from .. import hub

    return VGGFeatures(hub.load_state_dict("vgg19", settings))
