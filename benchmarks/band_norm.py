"""An experiment on speech features: each clip's log-mel also normalised per mel band (the band's mean over
the clip moved to 0.5), as speech recognisers take out a new microphone's or room's colouring.

    python benchmarks/band_norm.py expert --source-lead lrc_ar=1 --steps 1200 --seed S \
        --checkpoint X.pth --out benchmarks/results/real_expert_cmn_seedS.json
    python benchmarks/band_norm.py audio_to_lips --sources grid_s1 lrc_ar --source-lead lrc_ar=1 \
        --steps 1600 --sync-weight 1 --out benchmarks/results/audio_to_lips_band_norm.json

``expert`` runs real_expert.py with every speech feature it takes (training and its augmented copies,
validation, tests, other voices) normalised so. ``audio_to_lips`` runs audio_to_lips.py with only AudioToLips'
input normalised (over the clip's non-silent frames); the expert that teaches and judges it keeps the features
it was trained on. Measured 2026-12-02: worse than without in both (README, "Real footage" and "Speech ->
shapes"), so nothing shipped uses it, and ``synclip score`` does not normalise so: a checkpoint written here is
for this comparison only.
"""

from __future__ import annotations

import sys

import audio_to_lips  # these two put the project on sys.path
import real_expert
import torch
from common import take_mode

from synclip import audio as A  # noqa: E402
from synclip import lips_audio  # noqa: E402

_peak_normalised = A.normalize_mel


def band_normalised(db):
    """normalize_mel, then each mel band's mean over the clip's frames moved to 0.5."""
    rel = _peak_normalised(db)
    if rel.ndim != 2:
        return rel
    mean = rel.mean(0, keepdim=True) if isinstance(rel, torch.Tensor) else rel.mean(0, keepdims=True)
    return rel - mean + 0.5


class BandNormAudioToLips(lips_audio.AudioToLips):
    """AudioToLips whose (B, M, F) input has each band's mean over the clip's non-silent rows moved to 0.5
    (rows of zeros, padding or digital silence, are left as they are)."""

    def forward(self, mel: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        voiced = (mel.abs().sum(-1, keepdim=True) > 0).float()
        mean = (mel * voiced).sum(1, keepdim=True) / voiced.sum(1, keepdim=True).clamp_min(1)
        return super().forward(mel + (0.5 - mean) * voiced, centres)


def main() -> int:
    which = take_mode(("expert", "audio_to_lips"), __doc__)
    if which is None:
        return 2
    if which == "expert":
        A.normalize_mel = band_normalised  # real_expert.py and lips_train.py read it as A.normalize_mel at call time
        return real_expert.main()
    audio_to_lips.AudioToLips = BandNormAudioToLips
    return audio_to_lips.main()


if __name__ == "__main__":
    sys.exit(main())
