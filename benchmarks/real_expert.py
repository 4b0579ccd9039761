"""Train the real-footage sync expert from the corpus cache, and measure it on footage it never saw.

    python benchmarks/corpus_extract.py                       # once: the cache (~25 min on 2 cores)
    python benchmarks/real_expert.py --face-input landmarks   # train + measure; landmarks, pixels or both

Splits (fixed, by name): grid_s1 by sentence (60% train, 20% val, 20% test); lrc_ar in 20 blocks of
consecutive clip numbers (clips cut from one broadcast sit together, so a block holds other presenters than
the rest as far as the names allow): blocks 3 and 13 test, 8 and 18 val, the rest train. The 8 shared real
clips (other people, cameras and sources) are test only. Each test clip is scored in sync and with its audio
shifted (grid and real: 0, +-5, +-10 frames, search +-15; lrc: 0, +-5, search +-7), by the trained expert and
by the model-free reference; and each face against another clip's speech. Writes the checkpoint and
benchmarks/results/real_expert_<face-input>.json.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, save_result

from synclip.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from synclip.corpus import load_cache  # noqa: E402
from synclip.lips_eval import evaluate, expert_cases, fit_calibration, reference_cases, summarise  # noqa: E402
from synclip.lips_train import FitSettings, add_audio_variants, fit, lip_scale, to_train_clip  # noqa: E402
from synclip.mesh import make_template, mouth_opening  # noqa: E402
from synclip.models.lipsync import LipSyncDims, LipSyncExpert  # noqa: E402

CACHE = Path.home() / ".cache" / "synclip" / "corpus"
PLAN = {"grid_s1": ((0, 5, -5, 10, -10), 15), "lrc_ar": ((0, 5, -5), 7), "video": ((0, 5, -5, 10, -10), 15)}


def corpus_cache(folder: str) -> Path | None:
    """The corpus cache folder, or None (said why) when it was not built; sets the CPU threads used."""
    cache = Path(folder)
    if not (cache / "grid_s1.npz").is_file():
        print(f"skipped: no corpus cache at {cache} (run benchmarks/corpus_extract.py first)")
        return None
    torch.set_num_threads(2)
    return cache


def corpus_data(folder: str, sources: list[str], source_lead: list[str]) -> tuple[dict, dict] | None:
    """``load_sources`` of ``sources`` and, when the cache has them, the 8 shared clips ("video"), with the
    leads given as SOURCE=K; and the leads. None (said why) when the cache was not built."""
    cache = corpus_cache(folder)
    if cache is None:
        return None
    lead = {k: int(v) for k, v in (item.split("=") for item in source_lead)}
    return load_sources(cache, sources + (["video"] if (cache / "video.npz").is_file() else []), lead), lead


def split_names(source: str, names: list[str]) -> dict[str, list[str]]:
    names = sorted(names)
    if source == "grid_s1":
        shuffled = names[:]
        random.Random(0).shuffle(shuffled)
        a, b = int(0.6 * len(names)), int(0.8 * len(names))
        return {"train": shuffled[:a], "val": shuffled[a:b], "test": shuffled[b:]}
    if source == "lrc_ar":
        blocks = np.array_split(np.array(names), 20)
        part = {3: "test", 13: "test", 8: "val", 18: "val"}
        out = {"train": [], "val": [], "test": []}
        for k, blk in enumerate(blocks):
            out[part.get(k, "train")] += blk.tolist()
        return out
    return {"train": [], "val": [], "test": names}


def load_sources(cache: Path, sources: list[str], lead: dict[str, int] | None = None) -> dict[str, dict[str, list]]:
    """{source: {part: [CorpusClip]}}; ``lead`` {source: k}: that source's audio is advanced by k frames
    (a constant offset of the recording, see corpus_sync.py), clips keeping their length."""
    from synclip.infer import shift_audio

    out = {}
    for s in sources:
        clips = {c.name: c for c in load_cache(cache / f"{s}.npz")}
        for c in clips.values():
            if (lead or {}).get(s):
                c.wav = shift_audio(c.wav, -lead[s])
        parts = split_names(s, list(clips))
        out[s] = {p: [clips[n] for n in names] for p, names in parts.items()}
    return out


def evaluate_parts(model, parts: dict, device, max_clips: int | None = None) -> dict:
    out = {}
    for source, clips in parts.items():
        out[source] = evaluate(model, clips[:max_clips], *PLAN[source], device)
    return out


def other_speech(model, clips: list, device, max_offset: int) -> list:
    """Each face against the next clip's speech (another sentence or person): one Case each."""
    cases = []
    for a, b in zip(clips, clips[1:] + clips[:1]):
        n = min(a.num_frames, b.num_frames)
        cases += expert_cases(model, _cut(a, n), (0,), max_offset, device, audio_feats=b.feats[:round(n * 3.2) + 1])
    return cases


def calibrate(model, val: dict, device) -> dict:
    """Fit the sync score on validation clips: in sync vs shifted by >= 5 frames or another voice."""
    pos, neg = [], []
    for source, clips in val.items():
        shifts, max_off = PLAN[source]
        for c in clips:
            for case in expert_cases(model, c, shifts, max_off, device):
                (pos if case.shift == 0 else neg).append(case.margin)
        neg += [case.margin for case in other_speech(model, clips, device, max_off)]
    a, b = fit_calibration(pos, neg)
    model.curve_calibration.copy_(torch.tensor([a, b]))
    return {"a": round(a, 4), "b": round(b, 4), "positives": len(pos), "negatives": len(neg)}


def _cut(clip, n: int):
    from dataclasses import replace

    return replace(clip, lips=clip.lips[:n], present=clip.present[:n],
                   crops=None if clip.crops is None else clip.crops[:n], feats=clip.feats[:round(n * 3.2) + 1])


def convert(data: dict, template: np.ndarray, pixels: bool) -> dict:
    """Validation and test clips as TrainClips (lip features with this template)."""
    return {s: {part: [to_train_clip(c, s, template, pixels) for c in clips] for part, clips in parts.items()
                if part != "train"} for s, parts in data.items()}


def load_run(path: Path) -> tuple[LipSyncExpert, dict]:
    """The expert of an earlier run (its checkpoint) and what that run recorded (the JSON beside it)."""
    ck = load_checkpoint(path, kind="sync")
    model = LipSyncExpert(LipSyncDims(**ck["dims"]))
    missing = set(model.load_state_dict(ck["state_dict"], strict=False).missing_keys)
    if missing - {"curve_calibration"}:
        raise SystemExit(f"{path}: weights do not fit: missing {sorted(missing)}")
    info = json.loads(ck["extra"].get("run", "{}")) if ck.get("extra") else {}
    beside = path.with_suffix(".json")
    if not info and beside.is_file():
        old = json.loads(beside.read_text())
        info = {k: v for k, v in old.items() if k not in ("test", "reference", "other_speech_score")}
    info.setdefault("val_offset_acc_pm1", ck["metrics"].get("val_offset_acc_pm1"))
    return model, info


def train_run(args, data: dict, ck_path: Path, device) -> tuple[LipSyncExpert, dict, dict, dict]:
    """Train an expert on the training parts; the best validation step is kept at ``ck_path``."""
    t0 = time.perf_counter()
    train_raw = [c for s in args.sources for c in data[s]["train"]]
    if args.train_fraction < 1:  # a random share of the training clips: the data curve
        random.Random(1).shuffle(train_raw)
        train_raw = train_raw[: max(1, round(len(train_raw) * args.train_fraction))]
    template = make_template(np.concatenate([c.landmarks[::10] for c in train_raw])[:4000])
    pixels = args.face_input != "landmarks"
    conv = convert(data, template, pixels)
    source_of = {id(c): s for s in args.sources for c in data[s]["train"]}
    train = [to_train_clip(c, source_of[id(c)], template, pixels) for c in train_raw]
    add_audio_variants(train, [c.wav for c in train_raw], args.audio_variants, voice_warp=args.voice_warp)
    dims = LipSyncDims(face_input=args.face_input, hidden_dim=args.hidden, context_frames=args.context,
                       temporal=args.temporal, curve_input=args.curve_input)
    model = LipSyncExpert(dims)
    model.template.copy_(torch.from_numpy(template))
    model.lip_scale.copy_(lip_scale(train))
    minutes = sum(c.num_frames for c in train) / 25 / 60
    print(f"{len(train)} training clips ({minutes:.1f} min), loaded in {time.perf_counter() - t0:.0f} s")
    val = {s: conv[s]["val"] for s in args.sources if conv[s].get("val")}
    best = {"acc": -1.0}

    def on_eval(step: int, row: dict) -> None:
        acc = float(np.mean([row[s]["offset_acc_pm1"] for s in val]))
        if acc > best["acc"]:
            best.update(acc=acc, step=step)
            save_checkpoint(ck_path, kind="sync", config={}, dims=dims.to_dict(), state_dict=model.state_dict(),
                            step=step, metrics={"val_offset_acc_pm1": acc})

    settings = FitSettings(steps=args.steps, batch=args.batch, learning_rate=args.lr,
                           eval_every=max(1, args.steps // 8), seed=args.seed)
    t1 = time.perf_counter()
    history = fit(model, train, settings, device, evaluate=lambda m: evaluate_parts(m, val, device, 150),
                  on_eval=on_eval)
    model.load_state_dict(load_checkpoint(ck_path)["state_dict"])
    info = {"face_input": args.face_input, "sources": args.sources, "train_clips": len(train),
            "train_minutes": round(minutes, 1), "steps": args.steps, "voice_warp": args.voice_warp, "best_step": best.get("step"), "val_offset_acc_pm1": best["acc"],
            "train_seconds": round(time.perf_counter() - t1), "history": history}
    return model, info, conv, val


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=str(CACHE))
    p.add_argument("--face-input", default="landmarks", choices=["landmarks", "pixels", "both"])
    p.add_argument("--sources", nargs="+", default=["grid_s1", "lrc_ar"])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--context", type=int, default=0, help="frames of context each side sees (odd; 0 = none)")
    p.add_argument("--temporal", default="conv", choices=["conv", "transformer"],
                   help="the expert's 5-frame window model (models/temporal.py)")
    p.add_argument("--audio-variants", type=int, default=3, help="augmented copies of each clip's audio")
    p.add_argument("--voice-warp", type=float, default=0.0,
                   help="warp half the audio variants' frequencies by up to this much (0.15: x0.87-1.15; 0 = off)")
    p.add_argument("--train-fraction", type=float, default=1.0, help="use this share of the training clips")
    p.add_argument("--seed", type=int, default=0, help="initial weights and the order of training chunks")
    p.add_argument("--checkpoint", default="", help="where to write the expert (default: beside the results)")
    p.add_argument("--out", default="")
    p.add_argument("--source-lead", nargs="*", default=[], metavar="SOURCE=K",
                   help="advance a source's audio by K frames first (a constant offset found by corpus_sync.py)")
    p.add_argument("--curve-input", default="spread", choices=["spread", "margin"],
                   help="what the sync score is calibrated on (models.lipsync.curve_margin)")
    p.add_argument("--from-checkpoint", default="", help="skip training: calibrate and measure this run's expert")
    p.add_argument("--ship", action="store_true", help="copy the result into synclip/pretrained with a model card")
    args = p.parse_args()
    loaded = corpus_data(args.cache, args.sources, args.source_lead)
    if loaded is None:
        return 0
    data, _ = loaded
    device = torch.device("cpu")
    ck_path = Path(args.checkpoint or RESULTS / f"real_expert_{args.face_input}.pth")
    if args.from_checkpoint:  # an earlier run's expert: calibrate and measure again, no training
        model, info = load_run(Path(args.from_checkpoint))
        model.dims = replace(model.dims, curve_input=args.curve_input)  # calibrated afresh below
        conv = convert(data, model.template.numpy(), model.uses_pixels)
        val = {s: conv[s]["val"] for s in args.sources if conv[s].get("val")}
    else:
        model, info, conv, val = train_run(args, data, ck_path, device)
    model.eval()
    info["calibration"] = calibrate(model, val, device)
    metrics = {"val_offset_acc_pm1": info.get("val_offset_acc_pm1", float("nan"))}
    save_checkpoint(ck_path, kind="sync", config={}, dims=model.dims.to_dict(), state_dict=model.state_dict(),
                    step=info.get("best_step") or 0, metrics=metrics, extra={"run": json.dumps(info)})
    test = {s: conv[s]["test"] for s in conv if conv[s].get("test")}
    result = {**info, "test": evaluate_parts(model, test, device), "reference": {}, "other_speech_score": {}}
    for s, clips in test.items():
        ref = []
        for raw, c in zip(data[s]["test"], clips):
            ref += reference_cases(mouth_opening(raw.landmarks), c, *PLAN[s])
        result["reference"][s] = summarise(ref)
        result["other_speech_score"][s] = round(float(np.mean([c.score for c in other_speech(model, clips, device,
                                                                                          PLAN[s][1])])), 4)
    print(f"{'test set':10s} {'cases':>6s} {'expert +-1':>10s} {'reference':>9s} {'score sync':>10s} "
          f"{'shifted>=5':>10s} {'other voice':>11s}")
    for s in test:
        e, r = result["test"][s], result["reference"][s]
        print(f"{s:10s} {e['cases']:6d} {e['offset_acc_pm1']:10.3f} {r['offset_acc_pm1']:9.3f} "
              f"{e['score_insync']:10.3f} {e['score_shifted_5plus']:10.3f} {result['other_speech_score'][s]:11.3f}")
    save_result(args.out or RESULTS / f"real_expert_{args.face_input}.json", result)
    if args.ship:
        ship(ck_path, result, " ".join(sys.argv[1:]))
    return 0


def ship(checkpoint: Path, result: dict, argv: str) -> None:
    """Copy the best checkpoint into the package (weights only) and write its model card beside it."""
    import subprocess

    from synclip.checkpoint import PRETRAINED_EXPERT

    ck = load_checkpoint(checkpoint, kind="sync")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip() or "unknown"
    figures = {s: {"expert": result["test"][s], "reference": result["reference"][s],
                   "other_speech_score": result["other_speech_score"][s]} for s in result["test"]}
    PRETRAINED_EXPERT.parent.mkdir(exist_ok=True)
    save_checkpoint(PRETRAINED_EXPERT, kind="sync", config={}, dims=ck["dims"], state_dict=ck["state_dict"],
                    step=ck["step"], metrics={"val_offset_acc_pm1": ck["metrics"]["val_offset_acc_pm1"]},
                    extra={"trained_at_commit": commit, "figures": json.dumps(figures)})
    rows = "\n".join(f"| {s} | {f['expert']['cases']} | {f['expert']['offset_acc_pm1']:.3f} | "
                     f"{f['reference']['offset_acc_pm1']:.3f} | {f['expert']['score_insync']:.3f} | "
                     f"{f['expert']['score_shifted_5plus']:.3f} | {f['other_speech_score']:.3f} |"
                     for s, f in figures.items())
    card = CARD.format(dims=json.dumps(ck["dims"]), commit=commit, argv=argv, rows=rows,
                       minutes=result["train_minutes"], clips=result["train_clips"], steps=result["steps"],
                       best=result["best_step"], seconds=result["train_seconds"],
                       val=f"offsets within +-1 on the validation clips, mean over sources: "
                           f"{result.get('val_offset_acc_pm1', float('nan')):.3f}",
                       mb=PRETRAINED_EXPERT.stat().st_size / 2**20)
    (PRETRAINED_EXPERT.parent / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(f"shipped {PRETRAINED_EXPERT} ({PRETRAINED_EXPERT.stat().st_size / 2**20:.1f} MB) and its model card")


CARD = """# synclip's pretrained sync expert (real footage)

`lip_expert.pth` ({mb:.1f} MB) is what `synclip score`, `fix-offset`, `batch` and `LipSyncInference()` use when no
checkpoint is given. It judges whether a face's lips go with a voice from the lip and jaw geometry of
mediapipe's face mesh (pose and the speaker's rest shape removed) against 16 log-mel frames, 5 video frames
(200 ms) at a time. Dims: `{dims}`.

## Data
Trained on `../shared/data/corpus` (see its README): the training parts of `grid_s1` (GRID corpus,
speaker s1, split by sentence: 60% train, 20% val, 20% test) and `lrc_ar` (LRC-AR Arabic TV news clips, 20
blocks of consecutive clip numbers: 16 train, 2 val, 2 test): {clips} clips, {minutes} minutes, each clip's
audio also in 3 augmented versions (noise at 0-20 dB SNR, another voice, reverberation, 8 kHz bandwidth,
8-bit mu-law, gain). Nothing from `../shared/data/real` was used for training or for choosing the checkpoint.

## How to reproduce (2-core CPU, no GPU)
```
python benchmarks/corpus_extract.py        # face tracks + mesh + audio of every clip -> ~/.cache/synclip/corpus
python benchmarks/real_expert.py {argv}
```
Trained at commit `{commit}`: {steps} steps of 32 one-second chunks, best validation step {best}, {seconds} s of
training. CPU training is not bit-reproducible: judge a re-run by its validation figure ({val}).

## Figures (footage the training never saw)
Each test clip scored in sync and with its audio moved by +-5 and +-10 frames (lrc_ar: +-5, searched +-7;
others +-15); "+-1" = the found offset within one frame of the truth; the score is the calibrated sync score
as the clip plays (from how far below its offset curve's median the distance at offset 0 lies; fitted on the
validation parts); "other voice" = a face against another clip's speech. "video" is the 8
clips of `../shared/data/real` (other people, cameras and sources than the training data). The reference is
model-free: the mesh's mouth opening correlated with the speech envelope.

| test set | cases | expert +-1 | reference +-1 | score in sync | score shifted >= 5 | score other voice |
|---|---|---|---|---|---|---|
{rows}

## Terms
GRID (Cooke, Barker, Cunningham and Shao, 2006) is distributed freely by its authors for research; LRC-AR's
recordings come with no stated terms (the repositories that carry them license only their code: Apache-2.0,
MIT). The weights are derived from both: use them for research and evaluation, and check the terms of the
source recordings before commercial use. The face mesh belongs to mediapipe (Apache-2.0) and is not copied
here; it is read from the mediapipe wheel at run time.
"""


if __name__ == "__main__":
    sys.exit(main())
