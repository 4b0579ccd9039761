"""Two more tries at AudioToLips' shapes for voices it never heard (the dub's weak point; README "Where the
other voices' confidence goes"). Neither helped; both are kept so the figures can be checked.

    python benchmarks/audio_to_lips_trials.py freq-mask --sources grid_s1 lrc_ar --source-lead lrc_ar=1 \
        --steps 1600 --sync-weight 1 --out benchmarks/results/audio_to_lips_freq_mask.json
    python benchmarks/audio_to_lips_trials.py warp-average

``freq-mask``: audio_to_lips.py with SpecAugment's frequency masks on AudioToLips' input while it trains (two
bands of up to 10 mel bins per clip, each set to its mean; the teaching expert hears the speech unmasked), so it
cannot lean on the few bands where a voice differs. ``warp-average``: the shipped presenter's AudioToLips run on
the speech warped along frequency (``lips_train.warp_voice``) by each factor of a set, the shapes averaged, judged
by the shipped expert at the shape level on the first 20 grid_s1 test sentences (another sentence each), on 3-s
pieces of musetalk_eng.wav and of sadtalker_chinese_news.wav; writes benchmarks/results/audio_to_lips_warp_average.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import audio_to_lips  # puts the project on sys.path
import numpy as np
import torch
from common import REAL, RESULTS, save_result, take_mode

from synclip import audio as A  # noqa: E402
from synclip import lips_audio  # noqa: E402

MASKS, MASK_BINS = 2, 10
WARP_SETS = ((1.0,), (0.9, 1.0, 1.1), (0.85, 0.92, 1.0, 1.08, 1.15), (0.9,), (1.1,))


class FreqMaskedAudioToLips(lips_audio.AudioToLips):
    """AudioToLips that, while training, sets MASKS random bands of up to MASK_BINS mel bins of each clip's
    input to their mean."""

    def forward(self, mel: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        if self.training:
            mel = mel.clone()
            for b in range(len(mel)):
                for _ in range(MASKS):
                    w = int(torch.randint(0, MASK_BINS + 1, ()))
                    f0 = int(torch.randint(0, mel.shape[2] - w + 1, ()))
                    mel[b, :, f0:f0 + w] = mel[b, :, f0:f0 + w].mean()
        return super().forward(mel, centres)


def warp_average() -> int:
    import real_render_sync as R

    from synclip import media
    from synclip.lips_audio import centred, predict
    from synclip.lips_train import warp_voice
    from synclip.presenter import PRETRAINED
    from synclip.render import mouth_from_features

    if R.inputs_missing(Path(PRETRAINED)):
        return 0
    expert, a2l, template, _ = R.load_models(Path(PRETRAINED))
    test, wavs = R.test_clips(20)
    names = test.names
    spans, frames = R.clip_spans(test, wavs)
    step = A.frames_to_samples(75)
    speech = {"another sentence": [(k, A.log_mel(wavs[names[(k + 1) % len(names)]][:A.frames_to_samples(
        min(frames[names[k]], frames[names[(k + 1) % len(names)]]))])) for k in range(len(names))]}
    for name in R.SPEECH:
        wav = media.read_audio(REAL / "audio" / name)
        speech[name] = [(p % len(names), A.log_mel(wav[a:a + step]))
                        for p, a in enumerate(range(0, len(wav) - step + 1, step))]
    result = {"data": "first 20 grid_s1 test sentences (real_render.grid_split) and the shared speech files",
              "judge": "synclip/pretrained/lip_expert.pth, +-15 frames, shape level", "rows": {}}
    for what, items in speech.items():
        for warps in WARP_SETS:
            faces = []
            for k, db in items:
                feats = A.normalize_mel(db)
                m = min(frames[names[k]], int((len(feats) - 1) / A.MEL_PER_FRAME))
                lm = test.landmarks[np.arange(spans[k][0], spans[k][0] + m)]
                present = torch.from_numpy(~np.isnan(lm[:, 0, 0]))
                lips = torch.stack([centred(predict(a2l, A.normalize_mel(warp_voice(torch.as_tensor(db), w)), m),
                                            present) for w in warps]).mean(0).numpy()
                faces.append(R.Face(f"{names[k]}<-{what}", mouth_from_features(lm, lips, template),
                                    feats[:round(m * A.MEL_PER_FRAME) + 1]))
            r = R.judge(expert, template, faces)
            r.pop("per_case")
            result["rows"][f"{what} | warps {warps}"] = r
            print(f"{what:28s} warps {str(warps):32s} n={r['cases']:3d} confidence {r['expert_confidence']:.3f} "
                  f"reference +-1 {r['reference_within_1']:.2f}", flush=True)
    save_result(RESULTS / "audio_to_lips_warp_average.json", result)
    return 0


def main() -> int:
    which = take_mode(("freq-mask", "warp-average"), __doc__)
    if which is None:
        return 2
    if which == "warp-average":
        return warp_average()
    audio_to_lips.AudioToLips = FreqMaskedAudioToLips
    return audio_to_lips.main()


if __name__ == "__main__":
    sys.exit(main())
