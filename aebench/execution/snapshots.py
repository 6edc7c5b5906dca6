"""Visual records of one cell: per-epoch reconstruction grids (+ GIF) and 2-D latent codes of the test set."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import nn

from aebench.config import CellConfig
from aebench.data.pixels import Normalizer, make_batch
from aebench.errors import UserError, exception_line
from aebench.files import atomic_write, read_bytes, safe_folder, write_npz
from aebench.training.batches import EVAL_SEED, eval_batches

log = logging.getLogger(__name__)

SNAPSHOT_IMAGES = 12  # the first test images, as the FFN denoising project shows
SNAPSHOT_ROWS = 3  # corrupted input, reconstruction, clean target
PAD, SCALE = 2, 2  # grid spacing and nearest-neighbour enlargement, in pixels
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_SLACK = 2**16  # bytes beyond twice its pixels' a snapshot PNG may hold (honest ones: well below its pixels)


def span(count: int, side: int) -> int:
    """Pixels that ``count`` images of ``side`` pixels take across a grid, before enlargement."""
    return count * (side + PAD) + PAD


def grid_shape(rows: int, n: int, c: int, h: int, w: int) -> tuple[int, ...]:
    """The shape of ``grid`` of ``rows`` rows of ``n`` (C, H, W) images."""
    height, width = span(rows, h) * SCALE, span(n, w) * SCALE
    return (height, width) if c == 1 else (height, width, c)


def grid(rows: list[torch.Tensor]) -> np.ndarray:
    """Rows of (N, C, H, W) images in [0, 1] as one uint8 picture (H x W, or H x W x 3 for colour)."""
    n, c, h, w = rows[0].shape
    canvas = torch.ones(c, span(len(rows), h), span(n, w))
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
    files (so a resumed cell's GIF keeps the epochs before the interruption). A snapshot file that is not a
    picture of this cell's grid (damaged, planted, a link) is left out of the GIF with a warning."""

    def __init__(self, x_test: torch.Tensor, cell: CellConfig, normalizer: Normalizer, folder: Path) -> None:
        gen = torch.Generator(device=x_test.device).manual_seed(EVAL_SEED)
        self.inputs, self.target = make_batch(x_test[:SNAPSHOT_IMAGES], cell.data, gen, train=False)
        self.normalizer = normalizer
        self.every, self.last = cell.train.snapshot_every, cell.train.epochs
        self.folder = folder
        self.shape = grid_shape(SNAPSHOT_ROWS, *self.inputs.shape)

    @torch.no_grad()
    def __call__(self, epoch: int, model: nn.Module) -> None:
        if epoch % self.every and epoch != self.last:
            return
        was_training = model.training
        model.eval()
        output = model(self.normalizer(self.inputs))
        model.train(was_training)
        frame = grid([self.inputs, output, self.target])  # of shape self.shape
        folder = safe_folder(self.folder, self.folder / "snapshots")
        atomic_write(folder / f"epoch_{epoch:03d}.png", lambda tmp: iio.imwrite(tmp, frame, extension=".png"))

    def write_gif(self, seconds_per_frame: float = 0.5) -> Path | None:
        """The snapshots in epoch order as a looping GIF (None when no snapshot was taken)."""
        frames = []
        for file in sorted((self.folder / "snapshots").glob("epoch_*.png")):
            try:
                frames.append(read_frame(file, self.shape))
            except (UserError, OSError) as exc:  # the GIF is only shorter, never wrong
                log.warning("%s; left out of snapshots.gif", exc)
        if not frames:
            return None
        path = self.folder / "snapshots.gif"
        stacked, duration = np.stack(frames), int(seconds_per_frame * 1000)
        atomic_write(path, lambda tmp: iio.imwrite(tmp, stacked, extension=".gif", duration=duration, loop=0))
        return path


def read_frame(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The snapshot PNG at ``path`` (never through a link) when it is a uint8 picture of ``shape``; its byte size
    and the sides its header declares are checked before anything is decoded (a small PNG can declare gigapixels),
    a UserError naming the file otherwise."""
    data = read_bytes(path, 2 * math.prod(shape) + PNG_SLACK)
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise UserError(f"{path}: not a PNG file")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if (height, width) != shape[:2]:
        raise UserError(f"{path}: {width}x{height} pixels, not the {shape[1]}x{shape[0]} of this cell's snapshots")
    try:
        frame = iio.imread(data, extension=".png")
    except Exception as exc:  # damaged chunks or pixel data: the decoder raises many types
        raise UserError(f"{path}: a damaged PNG ({exception_line(exc)})") from None
    if frame.shape != shape or frame.dtype != np.uint8:
        raise UserError(f"{path}: {frame.dtype} pixels of shape {list(frame.shape)}, not uint8 {list(shape)}")
    return frame


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
