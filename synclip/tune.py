"""Fine-tune the real-footage sync expert on one person's own footage (``synclip tune-expert``).

The shipped expert knows many faces; a presenter's own minutes teach it their mouth. Each clip's first 80%
trains and its last 20% judges: offsets of the held-out parts with the audio in sync and moved by +-5
frames, before and after. The tuned expert is kept only when it does at least as well as the one it
started from on that held-out footage; otherwise the starting expert is written unchanged, and the
report says so.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import audio as A
from .checkpoint import expert_from, load_checkpoint, save_checkpoint, select_device
from .corpus import CorpusClip, extract, load_cache
from .errors import CheckpointError
from .lips_eval import evaluate
from .lips_train import FitSettings, add_audio_variants, fit, to_train_clip

TRAIN_SHARE = 0.8
SHIFTS = (0, 5, -5)


@dataclass
class TuneResult:
    out: Path
    before: dict  # held-out figures of the starting expert
    after: dict  # ... of the tuned one
    kept_tuned: bool
    train_minutes: float


def cut(clip: CorpusClip, lo: int, hi: int) -> CorpusClip:
    """Frames lo..hi-1 of a clip, with their audio."""
    return CorpusClip(clip.name, clip.landmarks[lo:hi], clip.crops[lo:hi],
                      clip.wav[A.frames_to_samples(lo):A.frames_to_samples(hi)])


def tune_expert(videos: Path, out: Path, *, init: str | Path = "pretrained", steps: int = 400,
                max_offset: int = 15, workers: int = 2, device: str | None = None,
                report: Callable[[str], None] = lambda line: None,
                progress: Callable[[int, int], None] | None = None) -> TuneResult:
    dev = select_device(device, setting="--device")
    data = load_checkpoint(init, kind="sync")
    if "face_input" not in data["dims"]:
        raise CheckpointError("this expert sees pixels only; tune-expert fine-tunes the face-mesh expert",
                              path=init, fix="start from the shipped one (leave --init out)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:  # the mesh and crops of every frame: not kept
        cache = Path(tmp) / "clips.npz"
        index = extract(Path(videos), cache, workers=workers, progress=progress)
        clips = load_cache(cache)
    for line in index["rejects"]:
        report(f"left out: {line}")
    model = expert_from(data, init, dev)
    template = model.template.cpu().numpy()
    raw_train, train, val = [], [], []
    for clip in clips:
        split = int(round(clip.num_frames * TRAIN_SHARE))
        raw_train.append(cut(clip, 0, split))
        train.append(to_train_clip(raw_train[-1], "own", template, model.uses_pixels))
        val.append(to_train_clip(cut(clip, split, clip.num_frames), "own", template, model.uses_pixels))
    add_audio_variants(train, [c.wav for c in raw_train], 3)
    before = evaluate(model, val, SHIFTS, max_offset, dev)
    report(f"held-out offsets within +-1 before tuning: {before.get('offset_acc_pm1', float('nan')):.3f} "
           f"({before['cases']} cases)")
    start = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, train, FitSettings(steps=steps, batch=32, learning_rate=5e-4, eval_every=max(1, steps // 4)),
        dev, report=report)
    after = evaluate(model, val, SHIFTS, max_offset, dev)
    kept = after.get("offset_acc_pm1", 0.0) >= before.get("offset_acc_pm1", 0.0)
    if not kept:
        model.load_state_dict(start)
    save_checkpoint(out, kind="sync", config=data.get("config", {}), dims=data["dims"],
                    state_dict=model.state_dict(), step=steps,
                    metrics={"held_out_offset_acc_pm1_before": before.get("offset_acc_pm1", float("nan")),
                             "held_out_offset_acc_pm1_after": after.get("offset_acc_pm1", float("nan"))})
    minutes = sum(c.num_frames for c in train) / A.VIDEO_FPS / 60
    return TuneResult(out, before, after, kept, round(minutes, 2))
