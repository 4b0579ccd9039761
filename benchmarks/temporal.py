"""The sync expert's temporal model, conv vs transformer (``model.temporal``), side by side on synthetic faces.

    python benchmarks/temporal.py [--clips 60] [--epochs 5] [--samples 600] [--work /tmp/synclip_temporal]

Both kinds train on the same prepared clips with the same seed and schedule (the benchmark model of
common.py), then are measured on the held-out clips of benchmarks/sync_quality.py (appearances and sentences
never seen in training): binary sync accuracy, offsets within +-1 frame on 2-s segments shifted by -10..+10,
parameters (the whole expert and its temporal part), training chunks/s and the face side's inference time.
A short schedule on a shared CPU: the comparison is between the two kinds, not of either against the
full benchmark; the per-run timings (train_seconds, face_side_*) were taken while the machine's load varied,
so ``--speed-only`` measures both kinds again in turns (``paired_speed``), which is the speed to compare.
Writes benchmarks/results/temporal.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from common import RESULTS, bench_config, save_result  # noqa: E402 (puts the project on sys.path)
from sync_quality import HELD, held_out_features  # noqa: E402

from synclip import synth  # noqa: E402
from synclip.infer import LipSyncInference  # noqa: E402
from synclip.models.syncnet import count_parameters  # noqa: E402
from synclip.prepare import prepare  # noqa: E402
from synclip.train import run_stage  # noqa: E402

KINDS = ("conv", "transformer")
SPEED_FRAMES = 250  # 10 s of video: the face side's cost per clip


@torch.no_grad()
def face_side_seconds(expert, repeats: int = 3) -> dict:
    """Seconds for 10 s of 96-px crops: frame features + window embeddings, and the temporal model alone."""
    crops = torch.rand(1, SPEED_FRAMES, 3, 96, 96)
    feats = expert.frame_features(crops)
    best_all, best_temporal = float("inf"), float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        expert.window_embed(expert.frame_features(crops))
        t1 = time.perf_counter()
        expert.window_embed(feats)
        t2 = time.perf_counter()
        best_all, best_temporal = min(best_all, t1 - t0), min(best_temporal, t2 - t1)
    return {"face_side_s_per_10s": round(best_all, 4), "temporal_s_per_10s": round(best_temporal, 5)}


def paired_speed(work: Path, kinds, rounds: int = 5) -> dict:
    """The kinds' speeds measured in turns in one process (a loaded machine slows them alike): the face side
    and the temporal model for 10 s of video, and one training step (8 one-second chunks, forward + backward)."""
    from synclip.sync import sync_loss

    experts = {k: LipSyncInference(work / f"ck_{k}" / "best_model.pth", device="cpu").expert for k in kinds}
    crops, feats = torch.rand(8, 25, 3, 96, 96), torch.rand(8, 21, 16, 80)
    ids, starts = torch.arange(8), torch.zeros(8, dtype=torch.long)
    best: dict = {k: {} for k in kinds}
    for _ in range(rounds):
        for k, model in experts.items():
            for key, v in face_side_seconds(model, repeats=1).items():
                best[k][key] = min(best[k].get(key, float("inf")), v)
            model.train()
            t0 = time.perf_counter()
            loss, _ = sync_loss(model, crops, feats, ids, starts, 5)
            loss.backward()
            model.zero_grad(set_to_none=True)
            best[k]["train_step_s"] = round(min(best[k].get("train_step_s", float("inf")),
                                                time.perf_counter() - t0), 4)
            model.eval()
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/synclip_temporal")
    p.add_argument("--clips", type=int, default=60)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--samples", type=int, default=600, help="chunks (25 frames) per epoch")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--out", default=str(RESULTS / "temporal.json"))
    p.add_argument("--speed-only", action="store_true", help="measure the trained kinds' speeds again, in turns")
    args = p.parse_args()
    torch.set_num_threads(1)  # a shared machine: the two kinds see the same single core
    work = Path(args.work)
    if args.speed_only:
        result = json.loads(Path(args.out).read_text())
        result["paired_speed"] = paired_speed(work, args.kinds)
        print(result["paired_speed"])
        save_result(args.out, result)
        return 0
    if not (work / "train" / "videos").is_dir():
        synth.make_dataset(work / "train", args.clips, seconds=4.0, seed=1)
        for i in range(24):
            synth.make_clip(work / "held", f"held_{i:02d}", seconds=4.0, appearance_index=HELD + i,
                            sentence_seed=HELD + i)
    result: dict = {"config": {"clips": args.clips, "epochs": args.epochs, "samples_per_epoch": args.samples,
                               "threads": 1}, "kinds": {}}
    for kind in args.kinds:
        cfg = bench_config(work, work / "train" / "videos", work / "train" / "audios",
                           **{"training.num_epochs": args.epochs, "training.samples_per_epoch": args.samples,
                              "model.temporal": kind, "paths.checkpoints_dir": str(work / f"ck_{kind}"),
                              "paths.logs_dir": str(work / f"logs_{kind}")})
        prepare(cfg)
        t0 = time.perf_counter()
        fit = run_stage(cfg, "sync", report=print, progress=False)
        seconds = time.perf_counter() - t0
        model = LipSyncInference(work / f"ck_{kind}" / "best_model.pth", device="cpu")
        row = {"train_seconds": round(seconds, 1),
               "train_chunks_per_s": round(args.epochs * args.samples / seconds, 2),
               "parameters": count_parameters(model.expert),
               "temporal_parameters": count_parameters(model.expert.face_temporal),
               "val_last": fit.history[-1]["val"] if fit.history else {},
               **face_side_seconds(model.expert), **held_out_features(model, work)}
        result["kinds"][kind] = row
        print(kind, {k: v for k, v in row.items() if isinstance(v, (int, float))})
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
