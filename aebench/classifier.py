"""The downstream classifier (a compact CNN, or the study's fine-tuned ImageNet ResNet-34), trained on clean images and cached."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from aebench.config import CellConfig, ClassifierConfig, CorruptionConfig, TrainConfig, to_plain
from aebench.models.resnet import ConcatPoolEncoder, FeatureStages
from aebench.pixels import Normalizer, make_batch
from aebench.train import batch_starts, channels_last, make_optimizer, make_schedule
from aebench.weights import timm_body

log = logging.getLogger(__name__)


class CompactCNN(nn.Module):
    """Three conv+BN+ReLU stages (32, 64, 128 channels; max-pool after the first two), global average pool, linear."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()

        def stage(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.net = nn.Sequential(
            *stage(in_channels, 32), nn.MaxPool2d(2),
            *stage(32, 64), nn.MaxPool2d(2),
            *stage(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def classifier_key(cell: CellConfig) -> str:
    """Cache key: dataset, the clean-pixel data settings, classifier settings and seed."""
    data = to_plain(dataclasses.replace(cell.data, corruption=CorruptionConfig(), augment=False))
    text = json.dumps([cell.dataset, data, to_plain(cell.classifier), cell.seed], sort_keys=True)
    return f"{cell.dataset}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def clean_config(cell: CellConfig) -> CellConfig:
    """The cell's settings with corruption and augmentation removed (classifier inputs are clean)."""
    data = dataclasses.replace(cell.data, corruption=CorruptionConfig(), augment=False)
    return dataclasses.replace(cell, data=data)


def fastai_head(features: int, num_classes: int) -> nn.Sequential:
    """fastai v1's ``create_head`` after its concat pool: BN, dropout 0.25, Linear(->512), ReLU, BN, dropout 0.5, Linear."""
    return nn.Sequential(
        nn.BatchNorm1d(features), nn.Dropout(0.25), nn.Linear(features, 512), nn.ReLU(inplace=True),
        nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, num_classes),
    )


def make_classifier(cfg: ClassifierConfig, channels: int, num_classes: int, pretrained: bool) -> nn.Module:
    """``cnn``: the compact CNN; ``resnet34``: the study's ImageNet ResNet-34 body, concat pool and fastai head
    (``pretrained`` False for a random init that cached weights replace)."""
    if cfg.model == "cnn":
        return CompactCNN(channels, num_classes)
    fix = "download it once online, or set classifier.weights: /path/resnet34.pth (a state_dict), or use classifier.model: cnn"
    body = timm_body("resnet34.tv_in1k", [-1], channels, pretrained, cfg.weights, fix)
    pool = ConcatPoolEncoder(FeatureStages(body, [-1]))
    return nn.Sequential(pool, fastai_head(pool.latent, num_classes))


def fit_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    inputs: Callable[[torch.Tensor], torch.Tensor],
    desc: str = "classifier",
) -> None:
    """Train ``model`` in place with cross-entropy on uint8 images ``x`` (``inputs`` maps a uint8 batch to
    the model's input), one-cycle Adam, seeded; leaves it in eval mode."""
    torch.manual_seed(seed)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adam", schedule="one_cycle")
    optimizer = make_optimizer(cfg, [{"params": list(model.parameters()), "lr": lr}])
    starts = batch_starts(len(x), batch_size)
    schedule = make_schedule(cfg, optimizer, len(starts), epochs)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen, device=x.device)
        for i in tqdm(starts, desc=f"{desc} ep {epoch + 1}/{epochs}", leave=False, disable=None):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(channels_last(inputs(x[idx]))), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()


def train_classifier(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, cell: CellConfig, normalizer: Normalizer
) -> nn.Module:
    """Train the configured classifier on clean uint8 images, normalised as the autoencoders' inputs."""
    cfg = cell.classifier
    data_cfg = clean_config(cell).data
    gen = torch.Generator(device=x.device)  # clean batches draw no randomness
    torch.manual_seed(cell.seed)  # the initial weights
    model = make_classifier(cfg, x.shape[1], num_classes, pretrained=True).to(x.device, memory_format=torch.channels_last)
    fit_classifier(
        model, x, y, cfg.epochs, cfg.batch_size, cfg.lr, cell.seed,
        lambda images: normalizer(make_batch(images, data_cfg, gen, train=False)[1]), desc=f"classifier {cell.dataset}",
    )
    return model


class ClassifierCache:
    """Trains each (dataset, settings, seed) classifier once and keeps it under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, cell: CellConfig, x: torch.Tensor, y: torch.Tensor, num_classes: int, normalizer: Normalizer) -> nn.Module:
        path = self.folder / f"{classifier_key(cell)}.pt"
        if path.is_file():
            model = make_classifier(cell.classifier, x.shape[1], num_classes, pretrained=False)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.to(x.device, memory_format=torch.channels_last).eval()
        log.info("training the %s classifier (seed %d) on %d clean images", cell.dataset, cell.seed, len(x))
        model = train_classifier(x, y, num_classes, cell, normalizer)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
        return model
