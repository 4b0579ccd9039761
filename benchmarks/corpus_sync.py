"""How in sync is the corpus itself? Per clip and per source, before (and after) training on it.

    python benchmarks/corpus_sync.py [--cache DIR] [--expert CHECKPOINT]

Model-free: each clip's mouth opening (face mesh) is correlated with its speech envelope at lags -10..+10
frames; a clip's own peak is noisy on 1-3 s clips, but the mean curve over hundreds of clips of one source
shows a constant offset of that source clearly. With ``--expert`` (an expert trained on OTHER sources, so
it cannot have learnt this source's offset), each clip's offset is also found with it (+-7 frames), which
gives the per-clip distribution and the clips that cannot be trusted. Offsets follow syncnet_python's sign:
+K = the audio leads the video by K frames. Writes benchmarks/results/corpus_sync.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, save_result

from synclip import audio as A  # noqa: E402
from synclip.checkpoint import load_checkpoint  # noqa: E402
from synclip.corpus import load_cache  # noqa: E402
from synclip.lips_eval import expert_cases, speech_envelope  # noqa: E402
from synclip.lips_train import to_train_clip  # noqa: E402
from synclip.mesh import mouth_opening  # noqa: E402
from synclip.models.lipsync import LipSyncDims, LipSyncExpert  # noqa: E402

CACHE = Path.home() / ".cache" / "synclip" / "corpus"
LAGS = np.arange(-10, 11)


def lag_curve(opening: np.ndarray, env: np.ndarray) -> np.ndarray:
    """Pearson correlation of opening[v] with env[v - o] for each o in LAGS (over the frames both cover)."""
    t = min(len(opening), len(env))
    out = []
    for o in LAGS:
        v = np.arange(max(0, o), min(t, t + o))
        a, b = opening[v], env[v - o]
        ok = ~np.isnan(a)
        a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
        out.append(float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-12)))
    return np.array(out)


def histogram(values: list[int]) -> dict[str, int]:
    vals, counts = np.unique(np.asarray(values), return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(vals, counts)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=str(CACHE))
    p.add_argument("--sources", nargs="+", default=["grid_s1", "lrc_ar", "video"])
    p.add_argument("--expert", default="", help="an expert trained without the source being measured")
    p.add_argument("--out", default=str(RESULTS / "corpus_sync.json"))
    args = p.parse_args()
    cache = Path(args.cache)
    model = None
    if args.expert:
        ck = load_checkpoint(args.expert, kind="sync")
        model = LipSyncExpert(LipSyncDims(**ck["dims"]))
        model.load_state_dict(ck["state_dict"])
        model.eval()
    result = {}
    for source in args.sources:
        if not (cache / f"{source}.npz").is_file():
            print(f"{source}: no cache, skipped")
            continue
        clips = load_cache(cache / f"{source}.npz")
        curves, peaks, found, conf = [], [], [], []
        for c in clips:
            feats = A.normalize_mel(A.log_mel(c.wav))
            curve = lag_curve(mouth_opening(c.landmarks), speech_envelope(feats, c.num_frames))
            curves.append(curve)
            peaks.append(int(LAGS[np.nanargmax(curve)]))
            if model is not None:
                tc = to_train_clip(c, source, model.template.numpy(), False)
                cases = expert_cases(model, tc, (0,), 7, torch.device("cpu"))
                if cases:
                    found.append(cases[0].found)
                    conf.append(cases[0].confidence)
        mean_curve = np.nanmean(curves, 0)
        row = {"clips": len(clips), "model_free_mean_curve_peak": int(LAGS[np.nanargmax(mean_curve)]),
               "model_free_mean_curve": {str(int(o)): round(float(v), 4) for o, v in zip(LAGS, mean_curve)},
               "model_free_per_clip_peaks": histogram(peaks)}
        if found:
            f = np.asarray(found)
            row.update(expert_offsets=histogram(found), expert_median_offset=float(np.median(f)),
                       expert_within_1_of_median=round(float((np.abs(f - np.median(f)) <= 1).mean()), 4),
                       expert_median_confidence=round(float(np.median(conf)), 4),
                       untrusted_clips=[c.name for c, o in zip(clips, found) if abs(o - np.median(f)) > 2])
        result[source] = row
        print(f"{source}: {len(clips)} clips; model-free mean-curve peak at {row['model_free_mean_curve_peak']:+d} "
              f"frames; per-clip peaks {row['model_free_per_clip_peaks']}")
        if found:
            print(f"  expert offsets {row['expert_offsets']} (median {row['expert_median_offset']:+.0f}, "
                  f"{row['expert_within_1_of_median']:.0%} within 1 of it)")
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
