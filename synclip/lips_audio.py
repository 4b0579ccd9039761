"""Speech -> mouth shapes: the first half of a two-stage presenter (the audio gives the mouth's shape, a
renderer of the person's own frames gives its look).

``AudioToLips`` maps a clip's normalised log-mel features to the face mesh's lip features
(``mesh.lip_features``: pose-free lip and jaw points minus the clip's rest shape), one row per video frame,
hearing about 0.7 s of speech around each frame. Its output lives in the real-footage expert's own feature
space, so the expert judges predicted shapes directly, before anything is drawn, and can teach them:
``expert_sync_loss`` is the frozen expert's offset loss on the predicted shapes, added to the L1 loss on the
real mesh (the shipped presenter's AudioToLips was trained so; benchmarks/audio_to_lips.py --sync-weight).

Shapes: B clips, M mel frames, F bins, T video frames, L = LIP_FEATURES.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import audio as A
from .mesh import LIP_FEATURES


def frame_centres(num_frames: int, num_mel: int) -> torch.Tensor:
    """(T,) the mel frame at the centre of each video frame (frame i spans i to i + 1 times 40 ms)."""
    idx = torch.round((torch.arange(num_frames) + 0.5) * A.MEL_PER_FRAME).long()
    return idx.clamp(max=num_mel - 1)


class AudioToLips(nn.Module):
    """(B, M, F) normalised log-mel + (B, T) centre indices -> (B, T, L) lip features."""

    def __init__(self, bins: int = A.N_MELS, width: int = 192, out: int = LIP_FEATURES):
        super().__init__()

        def conv(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation),
                                 nn.GroupNorm(8, cout), nn.GELU())

        self.mel = nn.Sequential(conv(bins, width, 5), conv(width, width, 5), conv(width, width, 5))  # 80 Hz
        self.frames = nn.ModuleList(conv(width, width, 3, d) for d in (1, 2, 4, 8))  # 25 Hz, +-15 frames
        self.head = nn.Conv1d(width, out, 1)
        self.register_buffer("scale", torch.ones(out))  # per-feature spread of the training targets

    def forward(self, mel: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        x = self.mel(mel.transpose(1, 2) - 0.5)  # (B, W, M)
        x = torch.gather(x, 2, centres[:, None, :].expand(-1, x.shape[1], -1))  # (B, W, T)
        for block in self.frames:
            x = x + block(x)
        return self.head(x).transpose(1, 2) * self.scale


def batch_clips(clips: list, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                  torch.Tensor]:
    """Clips of any length -> padded (B, M, F) mel, (B, T) centres, (B, T, L) target lips, (B, T) mask."""
    t_max = max(c.num_frames for c in clips)
    m_max = max(len(f) for f in feats)
    mel = torch.zeros(len(clips), m_max, feats[0].shape[1])
    centres = torch.zeros(len(clips), t_max, dtype=torch.long)
    lips = torch.zeros(len(clips), t_max, clips[0].lips.shape[1])
    mask = torch.zeros(len(clips), t_max, dtype=torch.bool)
    for b, (c, f) in enumerate(zip(clips, feats)):
        mel[b, :len(f)] = f
        centres[b, :c.num_frames] = frame_centres(c.num_frames, len(f))
        lips[b, :c.num_frames] = c.lips
        mask[b, :c.num_frames] = c.present
    return mel, centres, lips, mask


def lips_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """L1 on the shapes plus L1 on their frame-to-frame change (in units of each feature's spread): the
    motion term keeps the mouth from settling on a mumbled average."""
    err = ((pred - target) / scale).abs().mean(-1)
    step = (((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])) / scale).abs().mean(-1)
    both = mask[:, 1:] & mask[:, :-1]
    return err[mask].mean() + step[both].mean()


def fit(model: AudioToLips, clips: list, steps: int, batch: int = 16, lr: float = 2e-3, seed: int = 0,
        report=print, every: int = 200, sync=None, sync_weight: float = 0.0) -> list[dict]:
    """Train on TrainClips (their clean and augmented audio variants); returns the loss history. ``sync(pred,
    feats, clips)``: an extra loss on the predicted shapes (e.g. ``expert_sync_loss``), weighted by ``sync_weight``."""
    present = torch.cat([c.lips[c.present] for c in clips])
    model.scale.copy_(present.std(0).clamp_min(1e-6))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed)
    history, running = [], []
    model.train()
    for step in range(1, steps + 1):
        pick = [clips[i] for i in rng.integers(len(clips), size=batch)]
        feats = [c.variants[int(rng.integers(len(c.variants)))] for c in pick]
        mel, centres, lips, mask = batch_clips(pick, feats)
        pred = model(mel, centres)
        loss = lips_loss(pred, lips, mask, model.scale)
        if sync is not None and sync_weight:
            loss = loss + sync_weight * sync(pred, feats, pick)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % every == 0 or step == steps:
            history.append({"step": step, "loss": round(float(np.mean(running)), 4)})
            report(f"step {step}/{steps}: loss {history[-1]['loss']:.4f}")
            running = []
    model.eval()
    return history


def expert_sync_loss(expert, max_offset: int = 4):
    """A loss on AudioToLips' shapes from a frozen landmark sync expert (its lip features are what AudioToLips
    predicts): for each 5-frame window of each clip, a cross-entropy over the audio at offsets -max_offset..
    +max_offset whose target is offset 0, as the expert's own offset loss. Returns ``loss(pred, feats, clips)``."""
    for p in expert.parameters():
        p.requires_grad_(False)
    expert.eval()
    span = torch.arange(2 * max_offset + 1)

    def loss(pred: torch.Tensor, feats: list[torch.Tensor], clips: list) -> torch.Tensor:
        terms = []
        for b, (c, f) in enumerate(zip(clips, feats)):
            t = c.num_frames
            if t < A.SYNC_FRAMES:
                continue
            lips = pred[b, :t]
            lips = lips - lips.median(0).values  # per clip, as the footage's features are
            face = expert.face_embed({"lips": lips[None]})[0]  # (t - 4, D)
            n = len(face)
            audio = expert.audio_embed(A.windows_at(f.float(), torch.arange(-max_offset, n + max_offset))[None])[0]
            idx = torch.arange(n)[:, None] + span  # window i against audio windows i-K .. i+K
            logits = expert.logits(face[:, None], audio[idx])  # (n, 2K + 1)
            terms.append(F.cross_entropy(logits, torch.full((n,), max_offset)))
        return torch.stack(terms).mean() if terms else pred.sum() * 0

    return loss


@torch.no_grad()
def predict(model: AudioToLips, feats: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(M, F) normalised log-mel of one clip -> (T, L) lip features."""
    centres = frame_centres(num_frames, len(feats))
    return model(feats[None].float(), centres[None])[0]


def centred(lips: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Lip features with their median over the present frames removed (what ``lip_features`` does per clip)."""
    return lips - lips[present].median(0).values if present.any() else lips


def lip_gap(lips: torch.Tensor) -> torch.Tensor:
    """(T, L) lip features -> (T,) change of the inner-lip gap (lower minus upper lip centre, frontal y)."""
    from .mesh import MOUTH_POINTS

    pts = lips.view(len(lips), -1, 3)
    return pts[:, MOUTH_POINTS.index(14), 1] - pts[:, MOUTH_POINTS.index(13), 1]


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))

