"""Benchmark the synthetic data: how fast the voice speaks and the renderer draws (these were timing
assertions in tests/test_synth.py; tests assert facts, benchmarks measure speed).

    python benchmarks/synth.py [--repeats 5]

- voice: CPU seconds to synthesize 4 s of speech (the old test's target: < 0.2 s; it failed above 0.6 s);
- renderer: milliseconds per 320 x 320 frame of one face (the old test's note: about 2 ms; it failed above 12).
Each figure is the median of ``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from common import RESULTS, save_result  # (puts the project on sys.path)


def voice_seconds(repeats: int) -> float:
    import numpy as np

    from synclip import synth

    segs = synth.make_sentence(np.random.default_rng(3), 4.0)
    spk = synth.Speaker(100.0, 0.9, 0.2, 0.9)
    synth.synthesize(segs, spk, 4.0)  # warm up
    runs = []
    for _ in range(repeats):
        t = time.process_time()
        synth.synthesize(segs, spk, 4.0)
        runs.append(time.process_time() - t)
    return statistics.median(runs)


def render_ms_per_frame(repeats: int, frames: int = 50) -> float:
    import numpy as np

    from synclip import synth

    app = synth.appearance(3)
    opening = np.linspace(0, 1, frames).astype(np.float32)
    width = np.full(frames, 0.6, np.float32)
    list(synth.render_frames(app, opening[:2], width[:2]))  # warm the caches
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        list(synth.render_frames(app, opening, width))
        runs.append((time.perf_counter() - t) / frames * 1000)
    return statistics.median(runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / "synth.json"))
    args = p.parse_args()
    result = {"machine": platform.processor() or platform.machine(), "repeats": args.repeats,
              "voice_cpu_s_per_4s": round(voice_seconds(args.repeats), 4),
              "render_ms_per_frame_320": round(render_ms_per_frame(args.repeats), 3)}
    print(f"{'what':40s} {'figure':>10s}")
    print(f"{'voice: CPU s for 4 s of speech':40s} {result['voice_cpu_s_per_4s']:10.3f}")
    print(f"{'renderer: ms per 320x320 frame':40s} {result['render_ms_per_frame_320']:10.2f}")
    save_result(args.out, result)


if __name__ == "__main__":
    main()
