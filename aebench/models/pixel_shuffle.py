"""Sub-pixel upsampling (Shi et al. 2016) with ICNR init and a blur (Aitken et al. 2017), as fastai's PixelShuffle_ICNR."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def icnr_(weight: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """ICNR init in place: Kaiming-normal kernels for ``out / scale**2`` channels, each repeated for the
    ``scale**2`` sub-pixel positions, so PixelShuffle starts as nearest-neighbour upsampling."""
    out_channels = weight.shape[0]
    if out_channels % scale**2:
        raise ValueError(f"ICNR needs output channels divisible by {scale**2} (got {out_channels})")
    kernel = nn.init.kaiming_normal_(weight.new_empty(out_channels // scale**2, *weight.shape[1:]))
    with torch.no_grad():
        return weight.copy_(kernel.repeat_interleave(scale**2, dim=0))


class PixelShuffleBlock(nn.Module):
    """1x1 conv to ``4 * out`` channels (weight norm, ICNR, zero bias), ReLU, PixelShuffle(2), blur (replication pad
    + 2x2 average, stride 1), then BN(out) with ``study`` (the study's decoder).

    With ``icnr`` ICNR is applied before weight norm, so the normalised weight starts as ICNR. fastai v1 wrote ICNR
    to a weight that weight norm then recomputed, so the study's kernels started Kaiming-normal: ``icnr=False``.
    """

    def __init__(self, in_channels: int, out_channels: int, study: bool = False, icnr: bool = True) -> None:
        super().__init__()
        conv = nn.Conv2d(in_channels, out_channels * 4, 1)
        if icnr:
            icnr_(conv.weight)
        else:
            nn.init.kaiming_normal_(conv.weight)
        nn.init.zeros_(conv.bias)  # a per-sub-pixel bias would break ICNR's equal 2x2 blocks
        self.conv = weight_norm(conv)
        self.relu = nn.ReLU(inplace=True)
        self.shuffle = nn.PixelShuffle(2)
        self.blur = nn.Sequential(nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1))
        self.norm = nn.BatchNorm2d(out_channels) if study else nn.Identity()

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        """The sub-pixel output before the blur."""
        return self.shuffle(self.relu(self.conv(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blur(self.upsample(x)))
