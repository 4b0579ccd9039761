"""Benchmark `synclip prepare`: end-to-end frames/s on the shared 720p and 1080x1920 HEVC clips, and peak
memory on long 720p videos made by repeating a clip (1 and 10 minutes: the peak must not grow with length).

    python benchmarks/prepare.py [--minutes 10] [--out benchmarks/results/prepare.json]

Each measurement runs `synclip prepare` on one video in a fresh process (1 worker: one clip uses both cores
through threaded decoding); peak memory is that process's max RSS.
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

VIDEOS = REAL / "video"
CLIPS = {"720p h264 (wav2lip_pr600_test.mov)": "wav2lip_pr600_test.mov",
         "1080x1920 hevc (latentsync_demo2_video.mp4)": "latentsync_demo2_video.mp4"}


def run_prepare(video: Path, work: Path) -> dict:
    """Prepare one video in a child process; returns wall time, frames and the child's peak RSS."""
    videos = work / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    link = videos / video.name
    if not link.exists():
        link.symlink_to(video)
    code = (
        "import json, resource, sys, time\n"
        "from synclip.config import load_config\nfrom synclip.prepare import prepare\n"
        f"cfg = load_config(None, ['data.videos_dir={videos}', 'data.audios_dir={work}/none', "
        f"'data.processed_dir={work}/processed'])\n"
        "t = time.perf_counter(); out = prepare(cfg, force=True, workers=1); dt = time.perf_counter() - t\n"
        "e = out[0].entry\n"
        "print(json.dumps({'status': out[0].status, 'reason': out[0].reason, 'frames': e.get('num_frames', 0),"
        " 'seconds': dt, 'face_coverage': e.get('face_coverage'),"
        " 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    env = dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["fps"] = r["frames"] / r["seconds"] if r["seconds"] else 0.0
    return r


def make_long_video(src: Path, minutes: float, dst: Path) -> Path:
    """Repeat src's frames and sound (25 fps, H.264 + AAC) until `minutes` long, streaming (flat memory)."""
    import numpy as np

    from synclip import media

    if dst.exists():
        return dst
    info = media.probe_video(src)
    wav = media.read_audio(src)[: info.num_frames * 640]
    total = int(minutes * 60 * 25)
    with media.VideoWriter(dst, info.width, info.height, crf=23, preset="ultrafast") as w:
        done = 0
        while done < total:
            for frame in media.iter_frames(src):
                if done >= total:
                    break
                w.write(frame)
                done += 1
        reps = int(np.ceil(total * 640 / len(wav)))
        w.close(np.tile(wav, reps)[: total * 640])
    return dst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the long video for the memory test")
    p.add_argument("--out", default=str(RESULTS / "prepare.json"))
    args = p.parse_args()
    if not VIDEOS.is_dir():
        print(f"skipped: real test media not found at {VIDEOS}")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, name in CLIPS.items():
            r = run_prepare(VIDEOS / name, tmp / name)
            rows.append({"case": label, **r})
        src = VIDEOS / "wav2lip_pr600_test.mov"
        for minutes in (1.0, args.minutes):
            t0 = time.perf_counter()
            long = make_long_video(src, minutes, tmp / f"long_{minutes:g}min.mp4")
            made = time.perf_counter() - t0
            r = run_prepare(long, tmp / f"long{minutes:g}")
            rows.append({"case": f"720p repeated, {minutes:g} min", "make_seconds": round(made, 1), **r})
    print(f"{'case':48s} {'frames':>7s} {'seconds':>8s} {'frames/s':>9s} {'peak RSS MB':>12s} {'face':>6s}")
    for r in rows:
        print(f"{r['case']:48s} {r['frames']:7d} {r['seconds']:8.1f} {r['fps']:9.1f} {r['peak_rss_mb']:12.0f} "
              f"{(r['face_coverage'] or 0):6.1%}")
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()}, "rows": rows}
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
