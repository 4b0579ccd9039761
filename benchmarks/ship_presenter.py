"""Pack a trained renderer and AudioToLips into the presenter model that ships (synclip/pretrained/presenter.pth).

    python benchmarks/ship_presenter.py --renderer R.pth --lips A2L.pth [--out synclip/pretrained/presenter.pth]

R.pth: ``benchmarks/real_render.py --save``; A2L.pth: ``benchmarks/audio_to_lips.py --save``. Weights are stored
as float16 (half the size; loaded back as float32). The file's meta records where both came from and the commit;
the model card (synclip/pretrained/PRESENTER_CARD.md) holds the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch
from common import ROOT
from real_render import load_audio_to_lips

from synclip.presenter import PRETRAINED, Presenter, load_presenter, save_presenter  # noqa: E402
from synclip.render import load_renderer  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--renderer", required=True)
    p.add_argument("--lips", required=True)
    p.add_argument("--out", default=str(PRETRAINED))
    args = p.parse_args()
    renderer = load_renderer(Path(args.renderer))
    lips, template = load_audio_to_lips(Path(args.lips))
    stored = torch.load(args.lips, map_location="cpu", weights_only=True)
    rendered = torch.load(args.renderer, map_location="cpu", weights_only=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    meta = {"renderer": {"trained_on": "grid_s1 training sentences (benchmarks/real_render.py split)",
                         "steps": rendered.get("step"), "file": Path(args.renderer).name},
            "audio_to_lips": {"trained_on": list(stored.get("sources", [])), "steps": stored.get("steps"),
                              "file": Path(args.lips).name},
            "packed_at_commit": commit.strip(), "card": "synclip/pretrained/PRESENTER_CARD.md"}
    save_presenter(Path(args.out), Presenter(renderer, lips, template, meta=meta), half=True)
    back = load_presenter(Path(args.out))
    faces, shapes = torch.rand(2, 6, renderer.dims.input_size, renderer.dims.input_size), \
        torch.rand(2, 3, renderer.dims.input_size, renderer.dims.input_size)
    with torch.no_grad():
        error = (back.renderer(faces, shapes) - renderer(faces, shapes)).abs().max().item()
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB); float16 storage moves outputs by at "
          f"most {error:.4f} (of 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
