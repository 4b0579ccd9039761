"""Generator quality on held-out synthetic data, silence behaviour, and a contact sheet for docs/.

    python benchmarks/gen_quality.py --work /tmp/synclip_syncq [--epochs 13] [--skip-train]

Uses the prepared training clips and the sync expert of benchmarks/sync_quality.py (same --work), trains
the generator (expert frozen), then on held-out looks and sentences:
- confidence (LSE-C) of the expert on: the true synthetic video of a new sentence, the undubbed video with
  that sentence's audio, and the video dubbed to it (goal: dubbed >= 0.9 x true, >= 2 x undubbed);
- SSIM / PSNR of generated crops against the ground-truth crops when a clip is redone from its own audio;
- LSE-D (min distance) beside them;
- silence: mouth opening (dark-pixel share of the mouth box) of generated frames in the sentence's pauses vs
  the truth's range there, and on a clip dubbed to pure silence;
- docs/contact_sheet_synthetic.png: ground truth over generated, at several mouth openings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from common import ROOT, RESULTS, bench_config, save_result  # (puts the project on sys.path)

from synclip import media, synth  # noqa: E402
from synclip.dub import DubOptions  # noqa: E402
from synclip.face import crop  # noqa: E402
from synclip.infer import LipSyncInference, candidate_tracks  # noqa: E402
from synclip.metrics import psnr, ssim  # noqa: E402
from synclip.train import run_stage  # noqa: E402
from synclip.synth import PAUSE_SYMBOL  # noqa: E402

HELD = 95_000
SIZE = 96


def mouth_opening(crops: np.ndarray) -> np.ndarray:
    """Share of dark pixels in the mouth box of (N, S, S, 3) crops: a pixel measure of how open the mouth is."""
    s = crops.shape[1]
    box = crops[:, int(0.58 * s):int(0.86 * s), int(0.3 * s):int(0.7 * s)].astype(np.float32)
    luma = box @ np.array([0.299, 0.587, 0.114], np.float32)
    ref = np.median(luma.reshape(len(luma), -1), axis=1)[:, None, None]
    return (luma < 0.45 * ref).mean(axis=(1, 2))


def crops_of(model: LipSyncInference, video: Path, squares: np.ndarray | None = None):
    """Face crops of every frame of `video` (with its own tracked squares unless given) -> (T, S, S, 3), squares."""
    if squares is None:
        info = media.probe_video(video)
        _, sq = candidate_tracks(video, info, model.detector, model.data_cfg)
        squares = sq[0]
    frames = list(media.iter_frames(video))
    n = min(len(frames), len(squares))
    return np.stack([crop(frames[i], squares[i], SIZE) for i in range(n)]), squares


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/synclip_syncq")
    p.add_argument("--epochs", type=int, default=13)
    p.add_argument("--samples", type=int, default=1600)
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--skip-train", action="store_true", help="evaluate the trained generator again; the training "
                   "history of --out is kept")
    p.add_argument("--out", default=str(RESULTS / "gen_quality.json"))
    p.add_argument("--sheet", default=str(ROOT / "docs" / "contact_sheet_synthetic.png"))
    args = p.parse_args()
    work = Path(args.work)
    cfg = bench_config(work, **{"training.num_epochs": args.epochs, "training.samples_per_epoch": args.samples,
                                "training.learning_rate": args.lr})
    result: dict = {"config": {"epochs": args.epochs, "samples_per_epoch": args.samples, "lr": args.lr}}
    if args.skip_train:
        if Path(args.out).is_file():
            old = json.loads(Path(args.out).read_text())
            result.update({k: old[k] for k in ("config", "train_seconds", "history", "test_crops") if k in old})
    else:
        t0 = time.perf_counter()
        fit = run_stage(cfg, "generator", report=print)
        result["train_seconds"] = round(time.perf_counter() - t0, 1)
        result["history"] = fit.history
        result["test_crops"] = fit.test_metrics
    model = LipSyncInference(work / "checkpoints" / "generator" / "best_model.pth", device="cpu")
    held = work / "gen_held"
    rows, recon, pauses = [], [], []
    sheet_rows = []
    for i in range(args.pairs):
        look = HELD + i
        synth.make_clip(held, f"a{i}", seconds=3.0, appearance_index=look, sentence_seed=look)
        b = synth.make_clip(held, f"b{i}", seconds=3.0, appearance_index=look, sentence_seed=look + 500)
        va, vb, audio_b = held / "videos" / f"a{i}.mp4", held / "videos" / f"b{i}.mp4", held / "audios" / f"b{i}.wav"
        dubbed = held / f"dub_a{i}_to_b{i}.mp4"
        model.sync_video_audio(va, audio_b, dubbed)
        _, d_true = model.compute_sync_score(vb)
        _, d_undub = model.compute_sync_score(va, audio_b)
        _, d_dub = model.compute_sync_score(dubbed)
        rows.append({"true": d_true["confidence"], "undubbed": d_undub["confidence"], "dubbed": d_dub["confidence"],
                     "lse_d_true": d_true["min_distance"], "lse_d_dubbed": d_dub["min_distance"],
                     "score_true": d_true["score"], "score_undubbed": d_undub["score"], "score_dubbed": d_dub["score"]})
        # Redo b from its own audio: generated crops vs the true crops (same squares).
        redo = held / f"redo_b{i}.mp4"
        model.sync_video_audio(vb, audio_b, redo)
        gt, squares = crops_of(model, vb)
        gen, _ = crops_of(model, redo, squares)
        n = min(len(gt), len(gen))
        tg = torch.from_numpy(gen[:n]).permute(0, 3, 1, 2).float() / 255
        tt = torch.from_numpy(gt[:n]).permute(0, 3, 1, 2).float() / 255
        recon.append({"ssim": float(ssim(tg, tt).mean()), "psnr": float(psnr(tg, tt).mean()),
                      "ssim_lower": float(ssim(tg[..., SIZE // 2:, :], tt[..., SIZE // 2:, :]).mean())})
        # Mouth opening in the pauses of b's sentence (pixels, generated vs truth).
        t = (np.arange(n) + 0.5) / 25
        in_pause = np.zeros(n, bool)
        for ph in b["phones"]:
            if ph["symbol"] == PAUSE_SYMBOL:
                in_pause |= (t >= ph["start_s"] + 0.06) & (t < ph["end_s"] - 0.06)
        og, ot = mouth_opening(gen[:n]), mouth_opening(gt[:n])
        if in_pause.any():
            pauses.append({"frames": int(in_pause.sum()), "generated_mean": float(og[in_pause].mean()),
                           "generated_max": float(og[in_pause].max()), "truth_min": float(ot[in_pause].min()),
                           "truth_max": float(ot[in_pause].max()), "speech_truth_mean": float(ot[~in_pause].mean()),
                           "speech_generated_mean": float(og[~in_pause].mean()),
                           "speech_generated_max": float(og[~in_pause].max())})
        if i < 3:
            order = np.argsort(np.asarray(b["mouth_opening"][:n]))
            picks = order[np.linspace(0, n - 1, 6).astype(int)]
            sheet_rows.append(np.concatenate([np.concatenate([gt[k], gen[k]], 0) for k in picks], 1))
    # Pure silence: the mouth should stay closed.
    silent = held / "silence.wav"
    media.write_wav(silent, np.zeros(3 * 16000, np.float32))
    quiet = held / "dub_silence.mp4"
    model.sync_video_audio(held / "videos" / "a0.mp4", silent, quiet, options=DubOptions(allow_silence=True))
    q, _ = crops_of(model, quiet)
    gt0, _ = crops_of(model, held / "videos" / "a0.mp4")
    truth0 = json.loads((held / "truth" / "a0.json").read_text())
    closed = np.asarray(truth0["mouth_opening"][: len(gt0)]) < 0.05
    result["silence"] = {"dubbed_to_silence_opening_mean": float(mouth_opening(q).mean()),
                         "dubbed_to_silence_opening_max": float(mouth_opening(q).max()),
                         "truth_closed_frames_opening_mean": float(mouth_opening(gt0[closed]).mean()) if closed.any()
                         else None,
                         "truth_speaking_opening_mean": float(mouth_opening(gt0[~closed]).mean())}
    r = {k: float(np.mean([x[k] for x in rows])) for k in rows[0]}
    result.update({"pairs": rows, "mean": r, "dubbed_over_true": r["dubbed"] / r["true"],
                   "dubbed_over_undubbed": r["dubbed"] / max(r["undubbed"], 1e-6),
                   "reconstruction": {k: float(np.mean([x[k] for x in recon])) for k in recon[0]},
                   "pauses": pauses})
    sheet = np.concatenate(sheet_rows, 0)
    Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.sheet, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"confidence (LSE-C): true {r['true']:.3f}, undubbed {r['undubbed']:.3f}, dubbed {r['dubbed']:.3f} "
          f"-> dubbed/true {result['dubbed_over_true']:.2f}, dubbed/undubbed {result['dubbed_over_undubbed']:.2f}")
    print(f"LSE-D: true {r['lse_d_true']:.3f}, dubbed {r['lse_d_dubbed']:.3f}")
    print("reconstruction:", {k: round(v, 3) for k, v in result["reconstruction"].items()})
    if pauses:
        print("pauses (generated mean/max vs truth min..max; speech: generated mean vs truth mean):",
              [(round(x["generated_mean"], 3), round(x["generated_max"], 3), round(x["truth_min"], 3),
                round(x["truth_max"], 3), round(x["speech_generated_mean"], 3), round(x["speech_truth_mean"], 3))
               for x in pauses])
    print("silence:", {k: (round(v, 4) if v is not None else None) for k, v in result["silence"].items()})
    save_result(args.out, result)
    print(f"contact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
