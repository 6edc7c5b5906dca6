"""Visual records of one cell: per-epoch reconstruction grids (+ GIF) and 2-D latent codes of the test set."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import nn

from aebench.config import CellConfig
from aebench.data.pixels import Normalizer, make_batch
from aebench.files import atomic_write, safe_folder, write_npz
from aebench.training.batches import EVAL_SEED, eval_batches

SNAPSHOT_IMAGES = 12  # the first test images, as the FFN denoising project shows
PAD, SCALE = 2, 2  # grid spacing and nearest-neighbour enlargement, in pixels


def grid(rows: list[torch.Tensor]) -> np.ndarray:
    """Rows of (N, C, H, W) images in [0, 1] as one uint8 picture (H x W, or H x W x 3 for colour)."""
    n, c, h, w = rows[0].shape
    canvas = torch.ones(c, len(rows) * (h + PAD) + PAD, n * (w + PAD) + PAD)
    for r, images in enumerate(rows):
        for i, image in enumerate(images.clamp(0, 1).float().cpu()):
            top, left = PAD + r * (h + PAD), PAD + i * (w + PAD)
            canvas[:, top : top + h, left : left + w] = image
    canvas = canvas.repeat_interleave(SCALE, 1).repeat_interleave(SCALE, 2)
    pixels = (canvas * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return pixels[..., 0] if c == 1 else pixels


class Snapshots:
    """An ``on_epoch_end`` hook: every ``train.snapshot_every`` epochs (and at the last) writes
    ``snapshots/epoch_XXX.png`` with rows corrupted input / reconstruction / clean target of the
    first 12 test images (the same corruption each time); ``write_gif`` assembles ``snapshots.gif`` from those
    files (so a resumed cell's GIF keeps the epochs before the interruption)."""

    def __init__(self, x_test: torch.Tensor, cell: CellConfig, normalizer: Normalizer, folder: Path) -> None:
        gen = torch.Generator(device=x_test.device).manual_seed(EVAL_SEED)
        self.inputs, self.target = make_batch(x_test[:SNAPSHOT_IMAGES], cell.data, gen, train=False)
        self.normalizer = normalizer
        self.every, self.last = cell.train.snapshot_every, cell.train.epochs
        self.folder = folder

    @torch.no_grad()
    def __call__(self, epoch: int, model: nn.Module) -> None:
        if epoch % self.every and epoch != self.last:
            return
        was_training = model.training
        model.eval()
        output = model(self.normalizer(self.inputs))
        model.train(was_training)
        frame = grid([self.inputs, output, self.target])
        folder = safe_folder(self.folder, self.folder / "snapshots")
        atomic_write(folder / f"epoch_{epoch:03d}.png", lambda tmp: iio.imwrite(tmp, frame, extension=".png"))

    def write_gif(self, seconds_per_frame: float = 0.5) -> Path | None:
        """The snapshots in epoch order as a looping GIF (None when no snapshot was taken)."""
        frames = [iio.imread(f) for f in sorted((self.folder / "snapshots").glob("epoch_*.png"))]
        if not frames:
            return None
        path = self.folder / "snapshots.gif"
        stacked, duration = np.stack(frames), int(seconds_per_frame * 1000)
        atomic_write(path, lambda tmp: iio.imwrite(tmp, stacked, extension=".gif", duration=duration, loop=0))
        return path


@torch.no_grad()
def save_latents(
    model: nn.Module,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    cell: CellConfig,
    normalizer: Normalizer,
    path: Path,
    class_names: tuple[str, ...] = (),
) -> bool:
    """When the model's ``encode`` gives 2 numbers per image, save ``z`` (N, 2) for the clean test
    images, their ``labels`` and the ``class_names`` (index = label) to ``path`` (npz); returns whether it did."""
    encode = getattr(model, "encode", None)
    if encode is None:
        return False
    model.eval()
    codes = []
    for _, target in eval_batches(x_test, cell, normalizer):
        z = encode(normalizer(target)).flatten(1)
        if z.shape[1] != 2:
            return False
        codes.append(z.float().cpu())
    names = {"class_names": np.array(class_names, dtype=str)} if class_names else {}
    write_npz(path, z=torch.cat(codes).numpy(), labels=y_test.cpu().numpy(), **names)
    return True
