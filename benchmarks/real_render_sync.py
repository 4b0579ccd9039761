"""Are the renderer's dubs in sync, by the shipped real-footage expert? (issue 10, item 1)

    nice -n 10 python benchmarks/real_render_sync.py [--clips 40] [--presenter synclip/pretrained/presenter.pth]

It reads the caches of benchmarks/real_render.py (under ~/.cache/synclip or $SYNCLIP_CACHE):
render/grid_s1_128.npz and corpus/grid_s1.npz, and judges the presenter model's two networks (default: the one
that ships; ``benchmarks/ship_presenter.py`` packs one). The full path through `synclip dub` (paste-back into
whole frames, H.264) is measured by benchmarks/real_presenter.py.

The bar: a GRID presenter dubbed to other sentences of his own and to other people's speech, the expert finds
offset 0 +-1 and its confidence on the dub is at least 90% of its confidence on real footage of him; the
undubbed footage against that speech stays far below.

On the first ``--clips`` grid_s1 test sentences (sorted names; the split of real_render.grid_split, never
trained on by the renderer or by AudioToLips), every judged face goes through the same path: 128-px crops
(real, or drawn by the renderer) -> ``FaceMesh`` (one per clip, tracking, frames in order) -> lip features on
the expert's template -> the expert, offsets searched +-MAX_OFFSET (``lips_eval.expert_cases``, shift 0).
Rows:
- real footage, own speech (the confidence the dubs are measured against); also the extraction's own mesh,
  to show what re-meshing the 128-px crops costs;
- dub to another sentence: each clip's frames redrawn (upper half and pose its own, reference frame from the
  same clip as real_render.py picks them) with the mouth AudioToLips predicts from the next clip's speech;
  both cut to the shorter of the two; undubbed: the real frames against that speech; and the shapes the dub
  was drawn from, judged as they are (what the renderer and the re-meshing had to keep);
- dub to other people's speech: 3-s pieces of the shared recordings (audio_to_lips.speech_pieces) drawn on
  the test clips in turn; undubbed likewise.
An independent judge: the model-free reference (``lips_eval.reference_cases``: mouth opening of the re-meshed
landmarks against the speech envelope) on the same cases.
Writes benchmarks/results/real_render_sync.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from audio_to_lips import speech_pieces
from common import REAL, RESULTS, ROOT, save_result
from real_render import CACHE, EXPERT_CACHE, grid_split, predicted_mouth

from synclip import audio as A  # noqa: E402
from synclip.lips_eval import Case, expert_cases, reference_cases  # noqa: E402
from synclip.lips_train import TrainClip  # noqa: E402
from synclip.mesh import FaceMesh, lip_features, mouth_opening  # noqa: E402
from synclip.presenter import PRETRAINED  # noqa: E402
from synclip.render_data import Frames  # noqa: E402

MAX_OFFSET = 15
SPEECH = ("musetalk_eng.wav", "sadtalker_chinese_news.wav")
CONFIDENCE_BAR = 0.9  # the dub's confidence over the real footage's, at least


@dataclass
class Face:
    """One judged face: landmarks (T, 468, 3) in crop units (NaN where no mesh) and the speech it is
    judged against, (M, F) normalised log-mel covering the same T frames."""
    name: str
    landmarks: np.ndarray
    feats: torch.Tensor


def remesh(crops: np.ndarray) -> np.ndarray:
    """(T, S, S, 3) uint8 crops of one clip, in order -> (T, 468, 3) landmarks, NaN rows where none."""
    out = np.full((len(crops), 468, 3), np.nan, np.float32)
    with FaceMesh() as mesh:
        for t, crop in enumerate(crops):
            lm = mesh.run(np.ascontiguousarray(crop))
            if lm is not None:
                out[t] = lm
    return out


def speech_feats(wav: np.ndarray, frames: int) -> torch.Tensor:
    """The first ``frames`` video frames of 16 kHz speech -> normalised log-mel (as the expert scores it)."""
    return A.normalize_mel(A.log_mel(wav[:A.frames_to_samples(frames)]))


def judge(expert, template: np.ndarray, faces: list[Face]) -> dict:
    """The expert and the reference on faces against their speech; per-row summary and the cases."""
    cases: list[Case] = []
    refs: list[Case] = []
    meshed = []
    for f in faces:
        lips = lip_features(f.landmarks, template)
        present = ~np.isnan(lips[:, 0])
        meshed.append(present.mean())
        clip = TrainClip(f.name, "grid_s1", torch.from_numpy(np.nan_to_num(lips, nan=0.0)),
                         torch.from_numpy(present), None, f.feats, [f.feats])
        cases += expert_cases(expert, clip, (0,), MAX_OFFSET, torch.device("cpu"))
        refs += reference_cases(mouth_opening(f.landmarks), clip, (0,), MAX_OFFSET)
    found = np.array([c.found for c in cases])
    return {"faces": len(faces), "meshed_frame_share": round(float(np.mean(meshed)), 4), "cases": len(cases),
            "expert_within_1": round(float(np.mean(np.abs(found) <= 1)), 4),
            "expert_mean_abs_offset": round(float(np.mean(np.abs(found))), 2),
            "expert_confidence": round(float(np.mean([c.confidence for c in cases])), 4),
            "expert_score": round(float(np.mean([c.score for c in cases])), 4),
            "reference_cases": len(refs),
            "reference_within_1": round(float(np.mean([abs(c.found) <= 1 for c in refs])), 4),
            "per_case": [{"clip": c.clip, "found": c.found, "confidence": round(c.confidence, 4),
                          "score": round(c.score, 4)} for c in cases]}


def load_models(presenter_path: Path):
    """The shipped expert, and the presenter's AudioToLips, template and renderer."""
    from synclip.checkpoint import PRETRAINED_EXPERT, expert_from, load_checkpoint
    from synclip.presenter import load_presenter

    expert = expert_from(load_checkpoint(PRETRAINED_EXPERT, kind="sync"), PRETRAINED_EXPERT, torch.device("cpu"))
    p = load_presenter(presenter_path)
    if not np.allclose(p.template, expert.template.numpy()):
        raise SystemExit("AudioToLips was trained on another template than the shipped expert's")
    return expert, p.lips, expert.template.numpy(), p.renderer


def test_clips(count: int) -> tuple[Frames, dict[str, np.ndarray]]:
    """The first ``count`` grid_s1 test clips (sorted names) found in both caches: their 128-px frames and
    their 16 kHz speech."""
    from synclip.corpus import load_cache
    from synclip.render_data import load_faces

    faces = load_faces(CACHE)
    wavs = {c.name: c.wav for c in load_cache(EXPERT_CACHE)}
    names = [n for n in sorted(grid_split()["test"]) if n in faces and n in wavs][:count]
    test = Frames([faces[n] for n in names])
    return test, {n: wavs[n] for n in names}


def clip_spans(test: Frames, wavs: dict[str, np.ndarray]) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """Each test clip's (first, end) rows in ``test``, and how many of its frames both the crops and the
    speech cover."""
    spans = [(int(a), int(b)) for a, b in zip(test.starts, test.starts[1:])]
    return spans, {n: min(b - a, len(wavs[n]) // A.SAMPLES_PER_FRAME) for n, (a, b) in zip(test.names, spans)}


def dub_targets(names: list[str], frames: dict[str, int], wavs: dict[str, np.ndarray]) -> dict[str, list]:
    """{what is said: [(index of the clip dubbed, who says it, its features (M, F), frames)]}: each clip the
    next one's sentence (both cut to the shorter), then 3-s pieces of each shared recording, clips in turn."""
    out = {"another sentence": []}
    for k, n in enumerate(names):
        other = names[(k + 1) % len(names)]
        m = min(frames[n], frames[other])
        out["another sentence"].append((k, other, speech_feats(wavs[other], m), m))
    for speech in SPEECH:
        out[speech] = []
        for p, feats in enumerate(speech_pieces(REAL / "audio" / speech)):
            k = p % len(names)
            m = min(frames[names[k]], int((len(feats) - 1) / A.MEL_PER_FRAME))
            out[speech].append((k, f"{speech}:{p}", feats[:round(m * A.MEL_PER_FRAME) + 1], m))
    return out


def run(args) -> dict:
    from synclip.render import draw

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    expert, a2l, template, renderer = load_models(Path(args.presenter))
    test, wavs = test_clips(args.clips)
    names = test.names
    spans, frames = clip_spans(test, wavs)
    print(f"{len(names)} test clips, {sum(frames.values())} frames, loaded in {time.perf_counter() - t_start:.0f} s",
          flush=True)
    rng = np.random.default_rng(1)
    timings = {"render_s": 0.0, "mesh_s": 0.0}

    def render(k: int, feats: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Clip k's first n frames redrawn saying ``feats`` -> landmarks (n, 468, 3) of the drawn frames
        re-meshed, and the shapes they were drawn from."""
        a = spans[k][0]
        idx = np.arange(a, a + n)
        refs = np.array([test.reference(rng, int(i)) for i in idx])
        shapes = predicted_mouth(a2l, template, test.landmarks[idx], feats)
        t0 = time.perf_counter()
        drawn = draw(renderer, test.crops[idx], test.crops[refs], shapes)
        t1 = time.perf_counter()
        out = remesh(drawn)
        timings["render_s"] += t1 - t0
        timings["mesh_s"] += time.perf_counter() - t1
        return out, shapes

    t0 = time.perf_counter()
    real = {n: remesh(test.crops[a:a + frames[n]]) for n, (a, _) in zip(names, spans)}
    timings["mesh_s"] += time.perf_counter() - t0
    own = {n: speech_feats(wavs[n], frames[n]) for n in names}
    rows: dict[str, list[Face]] = {
        "real footage, own speech (re-meshed 128-px crops)": [Face(n, real[n], own[n]) for n in names],
        "real footage, own speech (extraction's mesh)":
            [Face(n, test.landmarks[a:a + frames[n]], own[n]) for n, (a, _) in zip(names, spans)]}
    for what, items in dub_targets(names, frames, wavs).items():
        dub, shapes, undub = [], [], []
        for k, said, feats, m in items:
            drawn, shape = render(k, feats, m)
            label = f"{names[k]}<-{said}"
            dub.append(Face(label, drawn, feats))
            shapes.append(Face(label, shape, feats))
            undub.append(Face(label, real[names[k]][:m], feats))
        rows[f"dub to {what}"] = dub
        rows[f"  its shapes before drawing ({what})"] = shapes
        rows[f"undubbed, {what}"] = undub
        print(f"{what}: {len(items)} dubs, {time.perf_counter() - t_start:.0f} s", flush=True)
    table = {name: judge(expert, template, faces) for name, faces in rows.items()}
    base = table["real footage, own speech (re-meshed 128-px crops)"]["expert_confidence"]
    for r in table.values():
        r["confidence_over_real"] = round(r["expert_confidence"] / base, 4)
    return {"table": table, "names": names, "timings": {k: round(v) for k, v in timings.items()},
            "seconds": round(time.perf_counter() - t_start)}


def inputs_missing(presenter: Path) -> bool:
    """True (and says what to run) when real_render.py's caches or the presenter model are not there."""
    missing = [str(x) for x in (CACHE, EXPERT_CACHE, presenter) if not x.is_file()]
    if missing:
        print(f"skipped: missing {', '.join(missing)} (see benchmarks/real_render.py and audio_to_lips.py)")
    return bool(missing)


def print_table(table: dict) -> None:
    print(f"{'row':58s} {'cases':>5s} {'0+-1':>6s} {'conf':>6s} {'/real':>6s} {'score':>6s} {'ref 0+-1':>8s} "
          f"{'meshed':>6s}")
    for name, r in table.items():
        print(f"{name:58s} {r['cases']:5d} {r['expert_within_1']:6.3f} {r['expert_confidence']:6.3f} "
              f"{r['confidence_over_real']:6.3f} {r['expert_score']:6.3f} {r['reference_within_1']:8.3f} "
              f"{r['meshed_frame_share']:6.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--out", default=str(RESULTS / "real_render_sync.json"))
    p.add_argument("--presenter", default=str(PRETRAINED), help="the presenter model (renderer + AudioToLips)")
    args = p.parse_args()
    if inputs_missing(Path(args.presenter)):
        return 0
    out = run(args)
    print_table(out["table"])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dubs = [k for k in out["table"] if k.startswith("dub")]
    result = {"issue": "10 item 1", "commit": commit, "seconds": out["seconds"], "timings": out["timings"],
              "threads": 1, "max_offset": MAX_OFFSET, "confidence_bar": CONFIDENCE_BAR,
              "data": {"source": "grid_s1 test sentences (real_render.grid_split), first by sorted name",
                       "clips": out["names"], "presenter": args.presenter,
                       "expert": "synclip/pretrained/lip_expert.pth", "speech": list(SPEECH),
                       "frames": f"128-px crops of {CACHE}, re-meshed with FaceMesh",
                       "audio": f"16 kHz speech of {EXPERT_CACHE} (no lead)"},
              "bars": {k: {"within_1": out["table"][k]["expert_within_1"],
                           "confidence_over_real": out["table"][k]["confidence_over_real"],
                           "confidence_met": out["table"][k]["confidence_over_real"] >= CONFIDENCE_BAR,
                           "undubbed_within_1": out["table"][k.replace("dub to ", "undubbed, ")]["expert_within_1"],
                           "undubbed_confidence_over_real":
                               out["table"][k.replace("dub to ", "undubbed, ")]["confidence_over_real"]}
                       for k in dubs},
              "table": out["table"]}
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
