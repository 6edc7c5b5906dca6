"""The downstream classifier (a compact CNN, or the study's fine-tuned ImageNet ResNet-34), trained on clean images and cached."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from aebench.config import CLASSIFIER_BODIES, CellConfig, ClassifierConfig, CorruptionConfig, to_plain
from aebench.data.pixels import Normalizer, make_batch
from aebench.files import atomic_write, open_zip, safe_folder
from aebench.hub.weights import timm_body
from aebench.models.classifier import CompactCNN, fastai_head
from aebench.models.resnet import ConcatPoolEncoder, FeatureStages
from aebench.training.fit import fit_classifier

log = logging.getLogger(__name__)
CLASSIFIER_SEED = 0  # one fixed instrument per dataset and settings, whatever the cells' seeds
CACHE_LIMIT = 2**30  # bytes of a cached classifier (the ResNet-34 one: about 85 MB)


def classifier_key(cell: CellConfig) -> str:
    """Cache key: dataset, the clean-pixel data settings and the classifier settings (not the cell's seed: the
    classifier is a fixed instrument, shared by every technique and seed)."""
    data = to_plain(clean_config(cell).data)
    text = json.dumps([cell.source, data, to_plain(cell.classifier)], sort_keys=True)
    return f"{cell.dataset}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def clean_config(cell: CellConfig) -> CellConfig:
    """The cell's settings with corruption and augmentation removed (classifier inputs are clean; the augmentation
    style is reset too, as it means nothing without augmentation)."""
    data = dataclasses.replace(cell.data, corruption=CorruptionConfig(), augment=False, augment_style="affine")
    return dataclasses.replace(cell, data=data)


def make_classifier(cfg: ClassifierConfig, channels: int, num_classes: int, pretrained: bool) -> nn.Module:
    """``cnn``: the compact CNN; ``resnet34``: the study's ImageNet ResNet-34 body, concat pool and fastai head
    (``pretrained`` False for a random init that cached weights replace)."""
    if cfg.model == "cnn":
        return CompactCNN(channels, num_classes)
    fix = "download it once online, or set classifier.weights: /path/resnet34.pth (a state_dict), or use classifier.model: cnn"
    body = timm_body(CLASSIFIER_BODIES[cfg.model], [-1], channels, pretrained, cfg.weights, fix)
    pool = ConcatPoolEncoder(FeatureStages(body, [-1]))
    return nn.Sequential(pool, fastai_head(pool.latent, num_classes))


def train_classifier(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, cell: CellConfig, normalizer: Normalizer
) -> nn.Module:
    """Train the configured classifier on clean uint8 images, normalised as the autoencoders' inputs."""
    cfg = cell.classifier
    data_cfg = clean_config(cell).data
    gen = torch.Generator(device=x.device)  # clean batches draw no randomness
    torch.manual_seed(CLASSIFIER_SEED)  # the initial weights
    model = make_classifier(cfg, x.shape[1], num_classes, pretrained=True).to(x.device)
    fit_classifier(
        model,
        x,
        y,
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        CLASSIFIER_SEED,
        lambda images: normalizer(make_batch(images, data_cfg, gen, train=False)[1]),
        desc=f"classifier {cell.dataset}",
        precision=cfg.precision,
    )
    return model


class ClassifierCache:
    """Trains each (dataset, settings) classifier once, keeps it under ``folder`` and in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loaded: dict[str, nn.Module] = {}
        self.trained = 0  # classifiers trained by this cache (the rest were read back)

    def get(
        self, cell: CellConfig, x: torch.Tensor, y: torch.Tensor, num_classes: int, normalizer: Normalizer
    ) -> nn.Module:
        key = classifier_key(cell)
        if key not in self.loaded:
            self.loaded[key] = self.load_or_train(key, cell, x, y, num_classes, normalizer)
        return self.loaded[key]

    def load_or_train(
        self, key: str, cell: CellConfig, x: torch.Tensor, y: torch.Tensor, num_classes: int, normalizer: Normalizer
    ) -> nn.Module:
        """Read the cached classifier, or train and cache it; parallel workers train it once: one trains while
        the others wait for its file (an exclusive lock beside it, released by the kernel if its holder dies)."""
        path = self.folder / f"{key}.pt"
        model = self.read(path, cell, x, num_classes)
        if model is not None:
            return model
        safe_folder(self.folder.parent, self.folder)
        with waited_lock(self.folder / f".{key}.lock"):
            model = self.read(path, cell, x, num_classes)  # trained by another worker while this one waited
            if model is not None:
                return model
            log.info("training the %s classifier once (%s) on %d clean images", cell.dataset, key, len(x))
            model = train_classifier(x, y, num_classes, cell, normalizer)
            self.trained += 1
            atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))
        return model

    def read(self, path: Path, cell: CellConfig, x: torch.Tensor, num_classes: int) -> nn.Module | None:
        """The classifier cached at ``path``; None when there is none (a damaged file is discarded)."""
        if not path.is_file():
            return None
        model = make_classifier(cell.classifier, x.shape[1], num_classes, pretrained=False)
        try:
            with open_zip(path, CACHE_LIMIT) as fh:  # never through a link, sizes checked before loading
                model.load_state_dict(torch.load(fh, map_location="cpu", weights_only=True))
        except Exception as exc:  # damaged or foreign file: the cache is only a cache, retrain
            log.warning("%s: damaged classifier cache discarded (%s: %s); retraining", path, type(exc).__name__, exc)
            path.unlink(missing_ok=True)
            return None
        return model.to(x.device).eval()


@contextmanager
def waited_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (never through a link), waiting for another holder to finish."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
