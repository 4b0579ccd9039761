"""Sync expert quality on held-out synthetic data (appearances and sentences never seen in training).

    python benchmarks/sync_quality.py [--clips 160] [--epochs 12] [--work /tmp/synclip_syncq] [--skip-train]

Trains the expert with the benchmark config on this machine (time-boxed by the epoch count chosen for a
2-core CPU), then measures on held-out clips:
- binary sync accuracy on 5-frame windows (in-sync vs off-sync by >= 5 frames or another clip, balanced);
- offset found within +-1 frame on 2-second segments shifted by -10..+10 frames (features-level), and
  end to end on rendered 2-second clips whose audio leads by -10..+10 frames (decode + faces + scoring);
- ranking: the in-sync clip scores higher than the same clip with audio shifted by 5-10 frames, and than
  the clip with another sentence's audio;
- two-face clips: the speaking face is named;
- fix-offset: the measured offset of the fixed output.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from common import RESULTS, bench_config, save_result  # noqa: E402 (puts the project on sys.path)

from synclip import media, synth  # noqa: E402
from synclip.infer import LipSyncInference, shift_audio  # noqa: E402
from synclip.prepare import prepare  # noqa: E402
from synclip.train import run_stage  # noqa: E402

HELD = 90_000  # appearance and sentence seeds of held-out clips start here; training uses 100000+


def held_out_features(model: LipSyncInference, work: Path) -> dict:
    """Binary accuracy and segment offset accuracy on prepared held-out clips (features level)."""
    import torch

    from synclip.datasets import ChunkSampler, load_clips
    from synclip.sync import sync_loss
    from synclip.sync_stage import CHUNK_FRAMES, offset_errors

    cfg = bench_config(work / "held", work / "held" / "videos", work / "held" / "audios")
    prepare(cfg)
    clips = list(load_clips(cfg.data.processed_dir, 96).values())
    sampler = ChunkSampler(clips, CHUNK_FRAMES, seed=7)
    keys = ("acc", "acc_pos", "acc_neg", "speech_acc", "speech_acc_pos", "speech_acc_neg")
    sums = {k: [] for k in keys}
    with torch.no_grad():
        for _ in range(40):
            x, f, ids, starts = sampler.sample(8)
            _, s = sync_loss(model.expert, x, f, ids, starts, 5)
            for k in keys:
                sums[k].append(s[k])
    errors = offset_errors(model.expert, clips, model.device, 15)
    acc = {("binary_" + k if k == "acc" else k.replace("speech_acc", "binary_acc_speech")): float(np.nanmean(v))
           for k, v in sums.items()}
    return {"held_out_clips": len(clips), **acc, "segment_cases": int(len(errors)),
            "segment_offset_acc_pm1": float((np.abs(errors) <= 1).mean()),
            "segment_offset_mae": float(np.abs(errors).mean())}


def end_to_end(model: LipSyncInference, work: Path) -> dict:
    e2e = work / "e2e"
    rows, ranks, fixes = [], [], []
    for i, k in enumerate(range(-10, 11)):
        seed = HELD + 500 + i
        truth = synth.make_clip(e2e, f"off_{i:02d}", seconds=2.0, offset_frames=k, appearance_index=seed,
                                sentence_seed=seed)
        _, d = model.compute_sync_score(e2e / "videos" / f"off_{i:02d}.mp4")
        rows.append({"true": k, "found": d["offset_frames"], "confidence": d["confidence"]})
        out = e2e / f"fixed_{i:02d}.mp4"
        model.sync_video_audio(e2e / "videos" / f"off_{i:02d}.mp4", None, out, mode="shift")
        _, fd = model.compute_sync_score(out)
        fixes.append(fd["offset_frames"])
        _ = truth
    rng = np.random.default_rng(3)
    for i in range(20):
        seed = HELD + 700 + i
        synth.make_clip(e2e, f"rank_{i:02d}", seconds=2.0, appearance_index=seed, sentence_seed=seed)
        synth.make_clip(e2e, f"other_{i:02d}", seconds=2.0, appearance_index=seed, sentence_seed=seed + 50)
        video = e2e / "videos" / f"rank_{i:02d}.mp4"
        wav = media.read_audio(e2e / "audios" / f"rank_{i:02d}.wav")
        k = int(rng.choice([-1, 1]) * rng.integers(5, 11))
        shifted = e2e / "audios" / f"rank_{i:02d}_shift.wav"
        media.write_wav(shifted, shift_audio(wav, k))
        s_in, _ = model.compute_sync_score(video)
        s_shift, _ = model.compute_sync_score(video, shifted)
        s_other, _ = model.compute_sync_score(video, e2e / "audios" / f"other_{i:02d}.wav")
        ranks.append({"in_sync": s_in, "shifted": s_shift, "shift": k, "other_audio": s_other})
    speakers = []
    for i in range(20):
        seed = HELD + 900 + i
        truth = synth.make_clip(e2e, f"two_{i:02d}", seconds=3.0, faces=2, seed=seed, appearance_index=seed,
                                sentence_seed=seed)
        _, d = model.compute_sync_score(e2e / "videos" / f"two_{i:02d}.mp4")
        cx = (d["speaker_box"][0] + d["speaker_box"][2]) / 2
        centres = [np.median([(b[0] + b[2]) / 2 for b in boxes]) for boxes in truth["face_boxes"]]
        named = int(np.argmin([abs(cx - c) for c in centres]))
        speakers.append({"true": truth["speaker"], "named": named, "faces_found": d["num_faces"]})
    found = np.array([r["found"] - r["true"] for r in rows])
    return {
        "e2e_offset_cases": len(rows), "e2e_offset_acc_pm1": float((np.abs(found) <= 1).mean()),
        "e2e_offsets": rows,
        "rank_cases": len(ranks),
        "rank_beats_shifted": float(np.mean([r["in_sync"] > r["shifted"] for r in ranks])),
        "rank_beats_other_audio": float(np.mean([r["in_sync"] > r["other_audio"] for r in ranks])),
        "mean_scores": {k: float(np.mean([r[k] for r in ranks])) for k in ("in_sync", "shifted", "other_audio")},
        "speaker_cases": len(speakers),
        "speaker_acc": float(np.mean([s["true"] == s["named"] for s in speakers])),
        "fix_offset_after": fixes, "fix_offset_within_pm1": float(np.mean(np.abs(fixes) <= 1)),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/synclip_syncq")
    p.add_argument("--clips", type=int, default=160)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--samples", type=int, default=1200, help="chunks (25 frames) per epoch")
    p.add_argument("--skip-train", action="store_true", help="evaluate the checkpoint already in --work")
    p.add_argument("--out", default=str(RESULTS / "sync_quality.json"))
    args = p.parse_args()
    work = Path(args.work)
    cfg = bench_config(work, work / "train" / "videos", work / "train" / "audios",
                       **{"training.num_epochs": args.epochs, "training.samples_per_epoch": args.samples})
    result: dict = {"config": {"clips": args.clips, "epochs": args.epochs, "samples_per_epoch": args.samples}}
    if not args.skip_train:
        t0 = time.perf_counter()
        synth.make_dataset(work / "train", args.clips, seconds=4.0, seed=1)
        result["train_clips"] = args.clips
        for i in range(24):
            synth.make_clip(work / "held", f"held_{i:02d}", seconds=4.0, appearance_index=HELD + i,
                            sentence_seed=HELD + i)
        result["data_seconds"] = round(time.perf_counter() - t0, 1)
        prepare(cfg)
        t0 = time.perf_counter()
        fit = run_stage(cfg, "sync", report=print, progress=False)
        result["train_seconds"] = round(time.perf_counter() - t0, 1)
        result["left_chance_epoch"] = fit.left_chance_epoch
        result["history"] = fit.history
    model = LipSyncInference(work / "checkpoints" / "best_model.pth", device="cpu")
    result.update(held_out_features(model, work))
    result.update(end_to_end(model, work))
    summary = {k: v for k, v in result.items() if isinstance(v, (int, float))}
    for k, v in summary.items():
        print(f"{k:28s} {v:.4f}" if isinstance(v, float) else f"{k:28s} {v}")
    print("mean scores:", {k: round(v, 3) for k, v in result["mean_scores"].items()})
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
