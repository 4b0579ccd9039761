"""The digital-presenter case on real footage: fine-tune the generator on the first 70% of one shared clip,
then (a) redo its last 30% from its own audio (SSIM / PSNR of the face crops against the real frames, and a
contact sheet in docs/), and (b) dub the clip to ../shared/data/real/audio/musetalk_eng.wav and compare its
sync score and confidence with the undubbed clip played with that audio.

    python benchmarks/real_dub.py --expert REAL_EXPERT.pth [--init GENERATOR.pth] [--clip NAME] [--epochs 6]

--expert: a sync expert trained on real footage at input size 96 (benchmarks/real_sync.py leaves one in its
work folder); --init: a generator to start from (benchmarks/gen_quality.py trains one on synthetic data).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from common import REAL, ROOT, RESULTS, bench_config, save_result  # (puts the project on sys.path)

from synclip import audio as A  # noqa: E402
from synclip import media  # noqa: E402
from synclip.face import crop  # noqa: E402
from synclip.infer import LipSyncInference, candidate_tracks  # noqa: E402
from synclip.metrics import psnr, ssim  # noqa: E402
from synclip.prepare import prepare  # noqa: E402
from synclip.train import run_stage  # noqa: E402

TRAIN_FRACTION = 0.7


def cut(video: Path, start_frame: int, out: Path) -> Path:
    """The video from start_frame on, with its sound (re-encoded at 25 fps)."""
    wav = media.read_audio(video)[A.frames_to_samples(start_frame):]
    frames = (f for i, f in enumerate(media.iter_frames(video)) if i >= start_frame)
    media.write_video(out, frames, audio=wav)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--expert", required=True)
    p.add_argument("--init", default="")
    p.add_argument("--clip", default="pcavs_Input_00098.mp4")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--out", default=str(RESULTS / "real_dub.json"))
    p.add_argument("--sheet", default=str(ROOT / "docs" / "contact_sheet_real.png"))
    args = p.parse_args()
    video = REAL / "video" / args.clip
    if not video.is_file():
        print(f"skipped: {video} not found")
        return 0
    work = Path(tempfile.mkdtemp(prefix="synclip_realdub_"))
    (work / "videos").mkdir()
    (work / "videos" / video.name).symlink_to(video)
    (work / "checkpoints").mkdir()
    shutil.copy(args.expert, work / "checkpoints" / "best_model.pth")
    cfg = bench_config(work, **{"training.num_epochs": args.epochs, "training.samples_per_epoch": args.samples,
                                "training.init_checkpoint": args.init})
    prepare(cfg)
    name = video.stem
    split = {"by": "time", "seed": 0, "train": [[name, 0.0, 0.6]], "val": [[name, 0.6, TRAIN_FRACTION]],
             "test": [[name, TRAIN_FRACTION, 1.0]]}
    t0 = time.perf_counter()
    fit = run_stage(cfg, "generator", report=print, split=split)
    result = {"clip": name, "init": args.init or "scratch", "train_seconds": round(time.perf_counter() - t0, 1),
              "test_crops_last_30pct": fit.test_metrics}
    model = LipSyncInference(fit.best_path, device="cpu")
    # (a) redo the last 30% from its own audio; compare face crops with the real frames.
    n = media.probe_video(video).num_frames
    tail = cut(video, int(n * TRAIN_FRACTION), work / "tail.mp4")
    redo = work / "redo.mp4"
    model.sync_video_audio(tail, tail, redo)
    info = media.probe_video(tail)
    _, squares = candidate_tracks(tail, info, model.detector, model.data_cfg)
    sq = squares[0]
    real = list(media.iter_frames(tail))
    fake = list(media.iter_frames(redo))
    idx = [i for i in range(min(len(real), len(fake), len(sq))) if not np.isnan(sq[i, 0])]
    rc = np.stack([crop(real[i], sq[i], 96) for i in idx])
    fc = np.stack([crop(fake[i], sq[i], 96) for i in idx])
    tr = torch.from_numpy(rc).permute(0, 3, 1, 2).float() / 255
    tf = torch.from_numpy(fc).permute(0, 3, 1, 2).float() / 255
    result["redo_last_30pct"] = {"frames": len(idx), "ssim": float(ssim(tf, tr).mean()),
                                 "psnr": float(psnr(tf, tr).mean()),
                                 "ssim_lower": float(ssim(tf[..., 48:, :], tr[..., 48:, :]).mean())}
    picks = np.linspace(0, len(idx) - 1, 8).astype(int)
    sheet = np.concatenate([np.concatenate([rc[k], fc[k]], 0) for k in picks], 1)
    Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.sheet, cv2.cvtColor(cv2.resize(sheet, None, fx=2, fy=2), cv2.COLOR_RGB2BGR))
    # (b) dub to new English speech (cut to the clip's length so both runs see the same audio span).
    speech = media.read_audio(REAL / "audio" / "musetalk_eng.wav")[: A.frames_to_samples(n)]
    new_audio = work / "speech.wav"
    media.write_wav(new_audio, speech)
    dubbed = work / "dubbed.mp4"
    model.sync_video_audio(video, new_audio, dubbed)
    s0, d0 = model.compute_sync_score(video, new_audio)
    s1, d1 = model.compute_sync_score(dubbed)
    result["dub_new_speech"] = {"undubbed_score": s0, "undubbed_confidence": d0["confidence"],
                                "dubbed_score": s1, "dubbed_confidence": d1["confidence"],
                                "dubbed_offset_frames": d1["offset_frames"]}
    print(json.dumps({k: v for k, v in result.items() if k != "test_crops_last_30pct"}, indent=1))
    save_result(args.out, result)
    print(f"contact sheet: {args.sheet}; work folder {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
