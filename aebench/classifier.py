"""The downstream classifier: a compact CNN trained on clean training images, cached on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from aebench.config import CellConfig, CorruptionConfig, to_plain
from aebench.pixels import Normalizer, make_batch
from aebench.train import batch_starts, channels_last, make_optimizer, make_schedule

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


def train_classifier(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, cell: CellConfig, normalizer: Normalizer
) -> CompactCNN:
    """Train the compact CNN on clean uint8 images (one-cycle Adam, seeded)."""
    cfg = cell.classifier
    torch.manual_seed(cell.seed)
    gen = torch.Generator(device=x.device).manual_seed(cell.seed)
    data_cfg = clean_config(cell).data
    model = CompactCNN(x.shape[1], num_classes).to(x.device, memory_format=torch.channels_last)
    train_cfg = dataclasses.replace(cell.train, optimizer="adam", lr=cfg.lr, schedule="one_cycle", weight_decay=0.0)
    optimizer = make_optimizer(train_cfg, [{"params": list(model.parameters()), "lr": cfg.lr}])
    starts = batch_starts(len(x), cfg.batch_size)
    schedule = make_schedule(train_cfg, optimizer, len(starts), cfg.epochs)
    model.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen, device=x.device)
        for i in tqdm(starts, desc=f"classifier {cell.dataset} ep {epoch + 1}/{cfg.epochs}", leave=False, disable=None):
            idx = perm[i : i + cfg.batch_size]
            _, target = make_batch(x[idx], data_cfg, gen, train=False)
            loss = F.cross_entropy(model(channels_last(normalizer(target))), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


class ClassifierCache:
    """Trains each (dataset, settings, seed) classifier once and keeps it under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, cell: CellConfig, x: torch.Tensor, y: torch.Tensor, num_classes: int, normalizer: Normalizer) -> CompactCNN:
        path = self.folder / f"{classifier_key(cell)}.pt"
        if path.is_file():
            model = CompactCNN(x.shape[1], num_classes)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.to(x.device, memory_format=torch.channels_last).eval()
        log.info("training the %s classifier (seed %d) on %d clean images", cell.dataset, cell.seed, len(x))
        model = train_classifier(x, y, num_classes, cell, normalizer)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
        return model
