"""Batch-level pixel operations on float images in [0, 1]: normalisation, corruption, augmentation.

All work on whole batches on the device (no per-sample Python) and take an explicit generator so
runs are reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aebench.config import CorruptionConfig, DataConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to float in [0, 1]."""
    return x.float().div_(255.0)


class Normalizer:
    """Per-channel ``(x - mean) / std`` for model inputs; targets stay in [0, 1]."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean = mean.view(1, -1, 1, 1)
        self.std = std.view(1, -1, 1, 1)

    @classmethod
    def create(cls, mode: str, x_train: torch.Tensor) -> Normalizer:
        """``dataset`` statistics of the uint8 training images, ``imagenet`` constants, or identity."""
        channels = x_train.shape[1]
        if mode == "imagenet":
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
            if channels == 1:
                mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
        elif mode == "dataset":
            sample = x_train[:10_000].float().div(255.0)
            mean, std = sample.mean(dim=(0, 2, 3)), sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
        else:
            mean, std = torch.zeros(channels), torch.ones(channels)
        return cls(mean.to(x_train.device), std.to(x_train.device))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def state(self) -> dict[str, list[float]]:
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}


def corrupt(x: torch.Tensor, cfg: CorruptionConfig, gen: torch.Generator) -> torch.Tensor:
    """Apply the configured corruption to a clean batch (the target stays ``x``)."""
    if cfg.kind == "none":
        return x
    if cfg.kind == "gaussian":
        out = x + cfg.sigma * torch.randn(x.shape, generator=gen, device=x.device)
    elif cfg.kind == "mask":  # masking noise: drop pixels to 0, no inverted-dropout rescaling
        out = x * (torch.rand(x.shape, generator=gen, device=x.device) >= cfg.p)
    else:  # salt_pepper: a fraction p of pixels set to 0 or 1 with equal odds
        hit = torch.rand(x.shape, generator=gen, device=x.device) < cfg.p
        salt = torch.rand(x.shape, generator=gen, device=x.device) < 0.5
        out = torch.where(hit, salt.to(x.dtype), x)
    return out.clamp(0, 1) if cfg.clip else out


class Draws:
    """Per-image random draws for a batch of ``n`` from the run's generator."""

    def __init__(self, n: int, gen: torch.Generator, device: torch.device) -> None:
        self.n, self.gen, self.device = n, gen, device

    def uniform(self, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(self.n, generator=self.gen, device=self.device)

    def apply(self, p: float) -> torch.Tensor:
        return torch.rand(self.n, generator=self.gen, device=self.device) < p


LOGIT_EPS = 1e-7  # fastai v1's logit_ clamp


def dihedral(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Image i in orientation ``k[i]`` of the 8 of the dihedral group (as fastai v1's ``dihedral``): bit 4 transposes,
    then bit 1 flips left-right and bit 2 upside down; 0 is the identity. Exact: pixels are moved, never resampled."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"dihedral augmentation needs square images (got {x.shape[-2]}x{x.shape[-1]})")
    k = k.view(-1, 1, 1, 1)
    x = torch.where(k & 4 > 0, x.transpose(-1, -2), x)
    x = torch.where(k & 1 > 0, x.flip(-1), x)
    return torch.where(k & 2 > 0, x.flip(-2), x)


def logit_lighting(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    """fastai v1's brightness then contrast, in logit space: ``sigmoid((logit(x) + logit(brightness)) * contrast)``
    per image (brightness 0.5 and contrast 1 leave an image as it is; pixels at 0 or 1 move by under 1e-5)."""
    logits = torch.logit(x, eps=LOGIT_EPS) + torch.logit(brightness).view(-1, 1, 1, 1)
    return torch.sigmoid(logits * contrast.view(-1, 1, 1, 1))


def augment_dihedral(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The study's augmentation, fastai v1's ``get_transforms(flip_vert=True, max_lighting=0.2, p_affine=0)``: one of
    the 8 dihedral orientations (uniform), then brightness (change uniform in [0.4, 0.6]) and contrast (scale
    log-uniform in [0.8, 1.25]) in logit space, each with p 0.75. Rotation, zoom and warp never apply (p_affine 0).

    Returns the augmented batch, used as both input and target.
    """
    draw = Draws(x.shape[0], gen, x.device)
    k = torch.randint(8, (x.shape[0],), generator=gen, device=x.device)
    brightness = torch.where(draw.apply(0.75), draw.uniform(0.4, 0.6), torch.full_like(k, 0.5, dtype=x.dtype))
    contrast = torch.where(
        draw.apply(0.75), draw.uniform(math.log(0.8), math.log(1.25)).exp(), torch.ones_like(x[:, 0, 0, 0])
    )
    return logit_lighting(dihedral(x, k), brightness, contrast)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """aebench's first augmentation (``data.augment_style: affine``): left-right flip, rotate +-10 deg, zoom up to
    1.1 (bilinear resampling), lighting 0.2 (p=0.75 each).

    Returns the augmented batch, used as both input and target.
    """
    n, dev = x.shape[0], x.device
    uniform, apply = Draws(n, gen, dev).uniform, Draws(n, gen, dev).apply

    flip = torch.where(apply(0.5), -1.0, 1.0)
    angle = torch.where(apply(0.75), uniform(-10, 10), torch.zeros(n, device=dev)) * (math.pi / 180)
    scale = 1.0 / torch.where(apply(0.75), uniform(1.0, 1.1), torch.ones(n, device=dev))
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = torch.cos(angle) * scale * flip
    theta[:, 0, 1] = -torch.sin(angle) * scale
    theta[:, 1, 0] = torch.sin(angle) * scale * flip
    theta[:, 1, 1] = torch.cos(angle) * scale
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    light = apply(0.75).view(-1, 1, 1, 1)
    brightness = torch.logit(uniform(0.4, 0.6)).view(-1, 1, 1, 1)
    contrast = uniform(0.8, 1.25).view(-1, 1, 1, 1)
    lit = torch.sigmoid(torch.logit(out.clamp(1e-4, 1 - 1e-4)) * contrast + brightness)
    return torch.where(light, lit, out).clamp_(0, 1)


def make_batch(
    images: torch.Tensor, cfg: DataConfig, gen: torch.Generator, train: bool, size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images to (corrupted input in [0,1], clean target in [0,1]), optionally resized."""
    target = to_float(images)
    if size and size != target.shape[-1]:
        target = F.interpolate(target, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if cfg.binarize:
        target = (target >= 0.5).float()
    if train and cfg.augment:
        target = augment_dihedral(target, gen) if cfg.augment_style == "dihedral" else augment(target, gen)
    return corrupt(target, cfg.corruption, gen), target
