"""Prepared clips in memory, the 80/10/10 split, and random chunks for training.

A *chunk* is T consecutive frames of one clip whose crops all show the face, with the audio features
of its T - 4 sync windows. Crops are decoded once, at the model's input size, and kept as uint8.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import audio as A
from .errors import DataError
from .store import INDEX_NAME, decode_crop, load_clip, read_index

SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
MIN_CLIPS_FOR_CLIP_SPLIT = 10  # fewer clips: each clip is cut in time instead (one person's footage)


@dataclass
class Clip:
    name: str
    crops: torch.Tensor  # (T, S, S, 3) uint8; zeros where no face
    present: torch.Tensor  # (T,) bool
    feats: torch.Tensor  # (M, F) float32 in [0, 1]: normalised log-mel or MFCC
    start: int = 0  # first frame of this piece in the source clip (time splits)

    @property
    def num_frames(self) -> int:
        return len(self.present)

    def valid_starts(self, length: int) -> np.ndarray:
        """First frames of every run of ``length`` frames that all show the face and have full audio."""
        ok = self.present.numpy().astype(np.int64)
        if len(ok) < length:
            return np.zeros(0, dtype=np.int64)
        run = np.convolve(ok, np.ones(length, dtype=np.int64), mode="valid") == length
        last_audio = len(self.feats) - A.MEL_WINDOW
        starts = np.flatnonzero(run)
        ends = starts + length - A.SYNC_FRAMES  # first frame of the chunk's last window
        return starts[A.mel_start(ends) <= last_audio]


def load_clips(processed_dir: str | Path, size: int, kind: str = "mel", names: list[str] | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Clip]:
    """Every indexed clip (or those in ``names``), crops decoded at ``size``."""
    root = Path(processed_dir)
    index = read_index(root)["clips"]
    if not index:
        raise DataError("no prepared clips", path=root / INDEX_NAME, fix="run `synclip prepare` first")
    names = sorted(index) if names is None else names
    out = {}
    for k, name in enumerate(names):
        if name not in index:
            raise DataError(f"clip {name!r} is not in the index", path=root / INDEX_NAME,
                            fix="run `synclip prepare` or fix the split file")
        z = load_clip(root / index[name]["file"])
        t = len(z["present"])
        crops = np.zeros((t, size, size, 3), dtype=np.uint8)
        for i in range(t):
            img = decode_crop(z, i, size)
            if img is not None:
                crops[i] = img
        out[name] = Clip(name, torch.from_numpy(crops), torch.from_numpy(z["present"].astype(bool)),
                         A.model_features(z["mel"], z.get("mfcc"), kind))
        if progress:
            progress(k + 1, len(names))
    return out


def make_split(names: list[str], seed: int) -> dict[str, list]:
    """80/10/10 by clip (never by frame). With fewer than 10 clips, every clip is cut in time instead:
    its first 80% trains, the next 10% validates, the last 10% tests; entries are [name, start, end) frames
    with end -1 meaning "to the end" (resolved when the clips are loaded)."""
    names = sorted(names)
    if len(names) >= MIN_CLIPS_FOR_CLIP_SPLIT:
        rng = random.Random(seed)
        shuffled = names[:]
        rng.shuffle(shuffled)
        n_val = max(1, round(len(names) * SPLIT_FRACTIONS[1]))
        n_test = max(1, round(len(names) * SPLIT_FRACTIONS[2]))
        return {"by": "clip", "seed": seed, "val": sorted(shuffled[:n_val]),
                "test": sorted(shuffled[n_val:n_val + n_test]), "train": sorted(shuffled[n_val + n_test:])}
    a, b = SPLIT_FRACTIONS[0], SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]
    return {"by": "time", "seed": seed, "train": [[n, 0.0, a] for n in names],
            "val": [[n, a, b] for n in names], "test": [[n, b, 1.0] for n in names]}


def save_split(split: dict, path: Path) -> None:
    path.write_text(json.dumps(split, indent=1), encoding="utf-8")


def split_part(clips: dict[str, Clip], split: dict, part: str) -> list[Clip]:
    """The clips (or clip pieces, for time splits) of one part: train, val or test."""
    if split["by"] == "clip":
        return [clips[n] for n in split[part]]
    out = []
    for name, lo, hi in split[part]:
        c = clips[name]
        s, e = int(round(lo * c.num_frames)), int(round(hi * c.num_frames))
        m0, m1 = A.mel_start(s), A.mel_start(e) + 1
        out.append(Clip(f"{name}[{s}:{e}]", c.crops[s:e], c.present[s:e], c.feats[m0:m1], start=s))
    return out


def longest_run(clips: list[Clip]) -> int:
    """The longest run of consecutive face frames in any of the clips."""
    best = 0
    for c in clips:
        run = 0
        for ok in c.present.tolist():
            run = run + 1 if ok else 0
            best = max(best, run)
    return best


def chunk_length(clips: list[Clip], preferred: int, minimum: int, what: str) -> int:
    """``preferred`` frames, or fewer when the clips are shorter (a short validation piece); never < minimum."""
    n = min(preferred, longest_run(clips))
    if n < minimum:
        raise DataError(f"the {what} clips have at most {n} consecutive frames with a face; {minimum} are needed",
                        fix="prepare longer clips (or more of them, so the split can be made by clip)")
    return n


class ClipStarts:
    """Clips with the first frames of their usable chunks; draws (clip, start) pairs, each clip weighted by
    how many starts it has, so every usable chunk is equally likely. ``what`` names the need in the error."""

    def __init__(self, clips: list, starts: Callable[[object], np.ndarray], what: str, seed: int = 0):
        self.clips, self.starts = [], []
        for c in clips:
            s = starts(c)
            if len(s):
                self.clips.append(c)
                self.starts.append(s)
        if not self.clips:
            raise DataError(f"no clip has {what}", fix="use longer clips, or clips where the face stays in view")
        weights = np.array([len(s) for s in self.starts], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def draw(self, batch: int) -> tuple[np.ndarray, list[int]]:
        """-> clip indices (B,) and a start frame for each."""
        ids = self.rng.choice(len(self.clips), size=batch, p=self.weights)
        return ids, [int(self.rng.choice(self.starts[i])) for i in ids]


class ChunkSampler(ClipStarts):
    """Random chunks of ``length`` frames from a list of clips, each clip weighted by its usable frames."""

    def __init__(self, clips: list[Clip], length: int, seed: int = 0):
        super().__init__(clips, lambda c: c.valid_starts(length), f"{length} consecutive frames with a face", seed)
        self.length = length

    def sample(self, batch: int, part: slice = slice(None)
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> crops (B, T, 3, S, S) float in [0, 1], audio windows (B, T-4, M, F), clip ids (B,), starts (B,).

        ``part``: only these rows of the batch are built (data-parallel training: every process draws the whole
        batch from the same seed, so the draws stay in step, and builds its own part)."""
        ids, starts = self.draw(batch)
        return self.build(ids[part], starts[part])

    def build(self, ids: np.ndarray, starts: list[int]
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The chunks starting at ``starts`` of clips ``ids``: as :meth:`sample` returns them."""
        crops = [self.clips[i].crops[s:s + self.length] for i, s in zip(ids, starts)]
        feats = [A.window_feats(self.clips[i].feats, s, self.length - A.SYNC_FRAMES + 1) for i, s in zip(ids, starts)]
        x = torch.stack(crops).permute(0, 1, 4, 2, 3).float() / 255.0
        return x, torch.stack(feats), torch.as_tensor(ids), torch.as_tensor(starts)


def augment(x: torch.Tensor, generator: torch.Generator | None = None, part: slice = slice(None),
            total: int | None = None) -> torch.Tensor:
    """Per-chunk photometric and geometric jitter, the same for all frames of a chunk (so motion is kept).

    x: (B, T, 3, S, S) in [0, 1] -> same shape. Brightness, contrast, colour balance, horizontal flip and a
    shift of up to 4% of the side: unseen faces and crops that sit a little differently stay in sync.
    ``x`` may be rows ``part`` of a batch of ``total`` chunks (data-parallel training): the draws are made for
    the whole batch, so each chunk gets the jitter it would get in one process.
    """
    s = x.shape[-1]
    b = total or len(x)
    g = generator
    gain = 1 + 0.25 * (torch.rand(b, 1, 3, 1, 1, generator=g) - 0.5)
    bright = 0.15 * (torch.rand(b, 1, 1, 1, 1, generator=g) - 0.5)
    contrast = 1 + 0.4 * (torch.rand(b, 1, 1, 1, 1, generator=g) - 0.5)
    flip = torch.rand(b, generator=g) < 0.5
    shift = max(1, int(0.04 * s))
    rolls = [tuple(int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=g)) for _ in range(b)]
    gain, bright, contrast, flip, rolls = gain[part], bright[part], contrast[part], flip[part], rolls[part]
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    x = ((x - mean) * contrast + mean) * gain + bright
    x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(rolls):
        out[i] = torch.roll(x[i], shifts=(dy, dx), dims=(-2, -1))
    return out.clamp(0, 1)
