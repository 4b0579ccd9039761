"""Sync maths on top of the expert: the training loss, embeddings of whole clips, offset curves, scores.

Offset convention (syncnet_python's, so figures compare): offset = +K means the audio LEADS the video by K
frames (40 ms each): the sound of video frame v is found at audio frame v - K. The curve d(o) is the mean
distance between face window v and audio window v - o; offset = argmin, confidence (LSE-C) = median - min,
LSE-D = min.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import audio as A
from .models.syncnet import SyncExpert


SPEECH_LEVEL = 0.35  # mean normalised log-mel (0 = 80 dB below the clip's peak, 1 = peak) of a window with speech


def pair_masks(clip_ids: torch.Tensor, starts: torch.Tensor, w: int, shift_min: int):
    """Which (face window, audio window) pairs of a batch are positives, ignored, or negatives.

    Pairs from one clip at the same frame are positives; at >= shift_min frames apart, negatives (same face,
    same voice: only timing differs); nearer pairs are ignored. Pairs across clips are negatives too.
    Returns (pos, neg_same, neg_other), each (N, N) bool with N = B * w.
    """
    b = len(clip_ids)
    frame = (starts[:, None] + torch.arange(w, device=starts.device)).reshape(-1)
    clip = clip_ids[:, None].expand(b, w).reshape(-1)
    same_clip = clip[:, None] == clip[None, :]
    gap = (frame[:, None] - frame[None, :]).abs()
    return same_clip & (gap == 0), same_clip & (gap >= shift_min), ~same_clip


def sync_loss(model: SyncExpert, crops: torch.Tensor, feats: torch.Tensor, clip_ids: torch.Tensor,
              starts: torch.Tensor, shift_min: int, embed=None, gather=None) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss on a batch of chunks: every face window against every audio window of the batch.

    crops (B, T, 3, S, S), feats (B, W, M, F), clip_ids (B,), starts (B,) first frame of each chunk.
    Two terms: balanced BCE over the pairs of ``pair_masks`` (calibrated probabilities) + cross-entropy over
    each chunk's windows (the offset task).
    Data-parallel training passes ``embed(crops, feats) -> (face, audio)`` (the DDP-wrapped model's forward)
    and ``gather`` (each process's rows of a tensor -> the whole batch's), so every process computes the loss
    of the whole batch, as one process would.
    """
    face, aud = embed(crops, feats) if embed else (model.face_embed(crops), model.audio_embed(feats))  # (B, W, D)
    speech = feats.mean(dim=(2, 3)) > SPEECH_LEVEL  # (B, W): windows whose audio has speech
    if gather is not None:
        face, aud, speech, clip_ids, starts = (gather(t) for t in (face, aud, speech, clip_ids, starts))
    b, w, d = face.shape
    logits = model.pair_logits(face.reshape(-1, d), aud.reshape(-1, d))  # (N, N), N = B*W
    pos, neg_same, neg_other = pair_masks(clip_ids, starts, w, shift_min)
    weights = torch.zeros_like(logits)
    for mask, share in ((pos, 0.5), (neg_same, 0.25), (neg_other, 0.25)):
        n = int(mask.sum())
        if n:
            weights[mask] = share / n
    if not neg_other.any():  # a batch from one clip: same-clip negatives carry the negative half
        weights[neg_same] *= 2
    bce = F.binary_cross_entropy_with_logits(logits, pos.float(), weight=weights, reduction="sum")
    # Offset term: within each chunk, pick the right audio window among its W candidates.
    chunk = logits.view(b, w, b, w)[torch.arange(b), :, torch.arange(b), :]  # (B, W, W)
    ce = F.cross_entropy(chunk.reshape(-1, w), torch.arange(w, device=logits.device).repeat(b))
    with torch.no_grad():
        stats = {"bce": float(bce), "offset_ce": float(ce), **pair_accuracy(logits, pos, neg_same | neg_other)}
        # Windows where the audio has speech: a silent window shifted onto another silent stretch of the same
        # clip (closed mouth, no sound) is in sync and off sync at once, so no model can tell those apart.
        speech = speech.reshape(-1)
        either = speech[:, None] | speech[None, :]
        sp = pair_accuracy(logits, pos & speech[None, :], (neg_same | neg_other) & either)
        stats.update({f"speech_{k}": v for k, v in sp.items()})
    return bce + ce, stats


def pair_accuracy(logits: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, float]:
    """Balanced accuracy at probability 0.5 over the given positive and negative pairs."""
    pred = logits > 0
    acc_pos = pred[pos].float().mean() if pos.any() else torch.tensor(float("nan"))
    acc_neg = (~pred[neg]).float().mean() if neg.any() else torch.tensor(float("nan"))
    return {"acc": float((acc_pos + acc_neg) / 2), "acc_pos": float(acc_pos), "acc_neg": float(acc_neg)}


@torch.no_grad()
def face_embeddings(model: SyncExpert, crops: torch.Tensor, device: torch.device, batch_frames: int = 256
                    ) -> torch.Tensor:
    """crops (T, S, S, 3) uint8 -> (T-4, D) window embeddings; frame features computed in batches."""
    feats = []
    for i in range(0, len(crops), batch_frames):
        x = crops[i:i + batch_frames].to(device).permute(0, 3, 1, 2).float().div_(255.0)[None]
        feats.append(model.frame_features(x)[0])
    return model.window_embed(torch.cat(feats)[None])[0]


@torch.no_grad()
def audio_embeddings(model: SyncExpert, feats: torch.Tensor, first: int, count: int, device: torch.device,
                     batch: int = 512) -> torch.Tensor:
    """Audio window embeddings for window starts first .. first+count-1 -> (count, D) (edges repeat)."""
    out = []
    for i in range(0, count, batch):
        n = min(batch, count - i)
        w = A.window_feats(feats, first + i, n).to(device)
        out.append(model.audio_embed(w[None])[0])
    return torch.cat(out)


@dataclass
class OffsetResult:
    offset_frames: int
    confidence: float  # LSE-C: median - min of the distance curve
    min_distance: float  # LSE-D
    offsets: list[int] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)


def offset_curve(face: torch.Tensor, audio: torch.Tensor, audio_first: int, max_offset: int,
                 valid: torch.Tensor | None = None) -> OffsetResult:
    """Distance curve over offsets -max..+max.

    face (W, D) for windows 0..W-1; audio (Wa, D) for window starts audio_first .. audio_first+Wa-1, which
    must cover -max_offset .. W-1+max_offset. valid (W,) bool: windows with a face in all 5 frames.
    """
    w = len(face)
    valid = torch.ones(w, dtype=torch.bool) if valid is None else valid.to(torch.bool)
    offsets = list(range(-max_offset, max_offset + 1))
    dists = []
    for o in offsets:
        a = audio[(torch.arange(w) - o - audio_first)]
        d = (face - a).norm(dim=-1)
        dists.append(float(d[valid].mean()) if valid.any() else float("nan"))
    arr = np.array(dists)
    best = int(np.nanargmin(arr))
    return OffsetResult(offsets[best], float(np.nanmedian(arr) - arr[best]), float(arr[best]), offsets, dists)


def window_valid(present: torch.Tensor) -> torch.Tensor:
    """(T,) face-present flags -> (T-4,) windows whose 5 frames all show the face."""
    p = present.float()[None, None]
    return (F.conv1d(p, torch.ones(1, 1, A.SYNC_FRAMES)) >= A.SYNC_FRAMES - 0.5)[0, 0]
