"""A small CNN that reads the mouth's shape off a face crop: where the face mesh would put its mouth points.

A training aid for the presenter renderer (``render.shape_loss``). The face mesh cannot be differentiated;
this can, so a renderer can be asked that the mouth it drew reads back as the shape it was given, also for
shapes its frame never had (a dub's), where there is no true picture to compare pixels with.
Input: the lower half of an S-px crop, (B, 3, S/2, S) in [0, 1]. Output: (B, P, 2), x and y of
``mesh.MOUTH_POINTS`` in crop units (0-1 over the whole crop, as the mesh's landmarks are).
"""

from __future__ import annotations

import torch
from torch import nn

from ..mesh import MOUTH_POINTS
from .blocks import ConvBlock, encoder_stage

HIDDEN = 256


class LipReader(nn.Module):
    def __init__(self, input_size: int = 128, base_channels: int = 24):
        super().__init__()
        if input_size % 32:
            raise ValueError(f"LipReader input_size must be a multiple of 32, not {input_size}")
        self.input_size = input_size
        b = base_channels
        self.features = nn.Sequential(
            ConvBlock(3, b, 5, 2),  # (S/4, S/2)
            encoder_stage(b, 2 * b),  # (S/8, S/4)
            encoder_stage(2 * b, 4 * b),  # (S/16, S/8)
            encoder_stage(4 * b, 4 * b),  # (S/32, S/16)
        )
        cells = (input_size // 32) * (input_size // 16)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * b * cells, HIDDEN), nn.ReLU(),
                                  nn.Linear(HIDDEN, 2 * len(MOUTH_POINTS)))
        # The average mouth of the training frames: the head learns each frame's departure from it.
        self.register_buffer("mean_points", torch.full((len(MOUTH_POINTS), 2), 0.5))

    def forward(self, lower_half: torch.Tensor) -> torch.Tensor:
        """(B, 3, S/2, S) -> (B, P, 2) mouth points in crop units."""
        out = self.head(self.features(lower_half)).view(len(lower_half), -1, 2)
        return out + self.mean_points
