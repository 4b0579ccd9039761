"""How well an expert (or the model-free reference) finds offsets on real clips with known shifts.

Each clip is scored in sync and with its audio moved by ``shifts`` frames (+k: the audio leads by k). The
found offset must come back to k; the sync score (the in-sync probability as the shifted clip plays) should
be high at k = 0 and low otherwise. Only windows whose audio is real for every searched offset count, so
a shift never scores against padding.

The model-free reference: the face mesh's mouth opening against the speech envelope (the mean normalised
log-mel of each 40 ms frame), correlated over the same offsets; it needs no training and no data, and it is
what a trained expert must beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import audio as A
from .models.lipsync import curve_margin
from .sync import audio_embeddings, window_valid


@dataclass
class Case:
    clip: str
    source: str
    shift: int
    found: int
    confidence: float
    score: float  # sync score as the shifted clip plays (offset 0); nan for the reference
    margin: float = float("nan")  # the curve's median minus its value at offset 0 (models.lipsync.curve_margin)

    @property
    def hit(self) -> bool:
        return abs(self.found - self.shift) <= 1


def windows_for(num_windows: int, shift: int, max_offset: int) -> np.ndarray:
    """Windows v whose audio v - o + shift is inside the clip for every o in -max..+max."""
    lo, hi = max_offset - shift, num_windows - 1 - max_offset - shift
    return np.arange(max(lo, 0), min(hi, num_windows - 1) + 1)


@torch.no_grad()
def face_windows(model, clip, device: torch.device) -> torch.Tensor:
    """(T-4, D) window embeddings of a TrainClip (lip features and, when the model uses them, crops)."""
    face = {"lips": clip.lips[None].to(device)}
    if model.uses_pixels:
        face["pixels"] = clip.crops[None].permute(0, 1, 4, 2, 3).float().div(255.0).to(device)
    return model.face_embed(face)[0]


@torch.no_grad()
def distance_curves(model, clip, shifts, max_offset: int, device: torch.device,
                    audio_feats: torch.Tensor | None = None, segment: tuple[int, int] | None = None) -> list[tuple]:
    """For each shift k with enough judged windows: (k, the face and audio embeddings of those windows at
    offset 0, the mean face-audio distance at offsets -max_offset..+max_offset as the shifted clip plays)."""
    face = face_windows(model, clip, device).cpu()
    feats = clip.feats if audio_feats is None else audio_feats
    n_win = min(len(face), A.num_windows(clip.num_frames, len(feats)))
    window_ok = window_valid(clip.present).numpy()
    aud = audio_embeddings(model, feats, 0, n_win, device).cpu()  # audio window u at row u
    out = []
    for k in shifts:
        v = windows_for(n_win, k, max_offset)
        v = v[window_ok[v]]
        if segment is not None:
            v = v[(v >= segment[0]) & (v + A.SYNC_FRAMES <= segment[0] + segment[1])]
        if len(v) < 3:
            continue
        dist = np.array([float((face[v] - aud[v - o + k]).norm(dim=-1).mean())
                         for o in range(-max_offset, max_offset + 1)])
        out.append((k, face[v], aud[v + k], dist))
    return out


@torch.no_grad()
def expert_cases(model, clip, shifts, max_offset: int, device: torch.device, audio_feats: torch.Tensor | None = None,
                 segment: tuple[int, int] | None = None) -> list[Case]:
    """The clip's face against its own audio (or ``audio_feats`` of another clip) moved by each shift.
    ``segment`` (first frame, frames): judge only the windows of that part of the clip (e.g. 2-s pieces)."""
    out = []
    offsets = np.arange(-max_offset, max_offset + 1)
    for k, face, aud, dist in distance_curves(model, clip, shifts, max_offset, device, audio_feats, segment):
        best = int(np.argmin(dist))
        margin = curve_margin(dist, max_offset, model.dims.curve_input)  # at offset 0: as the shifted clip plays
        score = model.curve_score(dist, max_offset)
        if score is None:
            score = float(torch.sigmoid(model.logits(face.to(device), aud.to(device))).mean())
        out.append(Case(clip.name, clip.source, k, int(offsets[best]), float(np.median(dist) - dist[best]),
                        score, margin))
    return out


def evaluate(model, clips: list, shifts, max_offset: int, device: torch.device,
             segment: tuple[int, int] | None = None) -> dict:
    """``expert_cases`` over many clips, summarised."""
    cases = []
    for c in clips:
        cases += expert_cases(model, c, shifts, max_offset, device, segment=segment)
    return summarise(cases)


def speech_envelope(feats: torch.Tensor, num_frames: int) -> np.ndarray:
    """(M, F) normalised log-mel -> (T,) mean level of each video frame's mel rows."""
    level = feats.mean(1).numpy()
    rows = np.round(np.arange(num_frames + 1) * A.MEL_PER_FRAME).astype(int).clip(0, len(level))
    return np.array([level[a:max(b, a + 1)].mean() for a, b in zip(rows[:-1], rows[1:])])


def reference_cases(opening: np.ndarray, clip, shifts, max_offset: int) -> list[Case]:
    """The model-free reference on the same cases: mouth opening (T,) vs speech envelope, Pearson over lags."""
    env = speech_envelope(clip.feats, clip.num_frames)
    t = min(len(env), len(opening))
    present = ~np.isnan(opening[:t])
    out = []
    for k in shifts:
        v = windows_for(t, k, max_offset)
        v = v[present[v]]
        if len(v) < 3:
            continue
        offsets = np.arange(-max_offset, max_offset + 1)
        corr = []
        for o in offsets:
            a, b = opening[v], env[v - o + k]
            a, b = a - a.mean(), b - b.mean()
            corr.append(float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-12)))
        corr = np.array(corr)
        best = int(np.argmax(corr))
        out.append(Case(clip.name, clip.source, k, int(offsets[best]), float(corr[best] - np.median(corr)),
                        float("nan")))
    return out


def summarise(cases: list[Case]) -> dict:
    """Offset accuracy (+-1) over all cases, and mean scores in sync / shifted by 5 or more."""
    if not cases:
        return {"cases": 0}
    hits = np.array([c.hit for c in cases])
    insync = [c.score for c in cases if c.shift == 0 and not np.isnan(c.score)]
    shifted = [c.score for c in cases if abs(c.shift) >= 5 and not np.isnan(c.score)]
    return {"cases": len(cases), "offset_acc_pm1": round(float(hits.mean()), 4),
            "insync_acc_pm1": round(float(np.mean([c.hit for c in cases if c.shift == 0])), 4),
            "score_insync": round(float(np.mean(insync)), 4) if insync else None,
            "score_shifted_5plus": round(float(np.mean(shifted)), 4) if shifted else None,
            "mean_abs_error": round(float(np.mean([abs(c.found - c.shift) for c in cases])), 3)}


def fit_calibration(positives: list[float], negatives: list[float], steps: int = 500) -> tuple[float, float]:
    """Logistic fit of in-sync (1) vs not (0) on curve margins -> (a, b) for ``LipSyncExpert.curve_score``;
    both classes weigh the same; a slight penalty on the slope keeps it finite for separable groups."""
    x = torch.tensor(positives + negatives, dtype=torch.float64)
    y = torch.tensor([1.0] * len(positives) + [0.0] * len(negatives), dtype=torch.float64)
    w = torch.where(y > 0, 0.5 / len(positives), 0.5 / len(negatives))
    scale = float(x.std()) or 1.0
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], max_iter=steps)

    def loss() -> torch.Tensor:
        opt.zero_grad()
        out = torch.nn.functional.binary_cross_entropy_with_logits(params[0] * x / scale + params[1], y, weight=w,
                                                                    reduction="sum")
        out = out + 1e-3 * params[0] ** 2  # a finite slope even when the two groups do not overlap
        out.backward()
        return out

    opt.step(loss)
    a, b = params.detach().tolist()
    return a / scale, b
