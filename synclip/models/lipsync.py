"""The real-footage sync expert: lip geometry from the face mesh, lower-face pixels, or both, against audio.

Same contract as ``SyncExpert`` (frame features -> 5-frame window embeddings, audio window embeddings,
calibrated in-sync logits), so every scoring and offset function works with either. What differs is the
face side: ``face_input`` picks

- ``landmarks``: the mouth's pose-free shape per frame (``mesh.lip_features``: 53 lip and jaw points, x/y/z,
  minus the clip's median), through a small MLP. Needs little data: the mesh already knows faces.
- ``pixels``: the lower half of the face crop through a small CNN (what SyncExpert does).
- ``both``: the two frame features added.

The frontalisation template and the lip features' scale are buffers, so a checkpoint carries all it needs.

Shapes: B batch, T frames, W = T - 4 windows, L = LIP_FEATURES, S crop side, M = 16 mel frames, F bins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import audio as A
from ..mesh import LIP_FEATURES, STABLE
from .blocks import encoder_stage, stage_channels
from .temporal import temporal_model

FACE_INPUTS = ("landmarks", "pixels", "both")


@dataclass(frozen=True)
class LipSyncDims:
    """Everything needed to rebuild the model; stored in checkpoints."""

    face_input: str = "landmarks"
    hidden_dim: int = 128
    input_size: int = 96  # crop side for the pixel branch (it sees the lower half)
    base_channels: int = 16
    num_layers: int = 4
    audio_feature: str = "mel"  # mel or mfcc
    audio_bins: int = A.N_MELS
    lip_features: int = LIP_FEATURES
    context_frames: int = 0  # > 0: each frame and each audio window also sees this many neighbours (odd)
    temporal: str = "conv"  # frame features -> window embedding: conv or transformer (models/temporal.py)
    curve_input: str = "margin"  # what curve_calibration reads: "margin" or "spread" (see curve_margin)

    def to_dict(self) -> dict:
        return asdict(self)


class AudioEncoder(nn.Module):
    """(B, W, M, F) audio windows -> (B, W, D) unit-length embeddings.

    The bins are channels and the convolutions run over time only (a time-delay network): a tenth of the
    cost of a 2-D CNN over the (F, M) image, which decides how fast the expert trains on a CPU, and just as
    able to hear where in the window the sounds start and stop.
    """

    def __init__(self, bins: int, dim: int, width: int = 128):
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm1d(cout), nn.ReLU())

        self.tdnn = nn.Sequential(block(bins, width, 1), block(width, width, 1), block(width, width, 2),
                                  block(width, width, 2))  # (N, width, M / 4)
        self.proj = nn.Sequential(nn.Linear(width * (A.MEL_WINDOW // 4), dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        b, w, m, f = windows.shape
        x = self.tdnn(windows.reshape(b * w, m, f).transpose(1, 2) - 0.5)  # (B*W, width, M/4)
        return F.normalize(self.proj(x.flatten(1)), dim=-1).view(b, w, -1)


CURVE_INPUTS = ("margin", "spread")


def curve_margin(distances, at: int, kind: str) -> float:
    """How far below the offset curve's median the distance at index ``at`` lies: in distance units
    ("margin"), or in units of the curve's median absolute deviation ("spread").

    "spread" is scale-free. Footage unlike the training data (other people, cameras) gives flatter curves,
    so the same in-sync clip lies fewer distance units below its median; counted in the curve's own spread
    it does not. Calibrated on the corpus's validation clips, the 8 shared real clips in sync then score
    0.79 on average instead of 0.37, with shifted clips and other voices still below 0.2 (README)."""
    d = np.asarray(distances, dtype=np.float64)  # NaN where an offset had no window to judge
    median = float(np.nanmedian(d))
    margin = median - float(d[at])
    if kind == "spread":
        margin /= max(float(np.nanmedian(np.abs(d - median))), 1e-6)
    return margin


def calibrated_curve_score(calibration: torch.Tensor, distances, at: int, kind: str) -> float | None:
    """sigmoid(a * curve_margin + b) for calibration (a, b); None when a = 0 (not calibrated)."""
    a, b = (float(v) for v in calibration)
    if a == 0.0:
        return None
    return float(torch.sigmoid(torch.tensor(a * curve_margin(distances, at, kind) + b)))


class LipSyncExpert(nn.Module):
    def __init__(self, dims: LipSyncDims):
        super().__init__()
        if dims.face_input not in FACE_INPUTS:
            raise ValueError(f"face_input must be one of {FACE_INPUTS}, not {dims.face_input!r}")
        if dims.curve_input not in CURVE_INPUTS:
            raise ValueError(f"curve_input must be one of {CURVE_INPUTS}, not {dims.curve_input!r}")
        self.dims = dims
        d = dims.hidden_dim
        self.register_buffer("template", torch.zeros(len(STABLE), 3))  # mesh.make_template of the training data
        self.register_buffer("lip_scale", torch.ones(dims.lip_features))  # per-feature std of the training data
        # Sync score from the offset curve: sigmoid(a * curve_margin + b), fitted on validation clips after
        # training (a = 0: not fitted; the mean window probability is used instead).
        self.register_buffer("curve_calibration", torch.zeros(2))
        if dims.face_input in ("landmarks", "both"):
            self.lip_mlp = nn.Sequential(nn.Linear(dims.lip_features, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        if dims.face_input in ("pixels", "both"):
            layers, cin = [], 3
            for c in stage_channels(dims.base_channels, dims.num_layers):
                layers.append(encoder_stage(cin, c))
                cin = c
            self.face_cnn = nn.Sequential(*layers)
            self.face_pool = nn.AdaptiveAvgPool2d((2, 4))  # keeps left/right and upper/lower lip apart
            self.face_proj = nn.Linear(cin * 8, d)
        self.face_temporal = temporal_model(dims.temporal, d)
        self.audio = AudioEncoder(dims.audio_bins, d)
        if dims.context_frames:  # a residual conv over time on each side ("same" padding: lengths unchanged)
            k = dims.context_frames
            self.face_context = nn.Sequential(nn.Conv1d(d, d, k, padding=k // 2), nn.ReLU(), nn.Conv1d(d, d, 1))
            self.audio_context = nn.Sequential(nn.Conv1d(d, d, k, padding=k // 2), nn.ReLU(), nn.Conv1d(d, d, 1))
        self.logit_scale = nn.Parameter(torch.tensor(8.0))
        self.logit_bias = nn.Parameter(torch.tensor(-4.0))

    @property
    def uses_pixels(self) -> bool:
        return self.dims.face_input in ("pixels", "both")

    @property
    def uses_landmarks(self) -> bool:
        return self.dims.face_input in ("landmarks", "both")

    def frame_features(self, face: dict[str, torch.Tensor]) -> torch.Tensor:
        """face: {"lips": (B, T, L) lip features (NaN-free), "pixels": (B, T, 3, S/2, S) lower half in [0, 1]}
        (each only when the model uses it) -> (B, T, D)."""
        out = 0
        if self.uses_landmarks:
            out = out + self.lip_mlp(face["lips"] / self.lip_scale)
        if self.uses_pixels:
            px = face["pixels"]
            b, t = px.shape[:2]
            x = self.face_pool(self.face_cnn(px.flatten(0, 1) - 0.5)).flatten(1)
            out = out + self.face_proj(x).view(b, t, -1)
        return out

    def window_embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, D) frame features -> (B, T-4, D) unit-length window embeddings (none when T < 5)."""
        if feats.shape[1] < A.SYNC_FRAMES:  # too short for one window (a damaged or 0.1-s video)
            return feats.new_zeros(feats.shape[0], 0, self.dims.hidden_dim)
        x = feats.transpose(1, 2)
        if self.dims.context_frames:
            x = x + self.face_context(x)
        return F.normalize(self.face_temporal(x).transpose(1, 2), dim=-1)

    def face_embed(self, face: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.window_embed(self.frame_features(face))

    def audio_embed(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, W, M, F) normalised audio windows -> (B, W, D) (with context: of consecutive windows)."""
        x = self.audio(windows)
        if self.dims.context_frames:
            y = x.transpose(1, 2)
            x = F.normalize((y + self.audio_context(y)).transpose(1, 2), dim=-1)
        return x

    def curve_score(self, distances, at: int) -> float | None:
        """The calibrated sync score of a clip whose offset curve is ``distances`` (one per searched offset),
        at the offset of index ``at``; None when the model was not calibrated.

        It reads how far below the curve's median the distance at that offset lies (``curve_margin``), which is
        relative to the clip's own curve: a face or a recording the expert finds unusual (all distances
        higher) does not look out of sync for that alone. On real footage of people the training never saw this
        separates in-sync from shifted clips where the mean window probability does not.
        """
        return calibrated_curve_score(self.curve_calibration, distances, at, self.dims.curve_input)

    def logits(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * (face * audio).sum(-1) + self.logit_bias

    def pair_logits(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * face @ audio.T + self.logit_bias
