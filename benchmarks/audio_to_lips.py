"""Speech -> mouth shapes on real footage, judged by the shipped real-footage expert before anything is drawn.

    python benchmarks/audio_to_lips.py [--sources grid_s1 lrc_ar] [--steps 1500] [--save PATH]

Trains ``synclip.lips_audio.AudioToLips`` on the training parts of the corpus cache (the same splits as
real_expert.py: grid_s1 by sentence 60/20/20, lrc_ar by blocks), in the shipped expert's lip-feature space,
then on grid_s1's test sentences (the presenter with plenty of footage; never trained on):
- the shapes: correlation of the predicted inner-lip gap with the real one, frame by frame;
- the expert on the real lips with their own speech (the footage), on the predicted lips with the same speech
  (the dub's shapes) and on the real lips with another sentence's speech (undubbed): offset found within +-1
  of 0, the curve's confidence and the calibrated score;
- the same for other people's speech (the shared recordings musetalk_eng.wav and sadtalker_chinese_news.wav,
  in 3-s pieces): predicted shapes against that speech;
- a judge the model was not trained against: the model-free reference (the lip gap against the speech
  envelope) on the same cases.
``--sync-weight W`` adds the expert's own offset loss on the predicted shapes (``lips_audio.expert_sync_loss``,
the expert frozen): then the expert is also the teacher, and the reference is the only independent judge.
The validation parts of every source (``validation`` in the JSON: for lrc_ar, many people's voices) give the same
figures for the predicted shapes against the real lips' ("of real"); they, not the test speech, choose a setting.
Writes benchmarks/results/audio_to_lips.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import REAL, RESULTS, save_result
from real_expert import CACHE, PLAN, corpus_cache, load_sources

from synclip import audio as A  # noqa: E402
from synclip import media  # noqa: E402
from synclip.checkpoint import PRETRAINED_EXPERT, expert_from, load_checkpoint  # noqa: E402
from synclip.lips_audio import AudioToLips, centred, correlation, fit, lip_gap, predict, expert_sync_loss  # noqa: E402
from synclip.lips_eval import expert_cases, reference_cases  # noqa: E402
from synclip.lips_train import TrainClip, add_audio_variants, to_train_clip  # noqa: E402

MAX_OFFSET = 15
PIECE_FRAMES = 75  # 3 s, a GRID sentence's length


def judge(expert, clips: list[TrainClip], audio: list[torch.Tensor] | None = None,
          max_offset: int = MAX_OFFSET) -> dict:
    """The expert and the reference on clips (faces) against their own speech or ``audio``."""
    cases, refs = [], []
    for k, c in enumerate(clips):
        feats = None if audio is None else audio[k]
        cases += expert_cases(expert, c, (0,), max_offset, torch.device("cpu"), audio_feats=feats)
        probe = c if feats is None else replace(c, feats=feats)
        refs += reference_cases(np.where(c.present.numpy(), lip_gap(c.lips).numpy(), np.nan), probe, (0,),
                                max_offset)
    return {"cases": len(cases), "expert_within_1": round(float(np.mean([c.hit for c in cases])), 4),
            "expert_confidence": round(float(np.mean([c.confidence for c in cases])), 4),
            "expert_score": round(float(np.mean([c.score for c in cases])), 4),
            "reference_within_1": round(float(np.mean([c.hit for c in refs])), 4),
            "reference_confidence": round(float(np.mean([c.confidence for c in refs])), 4)}


def dubbed(model: AudioToLips, clip: TrainClip, feats: torch.Tensor) -> TrainClip:
    """The clip's face saying ``feats``: predicted shapes, every frame present."""
    n = min(clip.num_frames, int((len(feats) - 1) / A.MEL_PER_FRAME))
    present = torch.ones(n, dtype=torch.bool)
    lips = centred(predict(model, feats, n), present)
    return replace(clip, lips=lips, present=present, feats=feats[:round(n * A.MEL_PER_FRAME) + 1], variants=[])


def speech_pieces(path: Path) -> list[torch.Tensor]:
    wav = media.read_audio(path)
    step = A.frames_to_samples(PIECE_FRAMES)
    return [A.normalize_mel(A.log_mel(wav[a:a + step])) for a in range(0, len(wav) - step + 1, step)]


def save_model(path: Path, model: AudioToLips, template: np.ndarray, sources: list[str], steps: int,
               sync_weight: float = 0.0) -> None:
    """A plain dict of tensors and strings (read back with torch.load(weights_only=True)), written atomically."""
    from synclip.store import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"kind": "audio_to_lips", "state_dict": model.state_dict(),
                    "template": torch.from_numpy(template), "sources": sources, "steps": steps,
                    "sync_weight": sync_weight}, tmp)
    print(f"saved {path}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=str(CACHE))
    p.add_argument("--sources", nargs="+", default=["grid_s1", "lrc_ar"])
    p.add_argument("--source-lead", nargs="*", default=[], metavar="SOURCE=K")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--expert", default=str(PRETRAINED_EXPERT))
    p.add_argument("--out", default=str(RESULTS / "audio_to_lips.json"))
    p.add_argument("--save", default=None, help="keep the trained model here (state_dict + the expert's template)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default 2, as corpus_cache sets)")
    p.add_argument("--sync-weight", type=float, default=0.0,
                   help="add the expert's offset loss on the predicted shapes (lips_audio.expert_sync_loss), this weight")
    p.add_argument("--voice-warp", type=float, default=0.0,
                   help="warp half the audio variants' frequencies by up to this much (lips_train.warp_voice)")
    args = p.parse_args()
    cache = corpus_cache(args.cache)
    if cache is None:
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = load_checkpoint(args.expert, kind="sync")
    expert = expert_from(data, args.expert, torch.device("cpu")).eval()
    template = expert.template.numpy()
    t0 = time.perf_counter()
    lead = {k: int(v) for k, v in (item.split("=") for item in args.source_lead)}
    raw = load_sources(cache, list(dict.fromkeys(args.sources + ["grid_s1"])), lead)
    train = [to_train_clip(c, s, template, False) for s in args.sources for c in raw[s]["train"]]
    add_audio_variants(train, [c.wav for s in args.sources for c in raw[s]["train"]], count=2,
                       voice_warp=args.voice_warp)
    test = [to_train_clip(c, "grid_s1", template, False) for c in raw["grid_s1"]["test"]]
    val = {s: [to_train_clip(c, s, template, False) for c in raw[s]["val"]] for s in args.sources}
    loaded = time.perf_counter() - t0
    print(f"{len(train)} training clips ({sum(c.num_frames for c in train) / 1500:.1f} min), "
          f"{len(test)} grid_s1 test clips, loaded in {loaded:.0f} s")
    model = AudioToLips()
    t0 = time.perf_counter()
    # The teacher is a second copy of the judge: its lip features are the ones the clips were made with (another
    # expert's template would not match them), and freezing it leaves the judge as it was.
    teacher = expert_sync_loss(expert_from(data, args.expert, torch.device("cpu"))) if args.sync_weight else None
    history = fit(model, train, args.steps, sync=teacher, sync_weight=args.sync_weight)
    trained = time.perf_counter() - t0
    if args.save:
        save_model(Path(args.save), model, template, args.sources, args.steps, args.sync_weight)

    preds = [dubbed(model, c, c.feats) for c in test]
    seen = [c.present[:d.num_frames] for c, d in zip(test, preds)]
    gaps = [correlation(lip_gap(d.lips)[ok], lip_gap(c.lips[:d.num_frames])[ok]) for c, d, ok in zip(test, preds, seen)]
    others = [test[(k + 1) % len(test)].feats for k in range(len(test))]
    result = {"sources": args.sources, "source_lead": lead, "train_clips": len(train), "steps": args.steps,
              "sync_weight": args.sync_weight, "voice_warp": args.voice_warp,
              "train_seconds": round(trained), "history": history, "expert": str(args.expert),
              "lip_gap_correlation": {"mean": round(float(np.mean(gaps)), 4),
                                      "median": round(float(np.median(gaps)), 4)},
              "grid_s1_test": {"footage (real lips, own speech)": judge(expert, test),
                               "dub shapes (predicted from that speech)": judge(expert, preds),
                               "undubbed (real lips, another sentence)": judge(expert, test, others)}}
    result["validation"] = {}
    for s, clips in val.items():
        reach = PLAN[s][1]
        real, dub = judge(expert, clips, max_offset=reach), judge(expert, [dubbed(model, c, c.feats) for c in clips],
                                                                  max_offset=reach)
        result["validation"][s] = {"footage": real, "dub shapes": dub,
                                   "dub_confidence_of_real": round(dub["expert_confidence"] / real["expert_confidence"], 3)}
        print(f"validation {s:10s} n={dub['cases']:4d} dub shapes: expert +-1 {dub['expert_within_1']:.3f} conf "
              f"{dub['expert_confidence']:.3f} ({result['validation'][s]['dub_confidence_of_real']:.2f} of real) | "
              f"reference +-1 {dub['reference_within_1']:.3f} (real lips {real['reference_within_1']:.3f})")
    for name in ("musetalk_eng.wav", "sadtalker_chinese_news.wav"):
        path = REAL / "audio" / name
        if not path.is_file():
            continue
        pieces = speech_pieces(path)
        faces = [dubbed(model, test[k % len(test)], f) for k, f in enumerate(pieces)]
        undub = [test[k % len(test)] for k in range(len(pieces))]
        undub = [replace(c, lips=c.lips[:f.num_frames], present=c.present[:f.num_frames]) for c, f in zip(undub, faces)]
        result[name] = {"dub shapes": judge(expert, faces), "undubbed": judge(expert, undub, [f.feats for f in faces])}
    for group, rows in result.items():
        if isinstance(rows, dict) and all(isinstance(v, dict) and "cases" in v for v in rows.values()):
            for what, r in rows.items():
                print(f"{group:28s} {what:42s} n={r['cases']:4d} expert +-1 {r['expert_within_1']:.3f} "
                      f"conf {r['expert_confidence']:.3f} score {r['expert_score']:.3f} | reference +-1 "
                      f"{r['reference_within_1']:.3f}")
    print(f"lip gap correlation (predicted vs real, grid_s1 test): {result['lip_gap_correlation']}")
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
