"""Benchmark `synclip score` and sync-expert training throughput.

    python benchmarks/score.py --checkpoint CK [--device cpu]

- wall time and real-time factor of scoring a 60-second 720p video (the shared wav2lip clip repeated),
  decode and face detection included, in a fresh process, as `synclip score` runs it;
- training samples per second of the benchmark expert config (chunks of 25 frames = 21 windows each), on
  random inputs so the figure is the model's, not the data loader's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REAL, ROOT, RESULTS, save_result  # (puts the project on sys.path)
from prepare import make_long_video  # noqa: E402

VIDEO = REAL / "video" / "wav2lip_pr600_test.mov"


def train_throughput(device: str, steps: int = 20) -> dict:
    import torch

    from synclip import audio as A
    from synclip.models.syncnet import SyncDims, SyncExpert
    from synclip.sync import sync_loss

    dev = torch.device(device)
    m = SyncExpert(SyncDims(input_size=96, hidden_dim=128, base_channels=16)).to(dev)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    x = torch.rand(8, 25, 3, 96, 96, device=dev)
    f = torch.rand(8, 21, A.MEL_WINDOW, A.N_MELS, device=dev)
    ids, starts = torch.arange(8, device=dev), torch.zeros(8, dtype=torch.long, device=dev)
    for i in range(steps + 3):
        if i == 3:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
        loss, _ = sync_loss(m, x, f, ids, starts, 5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    return {"chunks_per_s": steps * 8 / dt, "windows_per_s": steps * 8 * 21 / dt, "frames_per_s": steps * 200 / dt}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(RESULTS / "score.json"))
    args = p.parse_args()
    result = {"device": args.device, "cpus": os.cpu_count(), "platform": platform.platform()}
    if VIDEO.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            video = make_long_video(VIDEO, 1.0, Path(tmp) / "sixty.mp4")
            env = dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=str(ROOT))
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "synclip.cli", "score", str(video), "--checkpoint",
                                  args.checkpoint, "--device", args.device, "--json"], capture_output=True,
                                 text=True, env=env, check=True)
            wall = time.perf_counter() - t
            d = json.loads(out.stdout)
            result["score_60s_720p"] = {"wall_s": wall, "realtime_factor": 60.0 / wall, "score": d["score"],
                                        "offset_frames": d["offset_frames"], "face_coverage": d["face_coverage"]}
            print(f"score, 60 s of 720p: {wall:.1f} s wall = {60 / wall:.1f}x real time "
                  f"(face in {d['face_coverage']:.0%} of frames)")
    else:
        print(f"skipped the scoring run: {VIDEO} not found")
    tp = train_throughput(args.device)
    result["train"] = tp
    print(f"training: {tp['chunks_per_s']:.1f} chunks/s = {tp['windows_per_s']:.0f} windows/s "
          f"({tp['frames_per_s']:.0f} frames/s) on {args.device}")
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
