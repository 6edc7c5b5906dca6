"""The naive tutorial loop ``aebench bench`` compares against: PIL images, per-sample transforms, a DataLoader, fp32."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from aebench.data.pixels import Normalizer
from aebench.training.recipe import Loss


class TutorialImages(Dataset):
    """uint8 images served one PIL image at a time through per-sample transforms, as torchvision's MNIST and
    CIFAR10 datasets do in ``__getitem__`` (``Resize``, grey to RGB where needed, ``ToTensor``)."""

    def __init__(self, images: torch.Tensor, size: int, channels: int) -> None:
        self.images = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C), as PIL wants
        steps = [transforms.Resize(size)]
        if channels == 3 and images.shape[1] == 1:
            steps.append(transforms.Grayscale(num_output_channels=3))
        self.transform = transforms.Compose([*steps, transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        pixels = self.images[index]
        image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        return self.transform(image)


class NaiveLoop:
    """A tutorial's training loop: shuffled DataLoader (no workers), Adam, fp32, loss read every step."""

    def __init__(
        self, model: nn.Module, loss_fn: Loss, data: TutorialImages, batch_size: int, lr: float, normalizer: Normalizer
    ) -> None:
        self.model, self.loss_fn, self.normalizer = model, loss_fn, normalizer
        self.loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.batches: Iterator[torch.Tensor] = iter(())
        self.device = next(model.parameters()).device

    def next_batch(self) -> torch.Tensor:
        """The loader's next batch, starting a new epoch when one ends."""
        batch = next(self.batches, None)
        if batch is None:
            self.batches = iter(self.loader)
            batch = next(self.batches)
        return batch.to(self.device)

    def step(self) -> float:
        """One training step as a tutorial writes it."""
        self.model.train()
        images = self.next_batch()
        loss = self.loss_fn(self.model(self.normalizer(images)), images)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()
