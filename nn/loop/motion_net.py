"""A learned motion predictor: one still in, one static velocity field out.

Holynski et al. 2021 train an image-to-image network to predict a single Eulerian flow field
from one picture, with the clip's average optical flow as the target; Endo et al. 2019
("Animating Landscape") learn landscape motion the same way, from time-lapse clips. This is a
compact U-Net for that job, trained by ``train.py`` on the user's own clips. Its field is a
drop-in replacement for the one ``hints`` diffuses from arrows: pixels per frame, x then y,
the forward motion of each pixel of the still.

The network always runs at a working size (longer side ``working_side``, both sides multiples
of 32), whatever the still's size: the field is smooth, the cost stays fixed, and a model
trained on 640x360 clips sees 4K stills at the scale it learned. The field is then resized to
the still and its values scaled by the size ratio, since a pixel of motion at the working size
is several pixels of the still.

Model files are safetensors with a ``kind`` tag and the settings in the metadata; nothing is
ever unpickled (legacy .pth files go through ``hub.load_tensors``' weights-only path).
"""
from __future__ import annotations

import json
import os
import tempfile

import torch
import torch.nn.functional as F
from torch import nn

from .. import files
from ..motion.flow import motion_view
from ..worker import TaskError

KIND = "frameweaver-loop-motion"
FORMAT = "1"  # bumped when the tensors or their meaning change
WORKING_SIDE = 384  # longer side the network runs at; sky motion of 1-2 px per frame at 640x360 stays visible
MULTIPLE = 32  # five stride-2 stages: working sides are multiples of this
WIDTHS = (16, 32, 48, 64, 96, 128)  # channels at 1, 1/2, ... 1/32 resolution: about 1.1 M parameters


def conv_act(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    # LeakyReLU keeps gradients alive for the all-negative units a from-scratch net starts with.
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2, inplace=True))


class Down(nn.Module):
    """Half the resolution (a stride-2 conv), then one more conv at the new scale."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_act(in_channels, out_channels, stride=2), conv_act(out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Context(nn.Module):
    """Adds what the whole picture shows to every position at the coarsest level.

    Which way the sky drifts is a property of the scene (wind, the camera's heading), not of
    one patch of cloud; the mean over all positions carries that to each of them.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.mix = nn.Sequential(nn.Linear(channels, channels), nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scene = self.mix(x.mean((2, 3)))  # (B, C)
        return x + scene[:, :, None, None]


class Up(nn.Module):
    """Bilinear x2 and a conv, then the skip from the encoder at that scale is fused in.

    Bilinear rather than transposed convs: motion fields are smooth and a checkerboard in
    the field would show as shimmering particles in the loop.
    """

    def __init__(self, in_channels: int, skip_channels: int):
        super().__init__()
        self.conv = conv_act(in_channels, skip_channels)
        self.fuse = conv_act(2 * skip_channels, skip_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False))
        return self.fuse(torch.cat([x, skip], 1))  # the skip keeps region edges (sky | rock) sharp


class MotionPredictor(nn.Module):
    """RGB (B, 3, H, W) in 0..1 -> velocity (B, 2, H, W) in pixels per frame at that size.

    H and W must be multiples of ``MULTIPLE``; ``predict_velocity`` takes care of that. No
    normalisation layers: the net trains on crops and runs on whole frames, and batch
    statistics would differ between those. The last conv starts at zero, so an untrained
    net predicts "nothing moves", and training only has to add the motion it sees.
    """

    def __init__(self, working_side: int = WORKING_SIDE, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        if working_side % MULTIPLE or working_side < MULTIPLE:
            raise ValueError(f"The working side must be a positive multiple of {MULTIPLE}, got {working_side}")
        if len(widths) != 6:
            raise ValueError(f"Expected 6 widths (1 to 1/32 resolution), got {len(widths)}")
        self.working_side, self.widths = int(working_side), tuple(int(w) for w in widths)
        self.metadata: dict[str, str] = {}  # filled by load_predictor
        w = self.widths
        self.enter = nn.Sequential(conv_act(3, w[0]), conv_act(w[0], w[0]))
        self.downs = nn.ModuleList(Down(a, b) for a, b in zip(w[:-1], w[1:]))
        self.context = Context(w[-1])
        self.ups = nn.ModuleList(Up(b, a) for a, b in reversed(list(zip(w[:-1], w[1:]))))
        self.exit = nn.Conv2d(w[0], 2, 3, 1, 1)
        for layer in self.modules():
            # He init for LeakyReLU: PyTorch's default shrinks activations about 1.5x per conv, and
            # after the 20 convs of the round trip the features are 10x too small to learn from quickly.
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(layer.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.exit.weight)
        nn.init.zeros_(self.exit.bias)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = self.enter(rgb * 2.0 - 1.0)  # (B, w0, H, W), inputs centred on 0
        skips = [x]
        for down in self.downs:
            x = down(x)  # (B, w[i+1], H / 2^(i+1), W / 2^(i+1))
            skips.append(x)
        x = self.context(skips.pop())  # (B, w5, H/32, W/32)
        for up in self.ups:
            x = up(x, skips.pop())  # back up one scale at a time, to (B, w0, H, W)
        return self.exit(x)  # (B, 2, H, W), px per frame at this size


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def working_size(height: int, width: int, side: int = WORKING_SIDE) -> tuple[int, int]:
    """(h, w): the longer side becomes ``side``, the other keeps the aspect, both multiples of 32."""
    scale = side / max(height, width)
    return (max(MULTIPLE, round(height * scale / MULTIPLE) * MULTIPLE),
            max(MULTIPLE, round(width * scale / MULTIPLE) * MULTIPLE))


def to_working(rgb: torch.Tensor, side: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, h, w) at the working size; antialiased, so 4K detail does not alias."""
    size = working_size(*rgb.shape[-2:], side)
    if tuple(rgb.shape[-2:]) == size:
        return rgb
    return F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=True)


def resize_field(field: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 2, h, w) px/frame at h x w -> (B, 2, H, W) px/frame at ``size`` = (H, W).

    x is scaled by W / w and y by H / h: working sizes round each side to 32 on its own.
    """
    height, width = field.shape[-2:]
    if (height, width) == tuple(size):
        return field
    gain = field.new_tensor([size[1] / width, size[0] / height]).view(1, 2, 1, 1)
    return F.interpolate(field, size=size, mode="bilinear", align_corners=False) * gain


@torch.no_grad()
def predict_velocity(model: MotionPredictor, still: torch.Tensor, device, is_float: bool = False) -> torch.Tensor:
    """(1, 2, H, W) float32 velocity in px/frame, x then y, on ``device``, for a still (1, C, H, W).

    ``still`` holds values in 0..1 (any C; alpha is ignored, grey is spread to RGB); pass
    ``is_float`` for scene-linear EXR data. ``model`` must already be on ``device``.
    """
    device = torch.device(device)
    height, width = still.shape[-2:]
    rgb = to_working(motion_view(still.to(device).float(), is_float), model.working_side)  # (1, 3, h, w)
    was_training = model.training
    model.eval()
    field = model(rgb).float()  # (1, 2, h, w)
    model.train(was_training)
    return resize_field(field, (height, width))


def save_predictor(model: MotionPredictor, path: str, metadata: dict | None = None, overwrite: bool = False) -> None:
    """Write ``model`` as safetensors, complete under its final name or not at all.

    ``metadata`` (e.g. frames_step, training_clips, steps) is stored as strings beside the
    kind tag, format, working side and widths. An existing file is refused unless ``overwrite``.
    """
    from safetensors.torch import save

    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update(kind=KIND, format=FORMAT, working_side=str(model.working_side), widths=json.dumps(model.widths))
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    files.write_new(path, save(tensors, metadata=meta), replace=overwrite)


def _read_metadata(path: str) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as f:
            return dict(f.metadata() or {})
    except Exception as error:  # safetensors raises its own (Rust) error type for malformed headers
        raise TaskError(f"The motion model {path} is not a readable safetensors file ({error}). "
                        "Train one with 'python -m nn.loop.train'.") from error


def load_predictor(path: str, device, converted_dir: str | None = None) -> MotionPredictor:
    """The model in ``path`` on ``device`` in eval mode, its file metadata in ``model.metadata``.

    ``.safetensors`` files must carry the ``kind`` tag; anything else is read as a legacy
    checkpoint through ``hub.load_tensors`` (tensors only, cached as safetensors in
    ``converted_dir``). Raises ``TaskError``, naming the file, when it is missing, unreadable,
    of another kind, or holds tensors that do not fit the network.
    """
    from .. import hub

    if not os.path.isfile(path):
        raise TaskError(f"The motion model {path} does not exist.")
    meta: dict[str, str] = {}
    if path.endswith(".safetensors"):
        meta = _read_metadata(path)
        if meta.get("kind") != KIND:
            raise TaskError(f"{path} is not a Frameweaver loop motion model (kind {meta.get('kind')!r}, "
                            f"expected {KIND!r}).")
        if meta.get("format", FORMAT) != FORMAT:
            raise TaskError(f"The motion model {path} has format {meta['format']}; this version reads format "
                            f"{FORMAT}. Train it again with 'python -m nn.loop.train'.")
    converted_dir = converted_dir or os.path.join(tempfile.gettempdir(), "frameweaver-converted")
    try:
        tensors = hub.load_given_file(path, converted_dir)
        model = MotionPredictor(int(meta.get("working_side", WORKING_SIDE)),
                                tuple(json.loads(meta["widths"])) if "widths" in meta else WIDTHS)
    except hub.WeightsRejected as error:  # its message names the file
        raise TaskError(f"Cannot load the motion model: {error}") from error
    except (ValueError, TypeError) as error:
        raise TaskError(f"Cannot load the motion model {path}: {error}") from error
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tensors[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        found = (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        parts = [f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}" for label, names in found if names]
        raise TaskError(f"The tensors in {path} do not fit the loop motion network ({'; '.join(parts)}).")
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    model.metadata = meta
    return model.to(torch.device(device)).eval()
