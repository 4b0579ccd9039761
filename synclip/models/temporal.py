"""The sync experts' temporal model: 5 consecutive frame features -> one window embedding.

Two kinds (``model.temporal``), the same contract, so everything downstream (losses, offset curves, export)
is unchanged:

- ``conv``: a 5-tap convolution over time, then a 1x1 (today's model; old checkpoints hold this one).
- ``transformer``: each window's 5 frames, with a learnt position each, attend to one another through a
  couple of small pre-norm self-attention blocks; the 5 outputs, flattened, are projected to the embedding.
  A window sees exactly its own 5 frames, as with the conv, so a window still means the same 200 ms.

Shapes: B batch, D feature size, T frames, W = T - 4 windows, K = SYNC_FRAMES (5), H heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import audio as A

TEMPORAL_KINDS = ("conv", "transformer")
TRANSFORMER_LAYERS = 2
TRANSFORMER_HEADS = 4


class AttentionBlock(nn.Module):
    """Pre-norm self-attention + MLP over the K frames of each window: (N, K, D) -> (N, K, D)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"the feature size ({dim}) must be a multiple of the heads ({heads})")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, k, d = x.shape
        q, kk, v = self.qkv(self.norm1(x)).view(n, k, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, kk, v)  # (N, H, K, D/H)
        x = x + self.proj(y.transpose(1, 2).reshape(n, k, d))
        return x + self.mlp(self.norm2(x))


class WindowTransformer(nn.Module):
    """(B, D, T) frame features -> (B, D, T-4): self-attention within each 5-frame window."""

    def __init__(self, dim: int, layers: int = TRANSFORMER_LAYERS, heads: int = TRANSFORMER_HEADS):
        super().__init__()
        self.position = nn.Parameter(torch.randn(A.SYNC_FRAMES, dim) * 0.02)
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads) for _ in range(layers))
        self.out = nn.Linear(A.SYNC_FRAMES * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, t = x.shape
        k = A.SYNC_FRAMES
        w = t - k + 1
        # (B, D, W, K): window j holds frames j..j+K-1; slices rather than unfold, which exporters handle alike
        win = torch.stack([x[:, :, i:i + w] for i in range(k)], dim=-1)
        y = win.permute(0, 2, 3, 1).reshape(b * w, k, d) + self.position  # (B*W, K, D)
        for block in self.blocks:
            y = block(y)
        return self.out(y.flatten(1)).view(b, w, d).transpose(1, 2)


def temporal_model(kind: str, dim: int) -> nn.Module:
    """The temporal model of ``kind`` for D = ``dim``: (B, D, T) -> (B, D, T-4)."""
    if kind == "conv":  # the layout (indices 0 and 2) is what existing checkpoints store
        return nn.Sequential(nn.Conv1d(dim, dim, A.SYNC_FRAMES), nn.ReLU(), nn.Conv1d(dim, dim, 1))
    if kind == "transformer":
        return WindowTransformer(dim)
    raise ValueError(f"temporal must be one of {TEMPORAL_KINDS}, not {kind!r}")
