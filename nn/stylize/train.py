"""Training the style generator on painted keyframes, and its model file.

Each step takes a batch of random patches from the keyframes (inside their masks), so
one keyframe yields thousands of distinct examples and a step costs the same at any frame
size. The learning rate follows a cosine from the start to the end of the time budget,
which is known in advance here: a high rate learns the look fast, the low tail sharpens it.

Model files are safetensors: the generator's tensors, with the configuration and the
number of steps trained as JSON in the metadata. Nothing is ever pickled.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F

from .. import files
from .guides import GUIDE_CHANNELS, identity_positions, network_input
from .network import Generator, PatchDiscriminator

FORMAT = "frameweaver-stylize/1"
# Settings the caller may override (task params["settings"], tests); the rest are tuned defaults.
OVERRIDABLE = ("patch_size", "batch_size", "learning_rate", "blocks", "channels", "shift", "adversarial",
               "perceptual")


@dataclass(frozen=True)
class StyleConfig:
    """Defaults tuned on lynx S1 at 512x288 with 60 s of 1-thread CPU training (docs/BENCHMARKS.md):
    16 channels / 2 blocks beat 24 / 3 (more steps in the budget), 2e-3 beat 4e-3, and a guide
    shift of 8 px beat 2 and 4 px (2 px barely improves on the carried key at all)."""

    guides: tuple[str, ...] = ("key",)  # "position" as well measured no better
    channels: int = 16
    blocks: int = 2
    patch_size: int = 48
    batch_size: int = 16
    learning_rate: float = 2e-3
    shift: float = 8.0  # px: how far training misaligns the key guide, so the net learns to re-align it
    # Loss weights; 0 switches a term (and its cost) off. The adversarial term about doubles a
    # step's cost and its effect on held-out frames is not measured yet: off unless asked for.
    adversarial: float = 0.0
    perceptual: float = 0.05  # used only on a GPU with the VGG-19 weights installed (see task.py)

    @property
    def in_channels(self) -> int:
        return 3 + sum(GUIDE_CHANNELS[g] for g in self.guides)

    @property
    def base(self) -> int:
        """Input channel where the generator's base image starts: the carried key, else the frame."""
        if "key" not in self.guides:
            return 0
        before = self.guides[: self.guides.index("key")]
        return 3 + sum(GUIDE_CHANNELS[g] for g in before)

    def generator(self) -> Generator:
        return Generator(self.in_channels, self.channels, self.blocks, self.base)

    def with_settings(self, settings: dict | None) -> "StyleConfig":
        unknown = set(settings or {}) - set(OVERRIDABLE)
        if unknown:
            raise ValueError(f"Unknown style settings: {', '.join(sorted(unknown))}; known: {', '.join(OVERRIDABLE)}")
        types = {f.name: f.type for f in fields(self)}
        return replace(self, **{k: (float if types[k] == "float" else int)(v) for k, v in (settings or {}).items()})

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "StyleConfig":
        values = json.loads(text)
        return cls(**{**values, "guides": tuple(values["guides"])})


@dataclass
class Keyframe:
    """One training pair, all (1, C, H, W) on the training device, same H and W."""

    frame: torch.Tensor  # footage RGB
    painted: torch.Tensor  # the artist's version, RGB
    mask: torch.Tensor | None = None  # 1 where the style applies


class Trainer:
    """Trains a generator on keyframes, a step at a time, so callers can report, preview and stop.

    ``vgg`` (a ``vgg.VGGFeatures``) enables the perceptual term; without it training is L1
    (+ adversarial), which is what runs when the VGG-19 weights are not installed.
    """

    def __init__(self, keys: list[Keyframe], config: StyleConfig, device, generator: Generator | None = None,
                 vgg=None, steps: int = 0):
        if not keys:
            raise ValueError("Training needs at least one keyframe")
        self.keys, self.config, self.device, self.steps = keys, config, torch.device(device), steps
        self.generator = (generator or config.generator()).to(self.device, memory_format=torch.channels_last)
        self.generator.train()
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.learning_rate, betas=(0.9, 0.99))
        self.vgg = vgg.to(self.device) if vgg is not None and config.perceptual > 0 else None
        self.discriminator = None
        if config.adversarial > 0:
            self.discriminator = PatchDiscriminator(config.channels).to(self.device)
            self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.learning_rate,
                                                betas=(0.5, 0.99))
        height, width = keys[0].frame.shape[-2:]
        patch = config.patch_size
        if height < patch or width < patch:
            raise ValueError(f"Frames of {width}x{height} are smaller than the {patch} px training patch")
        self.identity = identity_positions(height, width, self.device)  # (1, 2, H, W)
        # Patch corners are drawn where the mask is, so masked-out footage is never learned.
        self.corners = []
        for key in keys:
            weight = torch.ones(height - patch + 1, width - patch + 1, device=self.device)
            if key.mask is not None:  # mask coverage of each patch, via a box filter
                weight = F.avg_pool2d(key.mask[0], patch, stride=1)[0] + 1e-6
            self.corners.append(weight.flatten())

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input (B, in_channels, P, P), target (B, 3, P, P), loss weight (B, 1, P, P)."""
        cfg, patch = self.config, self.config.patch_size
        height, width = self.keys[0].frame.shape[-2:]
        choice = torch.randint(len(self.keys), (cfg.batch_size,)).tolist()
        inputs, targets, weights = [], [], []
        for index in sorted(set(choice)):
            key, count = self.keys[index], choice.count(index)
            corner = torch.multinomial(self.corners[index], count, replacement=True)
            ys, xs = (corner // (width - patch + 1)).tolist(), (corner % (width - patch + 1)).tolist()

            def crop(image):  # (1, C, H, W) -> (count, C, P, P)
                return torch.cat([image[..., y:y + patch, x:x + patch] for y, x in zip(ys, xs)])

            # Misalign the key guide by a smooth random field of up to cfg.shift px, as chained flow does.
            shift = torch.randn(count, 2, 3, 3, device=self.device) * torch.rand(count, 1, 1, 1, device=self.device)
            shift = F.interpolate(shift, size=(patch, patch), mode="bicubic", align_corners=True) * cfg.shift
            scale = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], device=self.device)
            positions = crop(self.identity) + shift * scale.view(1, 2, 1, 1)
            frame = crop(key.frame)
            inputs.append(network_input(cfg.guides, frame, positions, key.painted))
            targets.append(crop(key.painted))
            weights.append(crop(key.mask) if key.mask is not None else torch.ones_like(frame[:, :1]))
        return torch.cat(inputs), torch.cat(targets), torch.cat(weights)

    def step(self, progress: float = 0.0) -> float:
        """One optimisation step; ``progress`` in [0, 1] is how far through the budget (sets the rate)."""
        cfg = self.config
        lr = cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0))))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        inputs, target, weight = self.batch()
        output = self.generator(inputs.contiguous(memory_format=torch.channels_last))
        # Where the mask is off the footage passes through, so the target there is irrelevant.
        loss = ((output - target).abs() * weight).sum() / (weight.sum() * 3 + 1e-6)
        blended = output * weight + target * (1 - weight)
        if self.vgg is not None:
            loss = loss + cfg.perceptual * self.vgg.loss(blended, target)
        if self.discriminator is not None:
            loss = loss + cfg.adversarial * F.softplus(-self.discriminator(blended)).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.discriminator is not None:
            real, fake = self.discriminator(target), self.discriminator(blended.detach())
            d_loss = F.softplus(-real).mean() + F.softplus(fake).mean()
            for group in self.d_optimizer.param_groups:
                group["lr"] = lr
            self.d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.d_optimizer.step()
        self.steps += 1
        return loss.item()

    def train(self, seconds: float, should_stop: Callable[[], bool] = lambda: False,
              report: Callable[[float, float], None] | None = None, report_every: float = 5.0) -> list[float]:
        """Step until ``seconds`` have passed or ``should_stop()``; returns the losses.

        ``report(fraction, loss)`` is called about every ``report_every`` seconds (and at the end).
        """
        start = last = time.perf_counter()
        losses = []
        while (elapsed := time.perf_counter() - start) < seconds and not should_stop():
            losses.append(self.step(elapsed / seconds))
            if report and time.perf_counter() - last >= report_every:
                last = time.perf_counter()
                report(min((last - start) / seconds, 1.0), sum(losses[-20:]) / len(losses[-20:]))
        if report and losses:
            report(1.0, sum(losses[-20:]) / len(losses[-20:]))
        return losses

    def save(self, path: str, painted: dict[int, torch.Tensor] | None = None) -> None:
        save_model(path, self.generator, self.config, self.steps, painted)


PAINTED = "painted."  # tensor-name prefix of the keyframes stored with a model


def save_model(path: str, generator: Generator, config: StyleConfig, steps: int,
               painted: dict[int, torch.Tensor] | None = None) -> None:
    """Write a new file (refuses to overwrite), complete under its final name or not at all.

    ``painted`` (key index -> (1, 3, H, W)) is stored too, so the model can later be
    applied (to the same footage, or a longer cut of it) without the keyframe files.
    """
    from safetensors.torch import save

    tensors = {k: v.detach().float().contiguous().cpu() for k, v in generator.state_dict().items()}
    tensors.update({f"{PAINTED}{i}": v.detach().float().contiguous().cpu() for i, v in (painted or {}).items()})
    files.write_new(path, save(tensors, metadata={"format": FORMAT, "config": config.to_json(), "steps": str(steps)}))


def load_model(path: str, device) -> tuple[Generator, StyleConfig, int, dict[int, torch.Tensor]]:
    """(generator in eval mode, its config, steps trained, stored keyframes) from a ``save_model`` file."""
    from .. import hub

    tensors, meta = hub.read_safetensors(path)
    hub.refuse_non_finite(path, tensors)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a Frameweaver style model (format {meta.get('format')!r})")
    try:
        config = StyleConfig.from_json(meta["config"])
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a readable Frameweaver style model (its settings: {error!r})") from error
    painted = {int(k[len(PAINTED):]): v.float().to(device) for k, v in tensors.items() if k.startswith(PAINTED)}
    generator = config.generator()
    try:
        generator.load_state_dict({k: v for k, v in tensors.items() if not k.startswith(PAINTED)})
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"Cannot use {path}: its tensors do not fit the style model it describes ({first})") from error
    return generator.to(device).eval(), config, int(meta.get("steps", 0)), painted
