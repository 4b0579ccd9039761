"""A first look at real footage: the sync expert on the three longest clips in ../shared/data/real.

    python benchmarks/real_sync.py [--init CHECKPOINT] [--epochs 10]

Trains on the first 70% of each clip (from scratch, or fine-tuning --init, e.g. the synthetic expert), then
on the last 30% measures offset accuracy on 2-second windows whose audio is shifted by -10..+10 frames,
against chance (a uniform guess over the 31 searched offsets lands within +-1 frame 3/31 of the time).
Writes the per-epoch curves and the result to benchmarks/results/real_sync.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REAL, RESULTS, bench_config, save_result  # (puts the project on sys.path)

from synclip import media  # noqa: E402
from synclip.prepare import prepare  # noqa: E402
from synclip.train import run_stage  # noqa: E402

VIDEOS = REAL / "video"
TRAIN_FRACTION = 0.7
CHANCE_PM1 = 3 / 31


def _num(value: float | None) -> float:
    return np.nan if value is None else value


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", default="", help="start from this sync checkpoint (same dims as below)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--work", default="")
    p.add_argument("--out", default=str(RESULTS / "real_sync.json"))
    args = p.parse_args()
    if not VIDEOS.is_dir():
        print(f"skipped: real test media not found at {VIDEOS}")
        return 0
    clips = sorted(VIDEOS.iterdir(), key=lambda v: -media.probe_video(v).duration_s)[:3]
    work = Path(args.work or tempfile.mkdtemp(prefix="synclip_real_"))
    (work / "videos").mkdir(parents=True, exist_ok=True)
    for v in clips:
        link = work / "videos" / v.name
        if not link.exists():
            link.symlink_to(v)
    cfg = bench_config(work, **{"training.num_epochs": args.epochs, "training.samples_per_epoch": args.samples,
                                "training.init_checkpoint": args.init})
    prepare(cfg)
    names = [v.stem for v in clips]
    split = {"by": "time", "seed": 0, "train": [[n, 0.0, TRAIN_FRACTION] for n in names],
             "val": [[n, TRAIN_FRACTION, 1.0] for n in names], "test": [[n, TRAIN_FRACTION, 1.0] for n in names]}
    t0 = time.perf_counter()
    fit = run_stage(cfg, "sync", report=print, split=split)
    curves = [{"epoch": h["epoch"], "train_bce": h["train"]["bce"], "val_bce": h["val"]["bce"],
               "val_acc": h["val"]["acc"], "val_offset_acc_pm1": h["val"].get("offset_acc"),
               "val_offset_mae": h["val"].get("offset_mae")} for h in fit.history]
    result = {"clips": names, "init": args.init or "scratch", "train_seconds": round(time.perf_counter() - t0, 1),
              "chance_offset_acc_pm1": CHANCE_PM1, "held_out_last_30pct": fit.test_metrics, "curves": curves}
    print(f"{'epoch':>5s} {'train bce':>9s} {'val bce':>8s} {'val acc':>8s} {'offset acc':>10s} {'offset MAE':>10s}")
    for c in curves:
        print(f"{c['epoch']:5d} {c['train_bce']:9.3f} {c['val_bce']:8.3f} {c['val_acc']:8.3f} "
              f"{_num(c['val_offset_acc_pm1']):10.3f} {_num(c['val_offset_mae']):10.2f}")
    print(f"last 30%: offset within +-1 frame {fit.test_metrics.get('offset_acc', float('nan')):.3f} "
          f"(chance {CHANCE_PM1:.3f}), binary acc {fit.test_metrics.get('acc', float('nan')):.3f}")
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
