"""Person-specific fine-tuning of the real-footage expert: how much of one presenter's footage it needs.

    python benchmarks/real_finetune.py --init CHECKPOINT [--minutes 1 5 15 25.7]

The presenter is grid_s1 (one man, studio), split by sentence as in real_expert.py: fine-tuning draws on the
60% training part only; the 20% test part is cut into 2-s pieces (frames 12-61 of each 3-s clip), each
scored in sync and with its audio shifted by +-5 and +-10 frames (+-15 searched). ``--init`` should be an
expert that never saw this person (e.g. one trained on lrc_ar alone) so the curve shows what the person's
own footage adds; the shipped expert, which saw grid_s1's training part, is measured the same way.
Writes benchmarks/results/real_finetune.json.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch
from common import RESULTS, save_result
from real_expert import CACHE, corpus_cache, split_names

from synclip.checkpoint import expert_from, load_checkpoint  # noqa: E402
from synclip.corpus import load_cache  # noqa: E402
from synclip.lips_eval import evaluate  # noqa: E402
from synclip.lips_train import FitSettings, add_audio_variants, fit, to_train_clip  # noqa: E402

SEGMENT = (12, 50)  # frames 12..61: a 2-s piece inside each 3-s test clip
SHIFTS = (0, 5, -5, 10, -10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", required=True, help="the expert to start from (a path, or 'pretrained')")
    p.add_argument("--cache", default=str(CACHE))
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 15, 25.7])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--out", default=str(RESULTS / "real_finetune.json"))
    args = p.parse_args()
    cache = corpus_cache(args.cache)
    if cache is None:
        return 0
    device = torch.device("cpu")
    clips = {c.name: c for c in load_cache(cache / "grid_s1.npz")}
    parts = split_names("grid_s1", list(clips))
    ck = load_checkpoint(args.init, kind="sync")
    base = expert_from(ck, args.init, device)
    template = base.template.numpy()
    test = [to_train_clip(clips[n], "grid_s1", template, base.uses_pixels) for n in parts["test"]]
    pool = parts["train"][:]
    random.Random(2).shuffle(pool)
    result = {"init": str(args.init), "test_clips": len(test), "segment_frames": SEGMENT[1],
              "zero_shot": evaluate(base, test, SHIFTS, 15, device, segment=SEGMENT), "curve": []}
    print(f"zero-shot: {result['zero_shot']}")
    for minutes in args.minutes:
        n = min(len(pool), max(1, round(minutes * 60 / 3.0)))
        raw = [clips[name] for name in pool[:n]]
        train = [to_train_clip(c, "grid_s1", template, base.uses_pixels) for c in raw]
        add_audio_variants(train, [c.wav for c in raw], 3)
        model = expert_from(ck, args.init, device)
        model.train()
        t0 = time.perf_counter()
        fit(model, train, FitSettings(steps=args.steps, batch=32, learning_rate=args.lr, eval_every=args.steps),
            device, report=lambda line: None)
        row = {"minutes": round(n * 3.0 / 60, 1), "clips": n, "steps": args.steps,
               "seconds": round(time.perf_counter() - t0),
               **evaluate(model, test, SHIFTS, 15, device, segment=SEGMENT)}
        result["curve"].append(row)
        print(f"{row['minutes']:5.1f} min ({n} clips): 2-s pieces within +-1: {row['offset_acc_pm1']:.3f} "
              f"(in sync {row['insync_acc_pm1']:.3f}), score in sync {row['score_insync']:.3f}, "
              f"shifted {row['score_shifted_5plus']:.3f}, {row['seconds']} s")
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
