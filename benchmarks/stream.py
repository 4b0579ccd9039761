"""Benchmark `synclip stream` at input 96 (the demo generator's size): steady frames/s and the latency from an
audio piece's arrival to the frame it completes (median, 95th percentile), on the shared 720p video with the
shared English speech, the audio handed over at real-time pace in 20 ms pieces, into the growing mp4 as the
CLI writes it. Also the same run with the audio as fast as it can be taken (how much headroom there is).

    python benchmarks/stream.py [--checkpoint G] [--seconds 20] [--threads 1]

Latency here is compute and queueing only: the model's look-ahead (stream.LOOKAHEAD_MS, 117.5 ms of audio
after a frame's centre) comes on top for a listener who hears the audio live. Speed does not depend on what
the weights learnt, so by default an untrained generator of the demo's shape (base_channels 16) is timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from common import RESULTS, save_result  # (puts the project on sys.path)
from dub import SPEECH, VIDEO, untrained_checkpoint


def load() -> float:
    return os.getloadavg()[0]


def one_run(generator, data, video: Path, wav: np.ndarray, out: Path, chunk: int, realtime: bool,
            resize: int) -> dict:
    from synclip.dub import DubOptions
    from synclip.background import BackgroundSink
    from synclip.stream import Streamer, arriving, paced, run_stream
    from synclip.writer import GrowingWriter

    t0 = time.perf_counter()
    streamer = Streamer(generator, video, data=data, opts=DubOptions(resize_factor=resize))
    startup = time.perf_counter() - t0
    timed = paced(wav, chunk) if realtime else arriving(wav[i:i + chunk] for i in range(0, len(wav), chunk))
    before = load()
    with GrowingWriter(out, *streamer.size) as writer, \
            BackgroundSink(lambda f: writer.write(f.image, f.audio)) as sink:  # as the CLI writes
        report = run_stream(streamer, timed, sink=sink)
    lat = np.asarray(report.latency_ms)
    steady = lat[len(lat) // 10:]  # the first tenth holds the warm-up (oneDNN's first calls of each shape)
    return {**report.summary(), "audio_pace": "real time" if realtime else "as fast as taken",
            "startup_s": round(startup, 2), "size": list(streamer.size), "resize_factor": resize,
            "steady_latency_median_ms": round(float(np.median(steady)), 1),
            "steady_latency_p95_ms": round(float(np.percentile(steady, 95)), 1),
            "load_1min_before": round(before, 2), "load_1min_after": round(load(), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="a generator checkpoint (default: an untrained one of the demo's shape)")
    ap.add_argument("--seconds", type=float, default=20.0, help="audio streamed per run")
    ap.add_argument("--chunk-ms", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the CLI's default)")
    ap.add_argument("--out", default=str(RESULTS / "stream.json"))
    args = ap.parse_args()
    if not VIDEO.is_file():
        raise SystemExit(f"the shared test video is missing: {VIDEO}")
    import torch

    from synclip.checkpoint import load_generator
    from synclip.media import read_audio
    from synclip.stream import LOOKAHEAD_MS

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="stream_bench_"))
    ck = Path(args.checkpoint) if args.checkpoint else untrained_checkpoint(96, work / "gen96.pth")
    generator, data = load_generator(ck, torch.device("cpu"))
    speech = read_audio(SPEECH)
    reps = int(np.ceil(args.seconds * 16000 / len(speech)))
    wav = np.tile(speech, reps)[:int(args.seconds * 16000)]
    chunk = round(args.chunk_ms * 16)
    runs = []
    for realtime, resize in ((True, 1), (False, 1), (True, 2)):
        r = one_run(generator, data, VIDEO, wav, work / "live.mp4", chunk, realtime, resize)
        runs.append(r)
        print(f"{r['size'][0]}x{r['size'][1]} audio {r['audio_pace']:17s}: {r['fps']:5.1f} frames/s, latency "
              f"median {r['latency_median_ms']:6.1f} ms, p95 {r['latency_p95_ms']:6.1f} ms (steady p95 "
              f"{r['steady_latency_p95_ms']:.1f}), start-up {r['startup_s']} s, load {r['load_1min_before']}"
              f"->{r['load_1min_after']}")
    result = {"what": "synclip stream, input 96 (base_channels 16), 720p source, 20 ms audio pieces, into a "
                      "growing mp4", "video": VIDEO.name, "audio_s": args.seconds, "chunk_ms": args.chunk_ms,
              "lookahead_ms": LOOKAHEAD_MS, "checkpoint": str(args.checkpoint or "untrained, demo shape"),
              "threads": args.threads, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "runs": runs}
    save_result(args.out, result)


if __name__ == "__main__":
    main()
