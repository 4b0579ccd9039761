"""The seed's three examples (score, dub, batch) on the checkpoints that `make demo` trains.

    python example_usage.py [--demo demo]
"""

import argparse
import sys
from pathlib import Path

from synclip import LipSyncInference, SynclipError


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default="demo", help="the folder `make demo` wrote")
    demo = Path(p.parse_args().demo)
    expert = demo / "checkpoints" / "best_model.pth"
    generator = demo / "checkpoints" / "generator" / "best_model.pth"
    held = demo / "held_out"
    try:
        # 1. Score a video's lip sync against its own sound track.
        model = LipSyncInference(expert)
        score, details = model.compute_sync_score(held / "videos" / "insync.mp4")
        print(f"1. score {score:.3f}, offset {details['offset_frames']:+d} frames, "
              f"confidence {details['confidence']:.2f}")

        # 2. Dub the video to new speech with the generator.
        dubber = LipSyncInference(generator)
        out = demo / "outputs" / "example_dub.mp4"
        ok, message = dubber.sync_video_audio(held / "videos" / "insync.mp4", held / "audios" / "new_sentence.wav",
                                              out, mode="generate")
        print(f"2. {message}")

        # 3. Score a whole folder; bad files are reported in the rows, the batch goes on.
        rows = model.batch_process(held / "videos", demo / "outputs" / "batch", mode="score")
        for row in rows:
            print(f"3. {Path(row['video']).name}: " + (f"score {row['score']:.3f}, offset {row['offset_frames']:+d}"
                                                      if row["ok"] else f"failed: {row['error']}"))
        print(f"   report: {demo / 'outputs' / 'batch' / 'report.csv'}")
    except SynclipError as e:
        print(f"error: {e}\n(run `make demo` first)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
