"""Seed-compatible inference:

    python src/inference.py --checkpoint C --video V [--audio A] --score-only
    python src/inference.py --checkpoint C --video V --audio A --output O.mp4 [--mode shift|generate]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synclip.cli import main  # noqa: E402


def translate(argv: list[str]) -> list[str]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="checkpoints/best_model.pth")
    p.add_argument("--video", required=True)
    p.add_argument("--audio")
    p.add_argument("--score-only", action="store_true")
    p.add_argument("--output")
    p.add_argument("--mode", choices=["shift", "generate"])
    p.add_argument("--device")
    a = p.parse_args(argv)
    common = ["--checkpoint", a.checkpoint] + (["--device", a.device] if a.device else [])
    audio = ["--audio", a.audio] if a.audio else []
    if a.score_only or not a.output:
        return ["score", a.video, *audio, *common]
    if a.mode == "shift":
        return ["fix-offset", a.video, *audio, "--out", a.output, *common]
    return ["dub", "--video", a.video, *audio, "--out", a.output, *common]


if __name__ == "__main__":
    sys.exit(main(translate(sys.argv[1:])))
