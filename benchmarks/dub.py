"""Benchmark `synclip dub`: output frames/s for 60 s of audio on the shared 720p video at input sizes 96 and
256 (everything included: decode, face tracking, generator, paste-back, H.264+AAC encode), and peak memory
for a 10-minute audio (must stay flat with the audio's length: compare with the 1-minute run).

    python benchmarks/dub.py [--checkpoint-96 C] [--device cpu] [--long-minutes 10]

Speed does not depend on what the weights learnt, so by default each size uses an untrained generator of the
benchmark config's shape (base_channels 16); pass a trained checkpoint to time that instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import REAL, ROOT, RESULTS, save_result  # (puts the project on sys.path)

VIDEO = REAL / "video" / "wav2lip_pr600_test.mov"
SPEECH = REAL / "audio" / "musetalk_eng.wav"


def untrained_checkpoint(size: int, path: Path) -> Path:
    import torch

    from synclip.checkpoint import save_checkpoint
    from synclip.config import load_config
    from synclip.models.generator import Generator, GeneratorDims
    from synclip.models.syncnet import SyncDims, SyncExpert

    torch.manual_seed(0)
    sd = SyncDims(input_size=size, hidden_dim=128, base_channels=16)
    gd = GeneratorDims(input_size=size, base_channels=16)
    cfg = load_config(None, [f"data.crop_size={size}", f"model.input_size={size}"]).to_dict()
    return save_checkpoint(path, kind="generator", config=cfg, dims=gd.to_dict(),
                           state_dict=Generator(gd).state_dict(),
                           extra={"expert": {"dims": sd.to_dict(), "state_dict": SyncExpert(sd).state_dict()}})


def run(checkpoint: Path, audio: Path, out: Path, device: str) -> dict:
    code = (
        "import json, resource, time\n"
        "from pathlib import Path\n"
        "from synclip.infer import LipSyncInference\nfrom synclip.dub import DubOptions\n"
        f"m = LipSyncInference({str(checkpoint)!r}, device={device!r})\n"
        "t = time.perf_counter()\n"
        f"ok, msg = m.sync_video_audio({str(VIDEO)!r}, {str(audio)!r}, Path({str(out)!r}), options=DubOptions())\n"
        "dt = time.perf_counter() - t\n"
        "print(json.dumps({'seconds': dt, 'msg': msg,"
        " 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    env = dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    r = json.loads(res.stdout.strip().splitlines()[-1])
    from synclip import media

    r["frames"] = media.probe_video(out).num_frames
    r["fps"] = r["frames"] / r["seconds"]
    return r


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint-96")
    p.add_argument("--checkpoint-256")
    p.add_argument("--device", default="cpu")
    p.add_argument("--long-minutes", type=float, default=10.0)
    p.add_argument("--sizes", type=int, nargs="+", default=[96, 256], help="input sizes timed on 60 s of audio")
    p.add_argument("--out", default=str(RESULTS / "dub.json"))
    args = p.parse_args()
    if not VIDEO.is_file() or not SPEECH.is_file():
        print(f"skipped: real test media not found at {VIDEO.parent.parent}")
        return 0
    from synclip import media

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        speech = media.read_audio(SPEECH)  # 60 s
        audio60 = tmp / "speech60.wav"
        media.write_wav(audio60, speech[: 60 * 16000])
        given = {96: args.checkpoint_96, 256: args.checkpoint_256}
        for size in args.sizes:
            ck = Path(given[size]) if given.get(size) else untrained_checkpoint(size, tmp / f"g{size}.pth")
            r = run(ck, audio60, tmp / f"out{size}.mp4", args.device)
            rows.append({"case": f"60 s audio, 720p video, input {size}", **r})
        ck96 = Path(args.checkpoint_96) if args.checkpoint_96 else untrained_checkpoint(96, tmp / "g96.pth")
        long_audio = tmp / "long.wav"
        reps = int(np.ceil(args.long_minutes * 60 * 16000 / len(speech)))
        media.write_wav(long_audio, np.tile(speech, reps)[: int(args.long_minutes * 60 * 16000)])
        r = run(ck96, long_audio, tmp / "long.mp4", args.device)
        rows.append({"case": f"{args.long_minutes:g} min audio, 720p video, input 96", **r})
    print(f"{'case':44s} {'frames':>7s} {'seconds':>8s} {'frames/s':>9s} {'peak RSS MB':>12s}")
    for r in rows:
        print(f"{r['case']:44s} {r['frames']:7d} {r['seconds']:8.1f} {r['fps']:9.1f} {r['peak_rss_mb']:12.0f}")
    save_result(args.out, {"device": args.device, "cpus": os.cpu_count(), "platform": platform.platform(),
                           "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
