"""Pack a trained renderer and AudioToLips into the presenter model that ships (synclip/pretrained/presenter.pth).

    python benchmarks/ship_presenter.py --renderer R.pth --lips A2L.pth [--out synclip/pretrained/presenter.pth]
    python benchmarks/ship_presenter.py --repack synclip/pretrained/presenter.pth   # only re-measure its motion level
    python benchmarks/ship_presenter.py --repack synclip/pretrained/presenter.pth --renderer R.pth  # swap the renderer

R.pth: ``benchmarks/real_render.py --save``; A2L.pth: ``benchmarks/audio_to_lips.py --save``. Weights are stored
as float16 (half the size; loaded back as float32). The presenter's motion level (``presenter.motion_level``,
what dubbing scales speech's mouth shapes to) is measured on ``--motion-clips`` of grid_s1's training sentences,
meshed as `synclip score` meshes them. The file's meta records where both came from and the commit; the model
card (synclip/pretrained/PRESENTER_CARD.md) holds the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch
import numpy as np
from common import ROOT
from real_expert import split_names
from real_render import load_audio_to_lips

from synclip import media  # noqa: E402
from synclip.face import FaceDetector  # noqa: E402
from synclip.lips import lip_track  # noqa: E402
from synclip.mesh import FaceMesh  # noqa: E402
from synclip.presenter import PRETRAINED, Presenter, footage_motion_level, load_presenter, save_presenter  # noqa: E402
from synclip.render import load_renderer  # noqa: E402

GRID = ROOT.parent / "shared" / "data" / "corpus" / "grid_s1"


def grid_motion_level(template: np.ndarray, count: int) -> float:
    """``presenter.footage_motion_level`` of the first ``count`` grid_s1 training sentences."""
    names = split_names("grid_s1", [p.stem for p in GRID.glob("*.mp4")])["train"][:count]
    with FaceDetector() as detector:
        tracks = [lip_track(v, media.probe_video(v), detector, FaceMesh) for v in (GRID / f"{n}.mp4" for n in names)]
    return footage_motion_level([t.landmarks for t in tracks if t is not None], template)


def renderer_meta(path: Path) -> dict:
    rendered = torch.load(path, map_location="cpu", weights_only=True)
    return {"trained_on": "grid_s1 training sentences (benchmarks/real_render.py split)",
            "steps": rendered.get("step"), "file": path.name, "input_mask": rendered["dims"].get("input_mask",
                                                                                                 "lower_half")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--renderer")
    p.add_argument("--lips")
    p.add_argument("--repack", help="a presenter file: keep its weights and meta, re-measure its motion level; "
                   "with --renderer, keep all but the renderer (the motion level is AudioToLips' and the footage's)")
    p.add_argument("--motion-clips", type=int, default=120, help="grid_s1 training sentences the level is taken on")
    p.add_argument("--out", default=str(PRETRAINED))
    args = p.parse_args()
    if not GRID.is_dir():
        print(f"skipped: no grid_s1 corpus at {GRID}")
        return 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    if args.repack and args.renderer:
        old = load_presenter(Path(args.repack))
        old.renderer = load_renderer(Path(args.renderer))
        old.meta = {**old.meta, "renderer": renderer_meta(Path(args.renderer)), "packed_at_commit": commit.strip()}
        save_presenter(Path(args.out), old, half=True)
        print(f"wrote {args.out}: renderer {args.renderer} ({old.renderer.dims}), the rest of {args.repack}")
        return 0
    if args.repack:
        old = load_presenter(Path(args.repack))
        old.motion_level = grid_motion_level(old.template, args.motion_clips)
        save_presenter(Path(args.out), old, half=True)
        print(f"wrote {args.out}: motion level {old.motion_level:.4f} ({args.motion_clips} grid_s1 sentences)")
        return 0
    if not (args.renderer and args.lips):
        p.error("--renderer and --lips are needed (or --repack)")
    renderer = load_renderer(Path(args.renderer))
    lips, template = load_audio_to_lips(Path(args.lips))
    stored = torch.load(args.lips, map_location="cpu", weights_only=True)
    meta = {"renderer": renderer_meta(Path(args.renderer)),
            "audio_to_lips": {"trained_on": list(stored.get("sources", [])), "steps": stored.get("steps"),
                              "sync_weight": stored.get("sync_weight", 0.0), "file": Path(args.lips).name},
            "packed_at_commit": commit.strip(), "card": "synclip/pretrained/PRESENTER_CARD.md"}
    level = grid_motion_level(template, args.motion_clips)
    save_presenter(Path(args.out), Presenter(renderer, lips, template, meta=meta, motion_level=level), half=True)
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
