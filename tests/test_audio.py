"""Tests for synclip.audio: features against librosa, and the video/mel index maths."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from synclip import audio as A

LIBROSA_KW = dict(
    sr=A.SAMPLE_RATE_HZ,
    n_fft=A.N_FFT,
    hop_length=A.HOP_SAMPLES,
    win_length=A.WIN_SAMPLES,
    n_mels=A.N_MELS,
    fmin=A.FMIN_HZ,
    fmax=A.FMAX_HZ,
)


@pytest.fixture(scope="module")
def speechlike() -> np.ndarray:
    """3.01 s: two tones plus noise, a near-silent stretch, and digital silence at the end."""
    rng = np.random.default_rng(0)
    t = np.arange(int(3.01 * A.SAMPLE_RATE_HZ)) / A.SAMPLE_RATE_HZ
    y = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3100 * t) + 0.05 * rng.standard_normal(t.size)
    y[4000:12000] *= 1e-3
    y[-3000:] = 0.0
    return y.astype(np.float32)


def test_constants_are_derived() -> None:
    assert A.SAMPLES_PER_FRAME == 640 and A.MEL_FPS == 80.0 and A.MEL_PER_FRAME == 3.2
    assert A.MEL_WINDOW == 16 and A.N_FREQS == 401


def test_filterbank_matches_librosa() -> None:
    fb = A.mel_filterbank()
    ref = librosa.filters.mel(sr=A.SAMPLE_RATE_HZ, n_fft=A.N_FFT, n_mels=A.N_MELS, fmin=A.FMIN_HZ, fmax=A.FMAX_HZ)
    assert fb.shape == (80, 401) and fb.dtype == np.float32
    # Measured: max abs diff 1.9e-9 on weights up to 0.027 (float32 rounding).
    np.testing.assert_allclose(fb, ref, rtol=1e-5, atol=1e-8)
    assert A.mel_filterbank() is fb  # cached


def test_mel_power_and_log_mel_match_librosa(speechlike: np.ndarray) -> None:
    ref = librosa.feature.melspectrogram(y=speechlike, power=2.0, **LIBROSA_KW).T
    power = A.mel_power(speechlike).numpy()
    assert power.shape == ref.shape == (A.num_mel_frames(speechlike.size), A.N_MELS)
    big = ref > 1e-6
    # Measured 3.9e-7 (librosa's own float32 STFT is the noisier side; ours runs in float64).
    assert (np.abs(power - ref)[big] / ref[big]).max() < 1e-5
    db_ref = np.maximum(10 * np.log10(np.maximum(ref, 1e-10)), A.MIN_DB)
    db = A.log_mel(speechlike).numpy()
    assert np.abs(db - db_ref).max() < 1e-3  # measured 1.5e-5 dB
    assert db.min() == A.MIN_DB  # digital silence hits the floor
    # A tensor input gives the same result as the numpy array.
    torch.testing.assert_close(A.log_mel(torch.from_numpy(speechlike)), torch.from_numpy(db))


def test_mfcc_matches_librosa(speechlike: np.ndarray) -> None:
    ref = librosa.feature.mfcc(y=speechlike, n_mfcc=A.N_MFCC, **LIBROSA_KW).T
    got = A.mfcc(speechlike).numpy()
    assert got.shape == ref.shape == (A.num_mel_frames(speechlike.size), 13)
    # Measured 1.2e-4 on coefficients up to 538 (float32 dB summed over 80 bands).
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-3)
    assert A.mfcc(speechlike, n_mfcc=20).shape == (ref.shape[0], 20)


@pytest.mark.filterwarnings("ignore:n_fft=800 is too large")  # librosa warns on short input; fine here
@pytest.mark.parametrize("num_samples", [1, 199, 200, 201, 640, 16000, 16123])
def test_frame_counts(num_samples: int) -> None:
    y = np.zeros(num_samples, np.float32)
    expected = librosa.feature.melspectrogram(y=y, **LIBROSA_KW).shape[1]
    assert A.num_mel_frames(num_samples) == expected == 1 + num_samples // 200
    assert A.log_mel(y).shape == (expected, A.N_MELS)


def test_tone_peaks_in_its_mel_band() -> None:
    t = np.arange(A.SAMPLE_RATE_HZ) / A.SAMPLE_RATE_HZ
    db = A.log_mel(0.5 * np.sin(2 * np.pi * 440.0 * t).astype(np.float32))
    centres_hz = librosa.mel_frequencies(n_mels=A.N_MELS + 2, fmin=A.FMIN_HZ, fmax=A.FMAX_HZ)[1:-1]
    band = int(db[5:-5].mean(0).argmax())
    assert band == int(np.abs(centres_hz - 440.0).argmin())
    lower, upper = librosa.mel_frequencies(n_mels=A.N_MELS + 2, fmin=A.FMIN_HZ, fmax=A.FMAX_HZ)[[band, band + 2]]
    assert lower < 440.0 < upper


def test_normalize_mel() -> None:
    db = np.array([[-100.0, -50.0], [-10.0, 5.0]], np.float32)
    out = A.normalize_mel(db)
    np.testing.assert_allclose(out, [[0.0, 0.3125], [0.8125, 1.0]], atol=1e-6)  # peak 5 dB -> 1, -75 dB -> 0
    assert isinstance(out, np.ndarray)
    torch.testing.assert_close(A.normalize_mel(torch.from_numpy(db)), torch.from_numpy(out))


def test_silence_normalises_to_quiet_not_loud() -> None:
    silence = A.log_mel(np.zeros(A.SAMPLE_RATE_HZ, np.float32))
    assert float(silence.max()) == A.MIN_DB
    assert float(A.normalize_mel(silence).max()) == 0.0  # not 1.0: the floor of every speech clip
    speech = A.log_mel(np.sin(np.arange(A.SAMPLE_RATE_HZ) * 0.2).astype(np.float32) * 0.01)  # -40 dBFS tone
    assert float(speech.max()) > A.QUIET_PEAK_DB and float(A.normalize_mel(speech).max()) == 1.0


def test_mel_start() -> None:
    # frame v starts at v/25 s = mel 3.2 v; nearest mel frame.
    assert [A.mel_start(v) for v in range(7)] == [0, 3, 6, 10, 13, 16, 19]
    assert A.mel_start(5 * 100) == 1600  # whole seconds land exactly


@pytest.mark.parametrize("as_tensor", [False, True])
def test_mel_window_edges(as_tensor: bool) -> None:
    num_frames = 50
    num_mel = A.num_mel_frames(A.frames_to_samples(num_frames))  # 161
    mel = np.arange(num_mel * A.N_MELS, dtype=np.float32).reshape(num_mel, A.N_MELS)
    src = torch.from_numpy(mel) if as_tensor else mel

    def window(frame: int) -> np.ndarray:
        out = A.mel_window(src, frame)
        assert type(out) is type(src) and tuple(out.shape) == (A.MEL_WINDOW, A.N_MELS)
        return out.numpy() if as_tensor else out

    np.testing.assert_array_equal(window(0), mel[:16])  # first window
    last = A.num_windows(num_frames, num_mel) - 1
    assert last == num_frames - A.SYNC_FRAMES
    np.testing.assert_array_equal(window(last), mel[A.mel_start(last) : A.mel_start(last) + 16])
    # Before the start: edge row repeated (mel_start(-1) = -3).
    np.testing.assert_array_equal(window(-1), np.concatenate([mel[[0, 0, 0]], mel[:13]]))
    # Past the end: the last frames still get 16 rows, the overhang repeats the final row.
    start = A.mel_start(num_frames - 1)  # 157: rows 157..160 exist, 12 padded
    tail = window(num_frames - 1)
    np.testing.assert_array_equal(tail[:4], mel[start:])
    np.testing.assert_array_equal(tail[4:], np.repeat(mel[-1:], 12, axis=0))


def test_num_windows_matches_definition() -> None:
    for num_frames in range(0, 40):
        for num_mel in range(0, 140):
            brute = 0
            while brute + A.SYNC_FRAMES <= num_frames and A.mel_start(brute) + A.MEL_WINDOW <= num_mel:
                brute += 1
            assert A.num_windows(num_frames, num_mel) == brute, (num_frames, num_mel)
    # A clip whose audio is exactly as long as its video: every video window fits.
    assert A.num_windows(250, A.num_mel_frames(A.frames_to_samples(250))) == 246


def test_sample_frame_conversions() -> None:
    assert A.frames_to_samples(25) == 16000
    assert A.samples_to_frames(16000) == 25 and A.samples_to_frames(16639) == 25 and A.samples_to_frames(639) == 0


def test_mel_power_in_blocks_equals_one_stft():
    rng = np.random.default_rng(5)
    wav = (0.3 * rng.standard_normal(16000 * 3 + 123)).astype(np.float32)
    whole = A.mel_power(wav, block_frames=10**9)
    blocks = A.mel_power(wav, block_frames=37)
    assert blocks.shape == whole.shape == (A.num_mel_frames(len(wav)), A.N_MELS)
    assert torch.allclose(blocks, whole, rtol=1e-6, atol=1e-9)
