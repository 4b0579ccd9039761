"""Synthetic talking heads and their voice (synclip.synth): the ground truth must be exact, so these
tests check the facts the rest of the project relies on. Their speed is benchmarks/synth.py's figure."""

from __future__ import annotations

import json
from pathlib import Path

import mediapipe as mp  # BlazeFace and FaceMesh ship inside its wheel
import numpy as np
import pytest
from scipy.linalg import solve_toeplitz

from synclip import media, synth
from synclip.audio import SAMPLE_RATE_HZ, SAMPLES_PER_FRAME, VIDEO_FPS
from synclip.errors import ConfigError
from synclip.synth import Segment, Speaker


# ---------------------------------------------------------------------------------------------
# helpers and shared fixtures


def _envelope(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """log RMS per 40 ms video frame."""
    x = np.asarray(audio[:num_frames * SAMPLES_PER_FRAME], np.float64)
    x = np.pad(x, (0, num_frames * SAMPLES_PER_FRAME - len(x)))
    return np.log(np.sqrt((x.reshape(num_frames, -1) ** 2).mean(1)) + 1e-3)


def _best_lag(env: np.ndarray, opening: np.ndarray, max_lag: int = 12) -> int:
    """The lag L maximising corr(env[j], opening[j + L])."""
    n = len(env)
    scores = []
    for lag in range(-max_lag, max_lag + 1):
        a, b = (env[:n - lag], opening[lag:]) if lag >= 0 else (env[-lag:], opening[:n + lag])
        scores.append((np.corrcoef(a, b)[0, 1], lag))
    return max(scores)[1]


def _lpc_formants(x: np.ndarray, sr: int = SAMPLE_RATE_HZ, order: int = 14) -> np.ndarray:
    """Formant frequencies (Hz, ascending) from the roots of an LPC polynomial."""
    x = np.asarray(x, np.float64)
    x = np.append(x[0], x[1:] - 0.9 * x[:-1]) * np.hanning(len(x))
    r = np.correlate(x, x, "full")[len(x) - 1:len(x) + order]
    a = solve_toeplitz(r[:order], -r[1:order + 1])
    roots = np.roots(np.r_[1.0, a])
    roots = roots[np.imag(roots) > 0]
    freq = np.angle(roots) * sr / (2 * np.pi)
    bw = -np.log(np.abs(roots)) * sr / np.pi
    return np.sort(freq[(bw < 500) & (freq > 150)])


def _frames_in(seg: dict | Segment, num_frames: int) -> np.ndarray:
    start = seg["start_s"] if isinstance(seg, dict) else seg.start_s
    end = seg["end_s"] if isinstance(seg, dict) else seg.end_s
    t = (np.arange(num_frames) + 0.5) / VIDEO_FPS  # each frame shows its middle instant
    return np.nonzero((t >= start) & (t < end))[0]


@pytest.fixture(scope="module")
def detectors():
    dets = {ms: mp.solutions.face_detection.FaceDetection(model_selection=ms,
                                                          min_detection_confidence=0.5)
            for ms in (0, 1)}
    yield dets
    for d in dets.values():
        d.close()


@pytest.fixture(scope="module")
def eight_clips():
    """Appearances 0-7, 2 s each, in memory: list of (frames, audio, truth)."""
    out = []
    for i in range(8):
        frames, audio, truth = synth.clip_content(seconds=2.0, appearance_index=i,
                                                  sentence_seed=100 + i, seed=i)
        out.append((list(frames), audio, truth))
    return out


# ---------------------------------------------------------------------------------------------
# the measured constants


def test_source_constants_match_mediapipe(detectors):
    from skimage import data as skdata

    img = skdata.astronaut()
    h, w = img.shape[:2]
    assert (w, h) == synth.SOURCE_SIZE
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                         refine_landmarks=True) as mesh:
        result = mesh.process(img)
    assert result.multi_face_landmarks, "FaceMesh found no face in the astronaut photo"
    lm = np.array([[p.x * w, p.y * h] for p in result.multi_face_landmarks[0].landmark])
    centre = (lm[13] + lm[14]) / 2
    assert np.allclose(centre, synth.MOUTH_CENTRE, atol=3.0), centre
    assert abs(np.linalg.norm(lm[291] - lm[61]) - synth.MOUTH_WIDTH) < 3.0
    assert np.allclose(lm[152], synth.CHIN, atol=3.0)
    det = detectors[0].process(img).detections
    assert det
    b = det[0].location_data.relative_bounding_box
    box = (b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h)
    assert np.allclose(box, synth.FACE_BOX, atol=4.0), box


# ---------------------------------------------------------------------------------------------
# sentences and the voice


def test_make_sentence_covers_the_span_exactly_and_is_deterministic():
    for seed in range(30):
        seconds = 2.0 + seed * 0.2
        segs = synth.make_sentence(np.random.default_rng(seed), seconds)
        again = synth.make_sentence(np.random.default_rng(seed), seconds)
        assert segs == again
        assert segs[0].start_s == 0.0 and segs[-1].end_s == seconds
        assert segs[0].symbol == synth.PAUSE_SYMBOL and segs[-1].symbol == synth.PAUSE_SYMBOL
        for a, b in zip(segs, segs[1:]):
            assert a.end_s == pytest.approx(b.start_s, abs=1e-9)
        assert all(s.end_s > s.start_s and s.symbol in synth.PHONES for s in segs)
        # a closed-mouth phone lasts at least one frame period: some frame always shows it
        assert all(s.duration_s >= 1 / VIDEO_FPS for s in segs if s.symbol in synth.CLOSED_MOUTH)
    # syllable rate while speaking: about 4-5 per second
    rates = []
    for seed in range(40):
        segs = synth.make_sentence(np.random.default_rng(seed), 6.0)
        speech = sum(s.duration_s for s in segs if s.symbol != synth.PAUSE_SYMBOL)
        rates.append(sum(s.phone.kind == synth.VOWEL for s in segs) / speech)
    assert 3.8 < np.mean(rates) < 5.5
    assert synth.make_sentence(np.random.default_rng(1), 4.0) != synth.make_sentence(
        np.random.default_rng(2), 4.0)


def test_inventory_shapes():
    p = synth.PHONES
    assert p["a"].opening == pytest.approx(1.0) and p["i"].opening < p["e"].opening < p["a"].opening
    assert p["u"].width < p["o"].width < p["a"].width < p["e"].width < p["i"].width
    for sym in ("m", "b", "p", synth.PAUSE_SYMBOL):
        assert p[sym].opening == 0.0
    assert p["s"].noise_band[0] >= 4000 and p["sh"].noise_band[1] <= 4000
    assert p["a"].voice_amp > p["i"].voice_amp and p["a"].voice_amp > p["u"].voice_amp
    assert p["m"].voice_amp < 0.5 * p["a"].voice_amp
    assert p["m"].formants[0] < 300


def test_vowel_formants_a_and_i_are_distinct_and_as_listed():
    segs = [Segment("sil", 0.0, 0.2), Segment("a", 0.2, 0.5), Segment("sil", 0.5, 0.7),
            Segment("i", 0.7, 1.0), Segment("sil", 1.0, 1.2)]
    for speaker in (Speaker(95.0, 0.9, 0.1, 0.8), Speaker(220.0, 1.1, 0.3, 1.0)):
        audio = synth.synthesize(segs, speaker, 1.2, rng=np.random.default_rng(0))
        f2 = {}
        for sym, mid in (("a", 0.35), ("i", 0.85)):
            i0 = int((mid - 0.03) * SAMPLE_RATE_HZ)
            est = _lpc_formants(audio[i0:i0 + 960])
            target = np.asarray(synth.PHONES[sym].formants) * speaker.tract_scale
            # F2: the estimate nearest the listed F2 is within 10 %
            near = est[np.argmin(np.abs(est - target[1]))]
            assert abs(near - target[1]) < 0.1 * target[1], (sym, est, target)
            f2[sym] = near
        assert f2["i"] - f2["a"] > 600


def test_pauses_are_quiet_compared_with_vowels():
    for seed in range(4):
        audio, segs = synth.make_audio(seed, 4.0)
        pause, vowel = [], []
        for s in segs:
            a = int((s.start_s + 0.04) * SAMPLE_RATE_HZ)
            b = int((s.end_s - 0.04) * SAMPLE_RATE_HZ)
            if b - a < 160:
                continue
            if s.symbol == synth.PAUSE_SYMBOL:
                pause.append(audio[a:b])
            elif s.phone.kind == synth.VOWEL:
                vowel.append(audio[a:b])
        assert pause and vowel
        rms = lambda chunks: float(np.sqrt(np.mean(np.concatenate(chunks) ** 2)))  # noqa: E731
        assert rms(pause) < 0.01 * rms(vowel), (seed, rms(pause), rms(vowel))
        assert np.abs(audio).max() <= 1.0 and audio.dtype == np.float32


def test_silence_is_silent_with_a_closed_mouth():
    audio = synth.silent_audio(2.0)
    assert audio.shape == (2 * SAMPLE_RATE_HZ,) and audio.dtype == np.float32
    assert np.sqrt(np.mean(audio ** 2)) < 1e-3
    opening, width = synth.mouth_track([Segment(synth.PAUSE_SYMBOL, 0.0, 2.0)], 50)
    assert np.all(opening == 0.0) and np.all((width >= 0) & (width <= 1))
    assert np.all(synth.mouth_track([], 10)[0] == 0.0)
    none = synth.synthesize([], Speaker(120.0, 1.0, 0.0, 1.0), 1.0)
    assert none.shape == (SAMPLE_RATE_HZ,) and np.sqrt(np.mean(none ** 2)) < 1e-3


def test_time_shift_moves_the_same_waveform():
    segs = synth.shift_segments(synth.make_sentence(np.random.default_rng(5), 5.6), -0.8)
    spk = Speaker(150.0, 1.0, 0.2, 0.9)
    base = synth.synthesize(segs, spk, 4.0, rng=np.random.default_rng(9))
    for k in (-6, 4):
        shifted = synth.synthesize(segs, spk, 4.0, rng=np.random.default_rng(9),
                                   time_shift_s=k / VIDEO_FPS)
        n = k * SAMPLES_PER_FRAME
        # output sample t renders segment time t + k/25: shifted[t] == base[t + n]
        if n > 0:
            np.testing.assert_allclose(shifted[:-n], base[n:], atol=1e-6)
        else:
            np.testing.assert_allclose(shifted[-n:], base[:n], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# mouth track


def test_mouth_closed_in_pauses_and_bilabials_open_on_a():
    checked_a = 0
    for seed in range(60):
        segs = synth.make_sentence(np.random.default_rng(seed), 4.0)
        opening, width = synth.mouth_track(segs, 100)
        assert opening.dtype == np.float32 and opening.shape == width.shape == (100,)
        assert np.all((opening >= 0) & (opening <= 1) & (width >= 0) & (width <= 1))
        t = (np.arange(100) + 0.5) / VIDEO_FPS
        for s in segs:
            frames = _frames_in(s, 100)
            if s.symbol in ("m", "b", "p", synth.PAUSE_SYMBOL):
                assert len(frames) > 0
                assert np.all(opening[frames] == 0.0), (seed, s)
            if s.symbol == "a":
                mid = np.abs(t - (s.start_s + s.end_s) / 2) <= 0.02
                if mid.any():
                    assert opening[mid].min() > 0.4, (seed, s, opening[mid])
                    checked_a += 1
    assert checked_a > 50


def test_clip_truth_mouth_follows_its_phones(eight_clips):
    for _, _, truth in eight_clips[:4]:
        n = truth["num_frames"]
        opening = np.asarray(truth["mouth_opening"])
        assert len(opening) == n and len(truth["mouth_width"]) == n
        assert truth["phones"][0]["start_s"] == 0.0
        assert truth["phones"][-1]["end_s"] == truth["seconds"]
        for p in truth["phones"]:
            if p["symbol"] in ("m", "b", "p", synth.PAUSE_SYMBOL):
                assert np.all(opening[_frames_in(p, n)] == 0.0)


# ---------------------------------------------------------------------------------------------
# clips in memory


@pytest.mark.parametrize("k", [-6, 0, 4])
def test_offset_is_recoverable_from_audio_envelope_and_mouth(k):
    lags = []
    for seed in (21, 22):
        _, audio, truth = synth.clip_content(seconds=4.0, offset_frames=k, seed=seed)
        assert truth["offset_frames"] == k
        assert len(audio) == 4 * SAMPLE_RATE_HZ
        lags.append(_best_lag(_envelope(audio, truth["num_frames"]),
                              np.asarray(truth["mouth_opening"])))
    assert all(abs(lag - k) <= 1 for lag in lags), (k, lags)


def test_make_audio_is_the_clip_audio():
    _, audio, truth = synth.clip_content(seconds=2.0, seed=4, sentence_seed=77)
    again, segs = synth.make_audio(77, 2.0)
    np.testing.assert_array_equal(audio, again)
    assert [(s.symbol, round(s.start_s, 4), round(s.end_s, 4)) for s in segs] == [
        (p["symbol"], p["start_s"], p["end_s"]) for p in truth["phones"]]
    # the same person saying another sentence: same look and head motion, other mouth
    _, _, other = synth.clip_content(seconds=2.0, seed=4, sentence_seed=78)
    assert other["appearance_index"] == truth["appearance_index"]
    assert other["face_boxes"] == truth["face_boxes"]
    assert other["mouth_opening"] != truth["mouth_opening"]


def test_rendered_mouth_darkness_follows_the_opening(eight_clips):
    for frames, _, truth in eight_clips:
        opening = np.asarray(truth["mouth_opening"])
        boxes = np.asarray(truth["face_boxes"][0])
        centres = np.asarray(truth["mouth_centres"][0])
        areas = []
        for f, box, (cx, cy) in zip(frames, boxes, centres):
            half = 0.3 * (box[2] - box[0])
            x0, x1 = int(cx - half), int(cx + half)
            y0, y1 = int(cy - 0.6 * half), int(cy + 0.9 * half)
            roi = f[y0:y1, x0:x1].astype(np.float64)
            lum = roi @ np.array([0.299, 0.587, 0.114])
            # dark: under half the typical brightness around the mouth
            areas.append(np.count_nonzero(lum < 0.5 * np.median(lum)))
        r = np.corrcoef(areas, opening)[0, 1]
        assert r > 0.8, (truth["appearance_index"], r)


def test_faces_are_detected_in_every_look(eight_clips, detectors):
    for ms, det in detectors.items():
        found = inside = total = 0
        for frames, _, truth in eight_clips:
            h, w = frames[0].shape[:2]
            for f, box in zip(frames, truth["face_boxes"][0]):
                total += 1
                result = det.process(f).detections
                if not result:
                    continue
                found += 1
                b = result[0].location_data.relative_bounding_box
                cx, cy = (b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h
                inside += box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
        assert found >= 0.99 * total, (ms, found, total)
        assert inside == found, (ms, inside, found)


def test_first_eight_appearances_are_distinct(eight_clips):
    firsts = [frames[0].astype(np.int16) for frames, _, _ in eight_clips]
    for i in range(8):
        for j in range(i + 1, 8):
            diff = np.abs(firsts[i] - firsts[j]).mean()
            assert diff > 25, (i, j, diff)
    apps = [synth.appearance(i) for i in range(8)]
    assert len({a.background for a in apps}) >= 6
    tones = sorted(float(np.mean(a.skin_gain)) for a in apps)
    assert tones[-1] > 0.95 and tones[0] < 0.45  # pale to dark brown


def test_appearances_for_any_index():
    assert synth.appearance(1234) == synth.appearance(1234)
    assert synth.appearance(1234) != synth.appearance(1235)
    for i in range(8, 60):
        a = synth.appearance(i)
        assert 0.85 <= a.face_aspect <= 1.15 and 0.3 <= a.face_size <= 0.45
        assert a.background in synth.BACKGROUNDS
        assert all(0.0 <= c <= 1.0 for c in a.lip_colour)
    with pytest.raises(ConfigError):
        synth.appearance(-1)


def test_frame_geometry():
    app = synth.appearance(3)
    opening = np.linspace(0, 1, 50).astype(np.float32)
    width = np.full(50, 0.6, np.float32)
    frames = list(synth.render_frames(app, opening, width))
    assert all(f.shape == (320, 320, 3) and f.dtype == np.uint8 for f in frames)
    boxes, mouths = synth.face_geometry(app, 50)
    assert boxes.shape == (50, 4) and mouths.shape == (50, 2)
    widths = boxes[:, 2] - boxes[:, 0]
    assert widths.min() >= 88
    assert np.all((mouths[:, 0] > boxes[:, 0]) & (mouths[:, 0] < boxes[:, 2]))
    assert np.all((mouths[:, 1] > boxes[:, 1]) & (mouths[:, 1] < boxes[:, 3]))
    # head motion: small and smooth
    moves = np.abs(np.diff(mouths, axis=0)).max()
    assert 0 < moves < 2.0
    # a different frame size works and scales the face
    big = next(synth.render_frames(app, opening[:1], width[:1], frame_size=(480, 360)))
    assert big.shape == (360, 480, 3)
    with pytest.raises(ConfigError):
        next(synth.render_frames(app, opening, width, frame_size=(321, 320)))


def test_two_face_clips():
    for seed in (31, 32, 33):
        frames, audio, truth = synth.clip_content(seconds=4.0, faces=2, seed=seed)
        frames = list(frames)
        assert frames[0].shape == (320, 640, 3)
        assert truth["faces"] == 2 and truth["speaker"] in (0, 1)
        assert len(truth["face_boxes"]) == 2 and len(truth["mouth_centres"]) == 2
        assert len(set(truth["appearance_indices"])) == 2
        left, right = np.asarray(truth["face_boxes"][0]), np.asarray(truth["face_boxes"][1])
        assert np.all(left[:, 2] < right[:, 0])  # never overlap
        env = _envelope(audio, truth["num_frames"])
        tracks = [np.asarray(t) for t in truth["mouth_openings"]]
        assert all(t.std() > 0.1 for t in tracks)  # both mouths move
        spk = truth["speaker"]
        np.testing.assert_array_equal(tracks[spk], truth["mouth_opening"])
        corr = [np.corrcoef(env, t)[0, 1] for t in tracks]
        assert corr[spk] > corr[1 - spk] + 0.2, (seed, corr)


# ---------------------------------------------------------------------------------------------
# files


def test_make_clip_writes_files_that_read_back(tmp_path):
    truth = synth.make_clip(tmp_path, "one", seconds=2.0, offset_frames=3, seed=8)
    video = tmp_path / "videos" / "one.mp4"
    wav = tmp_path / "audios" / "one.wav"
    tjson = tmp_path / "truth" / "one.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audios", "truth", "videos"]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "one.json", "one.mp4", "one.wav"]
    assert json.loads(tjson.read_text()) == truth
    assert truth["num_frames"] == 50 and truth["fps"] == 25 and truth["sample_rate"] == 16000
    for key in ("name", "seconds", "offset_frames", "faces", "speaker", "appearance_index",
                "sentence_seed", "phones", "mouth_opening", "mouth_width", "face_boxes",
                "mouth_centres"):
        assert key in truth
    frames = list(media.iter_frames(video))
    assert len(frames) == truth["num_frames"]
    assert frames[0].shape == (320, 320, 3)
    audio = media.read_audio(video)
    assert abs(len(audio) - 2 * SAMPLE_RATE_HZ) <= 1024
    wav_audio = media.read_audio(wav)
    assert len(wav_audio) == 2 * SAMPLE_RATE_HZ
    _, expected, _ = synth.clip_content(seconds=2.0, offset_frames=3, seed=8)
    np.testing.assert_allclose(wav_audio, expected, atol=1.5 / 32767)
    # the decoded video still shows the mouth moving with the truth
    boxes = np.asarray(truth["face_boxes"][0])
    cx, cy = np.asarray(truth["mouth_centres"][0]).mean(0).astype(int)
    half = int(0.3 * (boxes[0, 2] - boxes[0, 0]))
    rois = [f[cy - half:cy + half, cx - half:cx + half].mean(-1) for f in frames]
    dark = [np.count_nonzero(r < 0.5 * np.median(r)) for r in rois]
    assert np.corrcoef(dark, truth["mouth_opening"])[0, 1] > 0.7


def test_same_seed_same_files_and_different_seed_differs(tmp_path):
    a = synth.make_clip(tmp_path / "a", "x", seconds=1.0, seed=5)
    b = synth.make_clip(tmp_path / "b", "x", seconds=1.0, seed=5)
    c = synth.make_clip(tmp_path / "c", "x", seconds=1.0, seed=6)
    assert a == b
    for sub in ("truth/x.json", "audios/x.wav"):
        assert (tmp_path / "a" / sub).read_bytes() == (tmp_path / "b" / sub).read_bytes()
        assert (tmp_path / "a" / sub).read_bytes() != (tmp_path / "c" / sub).read_bytes()
    assert a["mouth_opening"] != c["mouth_opening"]
    assert a["appearance_index"] != c["appearance_index"]


def test_make_dataset(tmp_path):
    calls = []
    truths = synth.make_dataset(tmp_path, 3, seconds=1.0, seed=0, offset_frames=[0, 2],
                                progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert [t["name"] for t in truths] == ["synth_0000", "synth_0001", "synth_0002"]
    assert [t["offset_frames"] for t in truths] == [0, 2, 0]
    assert len({t["appearance_index"] for t in truths}) == 3
    assert len({t["sentence_seed"] for t in truths}) == 3
    for t in truths:
        for sub, ext in (("videos", "mp4"), ("audios", "wav"), ("truth", "json")):
            assert (tmp_path / sub / f"{t['name']}.{ext}").is_file()
    cyc = synth.make_dataset(tmp_path / "cyc", 3, seconds=0.4, seed=1, prefix="held",
                             appearance_indices=[500, 501])
    assert [t["appearance_index"] for t in cyc] == [500, 501, 500]
    assert cyc[0]["name"] == "held_0000"
    assert cyc[0]["sentence_seed"] != cyc[2]["sentence_seed"]


def test_silence_clip(tmp_path):
    truth = synth.silence_clip(tmp_path, "quiet", seconds=1.0, appearance_index=2)
    assert all(v == 0.0 for v in truth["mouth_opening"])
    audio = media.read_audio(tmp_path / "audios" / "quiet.wav")
    assert np.sqrt(np.mean(audio ** 2)) < 1e-3


def test_bad_arguments_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError):
        synth.make_clip(tmp_path, "bad/name", seconds=1.0)
    with pytest.raises(ConfigError):
        synth.make_clip(tmp_path, "x", seconds=1.0, faces=3)
    with pytest.raises(ConfigError):
        synth.make_clip(tmp_path, "x", seconds=0.0)
    with pytest.raises(ConfigError):
        synth.make_clip(tmp_path, "x", seconds=1.0, frame_size=(320, 321))
    with pytest.raises(ConfigError):
        synth.Appearance(background="moon")
    assert not any(Path(tmp_path).rglob("*.mp4"))
