"""An experiment on the real expert's speech features: real_expert.py with each clip's log-mel also
normalised per band (its mean over the clip removed from every mel band, then 0.5 added), everywhere that script
takes speech features (training and its augmented copies, validation, tests, other voices).

    python benchmarks/real_expert_cmn.py --source-lead lrc_ar=1 --steps 1200 --seed S \
        --checkpoint X.pth --out benchmarks/results/real_expert_cmn_seedS.json

Per-band mean removal takes out a recording's fixed colouring (microphone, room, codec), the usual first
defence of speech recognisers against a new channel. Measured 2026-12-02 with seeds 0 and 1: worse than the
shipped recipe on every test part (README, "Real footage"), so the shipped expert does not use it, and
``synclip score`` does not normalise so: a checkpoint written by this script is for this comparison only.
"""

from __future__ import annotations

import sys

import real_expert  # puts the project on sys.path; reads the features as A.normalize_mel at call time
import torch

from synclip import audio as A  # noqa: E402

_peak_normalised = A.normalize_mel


def band_normalised(db):
    """normalize_mel, then each mel band's mean over the clip's frames moved to 0.5."""
    rel = _peak_normalised(db)
    if rel.ndim != 2:
        return rel
    mean = rel.mean(0, keepdim=True) if isinstance(rel, torch.Tensor) else rel.mean(0, keepdims=True)
    return rel - mean + 0.5


A.normalize_mel = band_normalised  # real_expert.py and lips_train.py read it as A.normalize_mel

if __name__ == "__main__":
    sys.exit(real_expert.main())
