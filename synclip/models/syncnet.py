"""The sync expert: does this face window go with this audio window?

SyncNet-style, with one change for speed: each face crop is encoded once by a 2D CNN, and a temporal
convolution over 5 consecutive frame features makes the window embedding. A clip of T frames thus costs T
frame encodings for its T-4 windows instead of 5(T-4), in training and in scoring alike, and the loss can
compare every window of a chunk with every audio window of the batch.

Shapes: B batch, T frames, W = T - 4 windows, S crop side, F audio bins (80 mel or 13 MFCC),
M = 16 audio frames per window (200 ms), D = hidden_dim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import audio as A
from .blocks import encoder_stage, stage_channels
from .temporal import temporal_model


@dataclass(frozen=True)
class SyncDims:
    """Everything needed to rebuild the model; stored in checkpoints."""

    input_size: int = 96
    hidden_dim: int = 256
    num_layers: int = 4
    base_channels: int = 32
    audio_bins: int = A.N_MELS
    audio_feature: str = "mel"  # what the audio_bins are: mel (log-mel) or mfcc; the input must be of this kind
    temporal: str = "conv"  # frame features -> window embedding: conv or transformer (models/temporal.py)

    def to_dict(self) -> dict:
        return asdict(self)


class SyncExpert(nn.Module):
    def __init__(self, dims: SyncDims):
        super().__init__()
        self.dims = dims
        chans = stage_channels(dims.base_channels, dims.num_layers)
        # Face: lower half of each crop, (3, S/2, S) -> (C, h, w); stride 2 per stage.
        face, cin = [], 3
        for c in chans:
            face.append(encoder_stage(cin, c))
            cin = c
        self.face_cnn = nn.Sequential(*face)
        self.face_pool = nn.AdaptiveAvgPool2d((2, 4))  # keeps left/right and upper/lower lip apart
        self.face_proj = nn.Linear(cin * 8, dims.hidden_dim)
        # Temporal model over SYNC_FRAMES frame features -> one embedding per window.
        self.face_temporal = temporal_model(dims.temporal, dims.hidden_dim)
        # Audio: (1, F, M) -> (C, f, m); halve frequency each stage, time every other stage.
        audio, cin = [], 1
        for i, c in enumerate(chans):
            audio.append(encoder_stage(cin, c, stride=(2, 2) if i % 2 else (2, 1)))
            cin = c
        self.audio_cnn = nn.Sequential(*audio)
        self.audio_proj = nn.Sequential(nn.Linear(cin, dims.hidden_dim), nn.ReLU(),
                                        nn.Linear(dims.hidden_dim, dims.hidden_dim))
        # Cosine similarity -> in-sync logit; learnt so the probability is calibrated.
        self.logit_scale = nn.Parameter(torch.tensor(8.0))
        self.logit_bias = nn.Parameter(torch.tensor(-4.0))

    def frame_features(self, crops: torch.Tensor) -> torch.Tensor:
        """crops (B, T, 3, S, S) in [0, 1] -> (B, T, D) per-frame features (lower half only)."""
        b, t, c, s, _ = crops.shape
        x = crops[:, :, :, s // 2:, :].reshape(b * t, c, s - s // 2, s) - 0.5
        x = self.face_pool(self.face_cnn(x)).flatten(1)  # (B*T, C*8)
        return self.face_proj(x).view(b, t, -1)

    def face_embed(self, crops: torch.Tensor) -> torch.Tensor:
        """crops (B, T, 3, S, S) -> (B, T-4, D) unit-length window embeddings."""
        return self.window_embed(self.frame_features(crops))

    def window_embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, D) frame features -> (B, T-4, D) unit-length window embeddings (none when T < 5)."""
        if feats.shape[1] < A.SYNC_FRAMES:  # too short for one window (a damaged or 0.1-s video)
            return feats.new_zeros(feats.shape[0], 0, self.dims.hidden_dim)
        y = self.face_temporal(feats.transpose(1, 2)).transpose(1, 2)
        return F.normalize(y, dim=-1)

    def audio_embed(self, windows: torch.Tensor) -> torch.Tensor:
        """windows (B, W, M, F) normalised features -> (B, W, D) unit-length embeddings."""
        b, w, m, f = windows.shape
        x = windows.reshape(b * w, 1, m, f).transpose(2, 3)  # (B*W, 1, F, M)
        x = self.audio_cnn(x - 0.5).mean(dim=(2, 3))
        return F.normalize(self.audio_proj(x), dim=-1).view(b, w, -1)

    def logits(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """In-sync logits for paired embeddings (..., D) x (..., D) -> (...)."""
        return self.logit_scale * (face * audio).sum(-1) + self.logit_bias

    def pair_logits(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """All pairs: face (N, D) x audio (K, D) -> (N, K) logits."""
        return self.logit_scale * face @ audio.T + self.logit_bias


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
