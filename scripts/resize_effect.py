"""How much the 28 -> 32 px resize alone moves a fixed reconstructor's errors on real MNIST.

PCA with k components (k = 16, 32, 64, 128) is fit on the training split and reconstructs the test split (clamped to
[0, 1]), once on the images as aebench resizes them (``data.resize: aebench``: antialiased bilinear on pixel centres)
and once as the study's fastai v1.0.60 did (``data.resize: fastai``: digits drawn 31/32 as large), both through
``resize_uint8``, one channel. Prints MAE, MSE and the mean pixel for each, and fastai's relative to aebench's.

Usage, from the repository root: ``python scripts/resize_effect.py --data-root ../shared/data`` (about a minute).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from aebench.data import DatasetCache
from aebench.data.registry import resize_uint8

KS = (16, 32, 64, 128)


def errors(train: torch.Tensor, test: torch.Tensor, ks: tuple[int, ...]) -> dict[int, tuple[float, float]]:
    """Test MAE and MSE of PCA-k fit on ``train`` (rows of pixels in [0, 1]), for each k in ``ks``."""
    mean = train.mean(0)
    axes = torch.linalg.svd(train - mean, full_matrices=False)[2]
    out = {}
    for k in ks:
        rebuilt = ((test - mean) @ axes[:k].T @ axes[:k] + mean).clamp(0, 1)
        out[k] = (rebuilt - test).abs().mean().item(), ((rebuilt - test) ** 2).mean().item()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    raw = DatasetCache(parser.parse_args().data_root).raw("mnist")
    found = {}
    for how in ("aebench", "fastai"):
        train, test = (resize_uint8(x[:, :1], 32, how).flatten(1).double() / 255 for x in (raw.x_train, raw.x_test))
        found.update({(how, k): e for k, e in errors(train, test, KS).items()})
        print(f"{how:8} mean pixel {test.mean().item():.4f}")
    print("k     aebench MAE  MSE        fastai MAE   MSE        fastai / aebench: MAE, MSE")
    for k in KS:
        (a_mae, a_mse), (f_mae, f_mse) = found["aebench", k], found["fastai", k]
        print(
            f"{k:<5} {a_mae:.6f}     {a_mse:.7f}  {f_mae:.6f}     {f_mse:.7f}  {f_mae / a_mae - 1:+.1%}, {f_mse / a_mse - 1:+.1%}"
        )


if __name__ == "__main__":
    main()
