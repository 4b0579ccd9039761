"""Where a dub to another person's speech loses the expert's confidence (issue 10, item 1: the bar missed).

    nice -n 10 python benchmarks/dub_confidence.py [--clips 20] [--independent EXPERT.pth]

Three measures on the GRID presenter at the crop level (the path of real_render_sync.py: 128-px crops of his
grid_s1 test sentences, drawn by the shipped renderer, re-meshed, judged by the shipped expert +-15 frames),
the shapes motion matched as `synclip dub` matches them, and "of real" = over his real footage with its speech:

1. What the judge can hear: the confidence the expert would give if the lips' window embeddings equalled the
   speech's exactly (the median over offsets +-15 of the mean distance between audio window v and v - o). It
   depends on the speech alone, so it is the most any lips can get from this judge for that voice.
2. Lips or jaw: the expert reads 40 lip points and 13 jaw points. The shapes asked of the renderer and the dub
   re-meshed, and mixtures of the two: the asked shapes with the source video's jaw (what a dub shows if the
   jaw is left as filmed), the drawn lips with the asked jaw, the asked lips with the drawn jaw (what the
   drawing keeps of each).
3. Test-time refinement: the shapes moved, per clip, to lower the expert's own offset loss (as
   lips_audio.expert_sync_loss, offsets +-4) with an L2 pull back to AudioToLips' prediction, before drawing;
   against the shipped expert (the judge itself) and, with ``--independent``, an expert of another training
   run, which then also judges every row beside the shipped one (the README's figures: ``python
   benchmarks/real_expert.py --source-lead lrc_ar=1 --steps 1200 --voice-warp 0.15 --seed 0 --checkpoint
   X.pth``; it must share the shipped expert's template, as any run on the same corpus cache does).
Reads the caches of real_render.py (render/grid_s1_128.npz, corpus/grid_s1.npz); writes
benchmarks/results/dub_confidence.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from audio_to_lips import speech_pieces
from common import REAL, RESULTS, save_result
from real_render import EXPERT_CACHE
from real_render_sync import (SPEECH, Face, clip_spans, dub_targets, inputs_missing, judge, load_models, remesh,
                              speech_feats, test_clips)
from torch.nn import functional as F

from synclip import audio as A  # noqa: E402
from synclip.corpus import load_cache  # noqa: E402
from synclip.lips_audio import centred, predict  # noqa: E402
from synclip.mesh import JAW, LIPS_INNER, LIPS_OUTER  # noqa: E402
from synclip.presenter import PRETRAINED, load_presenter, match_motion  # noqa: E402
from synclip.render import draw, mouth_from_features  # noqa: E402
from synclip.sync import audio_embeddings  # noqa: E402

MAX_OFFSET = 15


@torch.no_grad()
def hearing_ceiling(expert, feats: torch.Tensor, num_frames: int) -> float | None:
    """The confidence of lips whose window embeddings equal the speech's (None if too short to judge)."""
    n = A.num_windows(num_frames, len(feats))
    aud = audio_embeddings(expert, feats, 0, n, torch.device("cpu"))
    v = np.arange(MAX_OFFSET, n - MAX_OFFSET)
    if len(v) < 3:
        return None
    return float(np.median([float((aud[v] - aud[v - o]).norm(dim=-1).mean())
                            for o in range(-MAX_OFFSET, MAX_OFFSET + 1)]))


def refine(expert, lips: np.ndarray, feats: torch.Tensor, scale: torch.Tensor, steps: int = 60, pull: float = 1.0,
           max_offset: int = 4) -> np.ndarray:
    """(T, L) shapes moved to lower the expert's offset loss on them, pulled back to where they started by
    ``pull`` times their mean squared change in units of each feature's spread; re-centred on their median."""
    x0 = torch.from_numpy(lips).float() / scale
    z = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    n = len(lips) - A.SYNC_FRAMES + 1
    with torch.no_grad():
        audio = expert.audio_embed(A.windows_at(feats.float(), torch.arange(-max_offset, n + max_offset))[None])[0]
    idx = torch.arange(n)[:, None] + torch.arange(2 * max_offset + 1)
    for _ in range(steps):
        x = z * scale
        face = expert.face_embed({"lips": (x - x.median(0).values)[None]})[0]
        loss = F.cross_entropy(expert.logits(face[:, None], audio[idx]), torch.full((n,), max_offset))
        loss = loss + pull * ((z - x0) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = (z * scale).detach()
    return (x - x.median(0).values).numpy()


def with_points(base: np.ndarray, donor: np.ndarray, points: tuple[int, ...]) -> np.ndarray:
    """Landmarks (T, 468, 3) of ``base`` with ``points`` taken from ``donor``."""
    out = base.copy()
    out[:, list(points)] = donor[:, list(points)]
    return out


def run(args) -> dict:
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    expert, a2l, template, renderer = load_models(Path(args.presenter))
    judges = {"shipped": expert}
    refiners = {"none": None, "shipped expert": expert}
    if args.independent:
        from synclip.checkpoint import expert_from, load_checkpoint

        other = expert_from(load_checkpoint(args.independent, kind="sync"), args.independent, torch.device("cpu"))
        if not np.allclose(other.template.numpy(), template):
            raise SystemExit(f"{args.independent}: trained on another template than the shipped expert's")
        judges["independent"] = refiners["independent expert"] = other.eval()
    for e in judges.values():
        for p in e.parameters():
            p.requires_grad_(False)
    level = load_presenter(Path(args.presenter)).motion_level
    scale = a2l.scale.detach()
    test, wavs = test_clips(args.clips)
    names = test.names
    spans, frames = clip_spans(test, wavs)

    ceilings = {"his test sentences": [hearing_ceiling(expert, speech_feats(wavs[n], frames[n]), frames[n])
                                       for n in names]}
    for name in SPEECH:
        ceilings[name] = [hearing_ceiling(expert, f, int((len(f) - 1) / A.MEL_PER_FRAME))
                          for f in speech_pieces(REAL / "audio" / name)]
    shared = EXPERT_CACHE.with_name("video.npz")
    if shared.is_file():
        for c in load_cache(shared):
            n = len(c.wav) // A.SAMPLES_PER_FRAME
            ceilings[f"shared clip {c.name}"] = [hearing_ceiling(expert, A.normalize_mel(A.log_mel(c.wav)), n)]
    hearing = {k: round(float(np.mean([v for v in vals if v is not None])), 4) for k, vals in ceilings.items()}
    for k in hearing:
        print(f"hearing ceiling {k:45s} {hearing[k]:.3f} ({hearing[k] / hearing['his test sentences']:.2f} of his)")

    rng = np.random.default_rng(1)
    real = {n: remesh(test.crops[a:a + frames[n]]) for n, (a, _) in zip(names, spans)}
    rows: dict[str, list[Face]] = {"real footage, own speech": [Face(n, real[n], speech_feats(wavs[n], frames[n]))
                                                                for n in names]}
    change = {}
    for what, items in dub_targets(names, frames, wavs).items():
        for matched in (False, True):
            for rname, ref_expert in refiners.items():
                if rname != "none" and not matched:
                    continue
                tag = f"{what}, {'matched' if matched else 'unmatched'}, refined by {rname}"
                acc: dict[str, list[Face]] = {}
                moved = []
                for k, said, feats, m in items:
                    idx = np.arange(spans[k][0], spans[k][0] + m)
                    lm = test.landmarks[idx]
                    lips = centred(predict(a2l, feats, m), torch.from_numpy(~np.isnan(lm[:, 0, 0]))).numpy()
                    if matched:
                        lips = match_motion(lips, level)
                    if ref_expert is not None:
                        new = refine(ref_expert, lips, feats, scale)
                        moved.append(float(np.abs((new - lips) / scale.numpy()).mean()))
                        lips = new
                    asked = mouth_from_features(lm, lips, template)
                    refs = np.array([test.reference(rng, int(i)) for i in idx])
                    drawn = remesh(draw(renderer, test.crops[idx], test.crops[refs], asked))
                    source = real[names[k]][:m]
                    label = f"{names[k]}<-{said}"
                    parts = {"shapes asked": asked, "drawn, re-meshed": drawn}
                    if rname == "none":
                        parts.update({"shapes asked, the source's jaw": with_points(asked, source, JAW),
                                      "drawn lips, asked jaw": with_points(drawn, asked, JAW),
                                      "asked lips, drawn jaw": with_points(drawn, asked, LIPS_OUTER + LIPS_INNER),
                                      "undubbed": source})
                    for part, lms in parts.items():
                        acc.setdefault(part, []).append(Face(label, lms, feats))
                if moved:
                    change[tag] = round(float(np.mean(moved)), 4)
                for part, faces in acc.items():
                    rows[f"{tag}: {part}"] = faces
                print(f"{tag}: {time.perf_counter() - t_start:.0f} s", flush=True)
    tables = {}
    for jname, e in judges.items():
        table = {name: judge(e, template, faces) for name, faces in rows.items()}
        base = table["real footage, own speech"]["expert_confidence"]
        for r in table.values():
            r.pop("per_case")
            r["confidence_over_real"] = round(r["expert_confidence"] / base, 4)
        tables[jname] = table
    return {"hearing_ceiling": hearing, "refine_mean_abs_change_in_spreads": change, "tables": tables,
            "names": names, "seconds": round(time.perf_counter() - t_start)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=20)
    p.add_argument("--presenter", default=str(PRETRAINED))
    p.add_argument("--independent", default="", help="a second expert (same template): refines and judges too")
    p.add_argument("--out", default=str(RESULTS / "dub_confidence.json"))
    args = p.parse_args()
    if inputs_missing(Path(args.presenter)):
        return 0
    out = run(args)
    for jname, table in out["tables"].items():
        print(f"judged by the {jname} expert")
        for name, r in table.items():
            print(f"  {name:90s} {r['cases']:3d} 0+-1 {r['expert_within_1']:.2f} conf {r['expert_confidence']:.3f} "
                  f"({r['confidence_over_real']:.2f}) ref {r['reference_within_1']:.2f}")
    save_result(args.out, {"issue": "10 item 1", "max_offset": MAX_OFFSET, "threads": 1,
                           "data": {"source": "grid_s1 test sentences (real_render.grid_split), first by sorted name",
                                    "speech": list(SPEECH), "presenter": args.presenter,
                                    "independent": args.independent or None}, **out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
