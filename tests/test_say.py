"""`synclip say` and synclip.tts: offline speech with digital silence at punctuation, bad input refused clearly,
the wav kept beside the mp4; and (slow) a trained generator closes the mouth in those pauses and the dubbed
video scores above the same video with the speech laid on undubbed."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

from synclip import audio as A
from synclip import media, tts
from synclip.errors import InputError

ZH = "你好，今天天气很好。我们开始吧！"  # two breaks inside: a comma, then a full stop
EN = "Hello there, the weather is fine today. Let us begin!"


def silent_runs(wav: np.ndarray, min_s: float = 0.12) -> list[tuple[int, int]]:
    """(start, end) sample spans of exact zeros at least ``min_s`` long."""
    zero = np.concatenate([[False], wav == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    return [(s, e) for s, e in zip(edges[::2], edges[1::2]) if e - s >= min_s * A.SAMPLE_RATE_HZ]


@pytest.mark.parametrize("lang,text,voice", [("zh", ZH, None), ("en", EN, "espeak:en-us"), ("en", EN, None)])
def test_punctuation_makes_digital_silence(lang, text, voice):
    wav = tts.synthesize(text, lang, voice)
    runs = silent_runs(wav)
    # lead-in, after the comma, after the full stop, and the end (the final "!" merges with the tail)
    assert len(runs) == 4, [(s / 16000, e / 16000) for s, e in runs]
    comma, stop = [(e - s) / A.SAMPLE_RATE_HZ for s, e in runs[1:3]]
    assert tts.MINOR_PAUSE_S - 0.01 <= comma <= tts.MINOR_PAUSE_S + 0.05
    assert tts.MAJOR_PAUSE_S - 0.01 <= stop <= tts.MAJOR_PAUSE_S + 0.05
    speech = np.concatenate([wav[e1:s2] for (_, e1), (s2, _) in zip(runs[:-1], runs[1:])])
    assert np.sqrt(np.mean(speech ** 2)) > 0.03  # the phrases between the pauses are sound, not near-silence


def test_rate_shortens_speech_but_not_pauses_below_the_floor():
    slow, fast = tts.synthesize(EN, "en", "espeak:en-us", rate=0.8), tts.synthesize(EN, "en", "espeak:en-us", rate=2.0)
    assert len(fast) < 0.6 * len(slow)
    assert min(e - s for s, e in silent_runs(fast)) >= tts.MIN_PAUSE_S * A.SAMPLE_RATE_HZ - 1


def test_phrases_keep_numbers_and_abbreviations_whole():
    assert tts.phrases("Dr. Li paid 3.50, at 10:30. 好、的") == [("Dr. Li paid 3.50", tts.MINOR_PAUSE_S),
                                                            ("at 10:30", tts.MAJOR_PAUSE_S),
                                                            ("好", tts.LIST_PAUSE_S), ("的", 0.0)]


def test_speak_writes_a_16k_mono_wav_and_no_temp_file(tmp_path):
    out = tts.speak(ZH, "zh", tmp_path / "line.wav", voice="espeak:cmn+f3", rate=1.2)
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert 1.0 < w.getnframes() / 16000 < 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line.wav"]


@pytest.mark.parametrize("kwargs,words", [
    ({"text": "   ", "lang": "zh"}, "nothing to say"),
    ({"text": "。！？", "lang": "zh"}, "nothing to say"),
    ({"text": "hi", "lang": "fr"}, "not supported"),
    ({"text": "hi", "lang": "en", "voice": "espeak:cmn"}, "speaks zh"),
    ({"text": "hi", "lang": "en", "voice": "nobody"}, "unknown voice"),
    ({"text": "hi", "lang": "en", "rate": 0.0}, "rate must be"),
    ({"text": "hi", "lang": "en", "rate": float("nan")}, "rate must be"),
    ({"text": "x" * (tts.MAX_TEXT_CHARS + 1), "lang": "en"}, "more than"),
    ({"text": None, "lang": "en"}, "must be a string"),
])
def test_bad_input_is_an_input_error(kwargs, words, tmp_path):
    with pytest.raises(InputError, match=words):
        tts.speak(out_wav=tmp_path / "x.wav", **kwargs)
    assert not list(tmp_path.iterdir())


def test_missing_output_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        tts.speak("hi", "en", tmp_path / "no" / "x.wav")


def test_voices_and_engines_are_listed():
    zh, en = {v.id for v in tts.list_voices("zh")}, {v.id for v in tts.list_voices("en")}
    assert "espeak:cmn" in zh and "espeak:en-us" in en and not zh & en
    assert tts.resolve_voice("zh").id == "espeak:cmn"
    names = {e["name"]: e for e in tts.list_engines()}
    assert names["espeak"]["available"]
    if names["piper"]["available"]:  # the neural voice wins for English when it is installed
        assert tts.resolve_voice("en").id == "piper:en_US-joe-medium"


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from fuzz_corpus import tiny_generator  # the untrained generator the fuzz run dubs with

    return tiny_generator(tmp_path_factory.mktemp("say_gen") / "gen.pth")


def test_say_cli_keeps_the_wav_beside_the_mp4(tiny_generator, synth_dir, tmp_path, capsys):
    from synclip.cli import main

    text = tmp_path / "script.txt"
    text.write_text("你好，世界。", encoding="utf-8")
    out = tmp_path / "presenter.mp4"
    rc = main(["say", "--video", str(synth_dir / "videos" / "synth_0002.mp4"), "--text-file", str(text),
               "--lang", "zh", "--out", str(out), "--checkpoint", str(tiny_generator), "--quiet"])
    assert rc == 0
    speech = media.read_audio(out.with_suffix(".wav"))
    assert media.probe_video(out).num_frames == -(-len(speech) // A.SAMPLES_PER_FRAME)
    rc = main(["say", "--image", str(tmp_path / "none.jpg"), "--text", "hi", "--lang", "en", "--out",
               str(tmp_path / "no_such_folder" / "o.mp4"), "--quiet"])
    assert rc == 1 and "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- slow: a trained model


def mouth_openings(video: Path, detector) -> np.ndarray:
    """(T,) inner-lip gap over mouth width per frame of ``video`` (NaN where no mesh), from mediapipe's mesh
    on the tracked face crop."""
    from synclip.config import DataConfig
    from synclip.face import crop, detect_tracks, subject_squares
    from synclip.mesh import MESH_INPUT_PX, FaceMesh, mouth_opening

    info = media.probe_video(video)
    track = detect_tracks(video, info, detector)[0]
    squares = subject_squares(track, DataConfig())[2]
    out = np.full(info.num_frames, np.nan)
    with FaceMesh() as mesh:
        for i, frame in enumerate(media.iter_frames(video)):
            if i < len(squares) and not np.isnan(squares[i, 0]):
                lm = mesh.run(crop(frame, squares[i], MESH_INPUT_PX))
                if lm is not None:
                    out[i] = mouth_opening(lm[None])[0]
    return out


def pause_frames(wav: np.ndarray) -> np.ndarray:
    """Video frames well inside the punctuation pauses (not the lead-in or the tail): 2 frames in from each
    edge, where the generator's 200-ms audio window sees only silence around the frame."""
    runs = silent_runs(wav)[1:-1]
    frames = [np.arange(-(-s // A.SAMPLES_PER_FRAME) + 2, e // A.SAMPLES_PER_FRAME - 2) for s, e in runs]
    return np.concatenate(frames)


@pytest.fixture(scope="module")
def trained_generator(tmp_path_factory) -> Path:
    """SYNCLIP_SAY_GENERATOR (a generator checkpoint trained on synthetic faces, e.g. `synclip demo`'s
    demo/checkpoints/generator/best_model.pth), else the demo's schedule trained here (about 40 CPU minutes)."""
    given = os.environ.get("SYNCLIP_SAY_GENERATOR")
    if given:
        return Path(given)
    from synclip.demo import GEN_EPOCHS, TRAIN_CLIPS, demo_config
    from synclip.prepare import prepare
    from synclip.synth import make_dataset
    from synclip.train import run_stage

    out = tmp_path_factory.mktemp("say_demo")
    cfg = demo_config(out)
    make_dataset(out / "raw", TRAIN_CLIPS, seconds=4.0, seed=1)
    prepare(cfg)
    run_stage(cfg, "sync", progress=False)
    return run_stage(cfg.replace(**{"training.num_epochs": GEN_EPOCHS}), "generator", progress=False).best_path


@pytest.mark.slow
@pytest.mark.parametrize("lang,text", [("zh", ZH + "现在，我们看第一部分。"), ("en", EN + " Now, the first part.")])
def test_say_closes_the_mouth_in_pauses_and_beats_the_undubbed_video(lang, text, trained_generator, detector,
                                                                    tmp_path):
    from synclip import synth
    from synclip.cli import main
    from synclip.infer import LipSyncInference

    synth.make_clip(tmp_path, "face", seconds=4.0, appearance_index=9100, sentence_seed=9100)  # a held-out look
    video, out = tmp_path / "videos" / "face.mp4", tmp_path / f"say_{lang}.mp4"
    assert main(["say", "--video", str(video), "--text", text, "--lang", lang, "--out", str(out),
                 "--checkpoint", str(trained_generator), "--quiet"]) == 0
    speech = media.read_audio(out.with_suffix(".wav"))
    opening = mouth_openings(out, detector)
    pauses = pause_frames(speech)
    talking = np.array([i for i in range(len(opening))
                        if np.abs(speech[i * A.SAMPLES_PER_FRAME:(i + 1) * A.SAMPLES_PER_FRAME]).max(initial=0) > 0.05])
    in_pause, in_speech = np.nanmedian(opening[pauses]), np.nanpercentile(opening[talking], 75)
    print(f"{lang}: mouth opening median in {len(pauses)} pause frames {in_pause:.3f}, "
          f"75th percentile while talking {in_speech:.3f}")
    assert in_pause < 0.5 * in_speech
    model = LipSyncInference(trained_generator, device="cpu")
    dubbed, _ = model.compute_sync_score(out)
    undubbed, _ = model.compute_sync_score(video, out.with_suffix(".wav"))
    print(f"{lang}: expert score dubbed {dubbed:.3f}, undubbed {undubbed:.3f}")
    assert dubbed > undubbed
