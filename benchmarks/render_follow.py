"""Does the renderer draw the mouth it is asked for, also where the frame around it says otherwise? (issue 10)

    python benchmarks/render_follow.py [--renderers R.pth ...] [--clips 20] [--out PATH]   # 4 min

On the first ``--clips`` grid_s1 test sentences (the 128-px cache of real_render.py; never trained on), every
frame is drawn (its reference at least REF_MIN_GAP frames away, as real_render.py picks them) twice:
- in its own mouth (the frame's mesh): a redo;
- in the mouth of the frame SHIFT frames later in its clip (circularly), carried onto its own pose
  (``render_data.mouth_onto``): a dub's case, where the cheeks and jaw the renderer sees moved with other
  speech than the mouth it is asked for.
Each drawn clip, and the real one, is meshed again in order (``FaceMesh``, as real_render_sync.py does), and the
re-meshed mouth opening (``mesh.mouth_opening``) is set against the asked one, both centred per clip:
- follow slope: least squares of re-meshed on asked opening (1: the whole asked change drawn; 0: none of it);
- correlation of the two;
- for the dub's case also the correlation with the frame's own opening (what a renderer that ignores the map
  and keeps the frame's mouth would show), beside the asked openings' own correlation with it (what a renderer
  that follows the map fully would show).
Real frames re-meshed against their cached mesh give the measurement's own ceiling (the mesh at 128 px).
Writes benchmarks/results/render_follow.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, save_result
from real_render import CACHE, REF_MIN_GAP, grid_split
from real_render_sync import remesh

from synclip.mesh import mouth_opening  # noqa: E402
from synclip.presenter import PRETRAINED, load_presenter  # noqa: E402
from synclip.render import draw, load_renderer  # noqa: E402
from synclip.render_data import Frames, load_faces, mouth_onto  # noqa: E402

SHIFT = 12  # frames: about half a second, another syllable's mouth


def follow(asked: list[np.ndarray], seen: list[np.ndarray], own: list[np.ndarray] | None = None) -> dict:
    """Per-clip openings (asked, re-meshed, the frame's own) -> slope and correlations over all frames."""
    a, s, o = [], [], []
    for k in range(len(asked)):
        ok = ~np.isnan(seen[k]) & ~np.isnan(asked[k])
        a.append(asked[k][ok] - asked[k][ok].mean())
        s.append(seen[k][ok] - seen[k][ok].mean())
        if own is not None:
            o.append(own[k][ok] - own[k][ok].mean())
    a, s = np.concatenate(a), np.concatenate(s)
    out = {"frames": int(len(a)), "follow_slope": round(float(a @ s / (a @ a)), 3),
           "correlation": round(float(np.corrcoef(a, s)[0, 1]), 3)}
    if own is not None:  # beside what a perfect follower would show: the asked mouths' own correlation with them
        o = np.concatenate(o)
        out["correlation_with_own_mouth"] = round(float(np.corrcoef(o, s)[0, 1]), 3)
        out["asked_correlation_with_own_mouth"] = round(float(np.corrcoef(o, a)[0, 1]), 3)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--renderers", nargs="*", default=[], help="renderer files to measure beside the shipped one")
    p.add_argument("--clips", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "render_follow.json"))
    args = p.parse_args()
    if not Path(CACHE).is_file():
        print(f"skipped: no render cache at {CACHE} (python benchmarks/real_render.py --extract)")
        return 0
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    names = sorted(grid_split()["test"])[:args.clips]
    faces = load_faces(Path(CACHE), names)
    clips = [faces[n] for n in names if n in faces]
    renderers = {"shipped presenter's renderer": load_presenter(PRETRAINED).renderer,
                 **{Path(r).name: load_renderer(Path(r)) for r in args.renderers}}
    rng = np.random.default_rng(0)
    asked_own, asked_dub, real_seen = [], [], []
    jobs = []  # per clip: crops, references, own landmarks, dub landmarks
    for c in clips:
        f = Frames([c], REF_MIN_GAP)
        poses = f.poses()
        idx = np.flatnonzero(f.present)
        refs = np.array([f.reference(rng, int(i)) for i in idx])
        donors = idx[(np.arange(len(idx)) + SHIFT) % len(idx)]
        dub = np.stack([mouth_onto(c.landmarks[i], c.landmarks[j], poses[int(i)], poses[int(j)])
                        for i, j in zip(idx, donors)])
        jobs.append((c.crops[idx], c.crops[refs], c.landmarks[idx], dub))
        asked_own.append(mouth_opening(c.landmarks[idx]))
        asked_dub.append(mouth_opening(dub))
        real_seen.append(mouth_opening(remesh(c.crops[idx])))
    ceiling = follow(asked_own, real_seen)
    result = {"data": {"clips": [c.name for c in clips], "source": "grid_s1 test sentences (real_render.grid_split)",
                       "shift_frames": SHIFT, "crop_px": int(clips[0].crops.shape[1])},
              "real frames re-meshed (the measurement's ceiling)": ceiling, "renderers": {}}
    print(f"real frames re-meshed: {ceiling}", flush=True)
    for name, model in renderers.items():
        seen_own, seen_dub = [], []
        for crops, refs, own, dub in jobs:
            seen_own.append(mouth_opening(remesh(draw(model, crops, refs, own))))
            seen_dub.append(mouth_opening(remesh(draw(model, crops, refs, dub))))
        result["renderers"][name] = {"own mouth (redo)": follow(asked_own, seen_own),
                                     f"another frame's mouth ({SHIFT} frames on)": follow(asked_dub, seen_dub, asked_own)}
        print(f"{name}: {result['renderers'][name]}", flush=True)
    result["seconds"] = round(time.perf_counter() - t0)
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
