"""Conv building blocks shared by the sync expert and the generator."""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    """conv -> batch norm -> ReLU, with an identity shortcut when shapes allow (Wav2Lip-style residuals)."""

    def __init__(self, cin: int, cout: int, kernel=3, stride=1, residual: bool = False):
        super().__init__()
        pad = (kernel // 2) if isinstance(kernel, int) else tuple(k // 2 for k in kernel)
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, bias=False)
        self.norm = nn.BatchNorm2d(cout)
        self.residual = residual and cin == cout and stride in (1, (1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x))
        if self.residual:
            y = y + x
        return torch.relu(y)


def encoder_stage(cin: int, cout: int, stride=2) -> nn.Sequential:
    """Downsample once, then one residual block."""
    return nn.Sequential(ConvBlock(cin, cout, 3, stride), ConvBlock(cout, cout, 3, 1, residual=True))


def stage_channels(base: int, num_layers: int, cap: int = 256) -> list[int]:
    """Channel widths per stage: base, 2*base, ... capped, so a config's size stays predictable."""
    return [min(cap, base * 2**i) for i in range(num_layers)]
