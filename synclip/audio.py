"""Audio features for lip sync: log-mel spectrogram, MFCC, and the index maths that ties
the 80 fps mel timeline to the 25 fps video timeline.

All features are computed in torch (CPU or GPU) from 16 kHz mono float audio in [-1, 1].
The filterbank and DCT matrices are built once in numpy and cached.

Timelines:
    video frame ``v`` covers ``[v / VIDEO_FPS, (v + 1) / VIDEO_FPS)`` seconds;
    mel frame ``m`` is centred on ``m * HOP_SAMPLES / SAMPLE_RATE_HZ`` seconds (``center=True``).
"""

from __future__ import annotations

import functools
from typing import TypeVar

import numpy as np
import torch

from .errors import DataError, InputError

# -- hard-coded audio parameters (the models are trained on exactly these) --
SAMPLE_RATE_HZ = 16000
VIDEO_FPS = 25
N_FFT = 800
HOP_SAMPLES = 200
WIN_SAMPLES = 800
N_MELS = 80
FMIN_HZ = 55.0
FMAX_HZ = 7600.0
N_MFCC = 13
SYNC_FRAMES = 5  # video frames per sync window
MIN_DB = -100.0  # floor of log_mel, dB re power 1.0
TOP_DB = 80.0  # dynamic range kept below the clip's peak
SILENCE_PEAK = 1e-4  # audio whose peak stays below this (-80 dBFS) is silence: nothing to score or dub
MFCC_SCALE = 200.0  # MFCCs are unbounded; / MFCC_SCALE + 0.5 keeps typical values near [0, 1] with no clip stats
FEATURE_BINS = {"mel": N_MELS, "mfcc": N_MFCC}  # model.audio_feature -> F, the bins per audio frame

# -- derived; never type these by hand --
SAMPLES_PER_FRAME = SAMPLE_RATE_HZ // VIDEO_FPS  # 640 audio samples per video frame
N_FREQS = N_FFT // 2 + 1  # 401 one-sided STFT bins
MEL_FPS = SAMPLE_RATE_HZ / HOP_SAMPLES  # 80.0 mel frames per second
MEL_PER_FRAME = MEL_FPS / VIDEO_FPS  # 3.2 mel frames per video frame
MEL_WINDOW = round(SYNC_FRAMES * MEL_PER_FRAME)  # 16 mel frames per sync window
AMIN_POWER = 10.0 ** (MIN_DB / 10.0)  # 1e-10: the power that maps to MIN_DB
QUIET_PEAK_DB = MIN_DB + TOP_DB  # -20 dB: the least peak normalize_mel assumes, so silence normalises to 0

# Slaney mel scale: linear below 1 kHz, logarithmic above.
_SLANEY_F_SP_HZ = 200.0 / 3  # Hz per mel on the linear part
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP_HZ  # 15 mel
_SLANEY_LOGSTEP = np.log(6.4) / 27.0  # log-Hz per mel on the log part

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _SLANEY_F_SP_HZ
    # np.maximum keeps log() away from 0 Hz; those entries take the linear branch anyway.
    logarithmic = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(hz, 1e-12) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(hz >= _SLANEY_MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _SLANEY_F_SP_HZ
    logarithmic = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mel - _SLANEY_MIN_LOG_MEL))
    return np.where(mel >= _SLANEY_MIN_LOG_MEL, logarithmic, linear)


@functools.lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """Triangular mel filters, Slaney mel scale with Slaney area normalisation.

    Same definition as ``librosa.filters.mel(htk=False, norm="slaney")``.

    Returns:
        float32 array (N_MELS, N_FFT // 2 + 1); row ``i`` weights the STFT power bins.
        Cached: treat it as read-only.
    """
    fft_hz = np.linspace(0.0, SAMPLE_RATE_HZ / 2, N_FREQS)
    # N_MELS + 2 edges: filter i rises from edge i, peaks at i + 1, falls to i + 2.
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(FMIN_HZ), hz_to_mel(FMAX_HZ), N_MELS + 2))
    widths_hz = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths_hz[:-1, None]
    falling = ramps[2:] / widths_hz[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney norm: each triangle has unit area in Hz, so wide high filters are not louder.
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    fb = weights.astype(np.float32)
    fb.setflags(write=False)
    return fb


@functools.lru_cache(maxsize=4)
def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II, (n_out, n_in) float32, as ``scipy.fft.dct(type=2, norm="ortho")``."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)  # row 0 scaled by sqrt(1/N) so the transform is orthonormal
    out = basis.astype(np.float32)
    out.setflags(write=False)
    return out


def _as_audio_tensor(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(audio)
    if x.ndim != 1:
        raise InputError(f"audio must be 1-D (samples,), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise InputError("audio is empty")
    return x.to(torch.float32)


@functools.lru_cache(maxsize=8)
def _hann_window(device: torch.device) -> torch.Tensor:
    # periodic=True is librosa's get_window("hann", fftbins=True).
    return torch.hann_window(WIN_SAMPLES, periodic=True, dtype=torch.float64, device=device)


MEL_BLOCK_FRAMES = 4800  # 60 s of mel frames per STFT block: long audio never holds a whole-file STFT


def mel_power(audio: np.ndarray | torch.Tensor, block_frames: int = MEL_BLOCK_FRAMES) -> torch.Tensor:
    """Power mel spectrogram: |STFT|^2 of a Hann-windowed 800-sample frame, through the filterbank.

    Args:
        audio: (samples,) float in [-1, 1] at SAMPLE_RATE_HZ; numpy array or tensor (any device).
        block_frames: frames per STFT block; each frame depends only on its own 800 samples, so blocks give
            the same result as one whole-file STFT while memory stays bounded (a 10-minute track's float64
            STFT alone would be ~300 MB).

    Returns:
        float32 tensor (M, N_MELS) on the input's device, M = num_mel_frames(samples);
        units: power re full scale 1.0 (sum of squared STFT magnitudes, unnormalised FFT).
    """
    x = _as_audio_tensor(audio)
    # center=True with zero padding, done by hand so the frames can be cut into blocks: frame m covers
    # padded[m * HOP : m * HOP + N_FFT]. librosa >= 0.10 pads with zeros (pad_mode="constant") by default;
    # matching it keeps the edge frames comparable with librosa's.
    padded = torch.nn.functional.pad(x, (N_FFT // 2, N_FFT // 2))
    total = num_mel_frames(len(x))
    out = []
    for m0 in range(0, total, block_frames):
        m1 = min(total, m0 + block_frames)
        out.append(padded_mel_power(padded[m0 * HOP_SAMPLES: (m1 - 1) * HOP_SAMPLES + N_FFT]))
    return torch.cat(out).contiguous()


def padded_mel_power(seg: torch.Tensor) -> torch.Tensor:
    """Power mel frames of a piece of centre-padded audio: frame k covers seg[k * HOP : k * HOP + N_FFT].

    The one STFT step of :func:`mel_power`; streaming calls it on each new piece, so its frames are those of
    the whole-file transform. seg: (samples,) float32 with samples >= N_FFT -> float32 (frames, N_MELS).
    """
    # torch.tensor copies: the cached filterbank is read-only and torch refuses to alias it.
    fb = torch.tensor(mel_filterbank(), dtype=torch.float64, device=seg.device)
    # The STFT runs in float64 and is cast at the end: float32 FFT rounding is ~1e-7 of the
    # frame's energy, which is a large relative error on quiet bins next to loud ones.
    spec = torch.stft(seg.to(torch.float64), n_fft=N_FFT, hop_length=HOP_SAMPLES, win_length=WIN_SAMPLES,
                      window=_hann_window(seg.device), center=False, return_complex=True)  # (N_FREQS, frames)
    power = spec.real.square() + spec.imag.square()
    return (fb @ power).T.to(torch.float32)


def power_to_log_mel(power: torch.Tensor) -> torch.Tensor:
    """Power mel frames -> log-mel in dB re 1.0, floored at MIN_DB (what :func:`log_mel` returns)."""
    return torch.clamp(_power_to_db(power), min=MIN_DB)


def _power_to_db(power: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(torch.clamp(power, min=AMIN_POWER))


def log_mel(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Log-power mel spectrogram in dB re 1.0, floored at MIN_DB.

    Returns:
        float32 tensor (M, N_MELS), values in [MIN_DB, ~+60] dB.
    """
    return power_to_log_mel(mel_power(audio))


def normalize_mel(db: ArrayOrTensor) -> ArrayOrTensor:
    """Per-clip normalisation for the models: the clip's peak maps to 1, peak - TOP_DB to 0.

    The peak counts as at least QUIET_PEAK_DB, so silence stays 0 (quiet): without that floor an all-silent
    track (digital zeros, as text-to-speech writes) has its -100 dB "peak" mapped to 1 and reads as loud
    speech, and the generator opened the mouth wide on it. Speech peaks far above the floor (+11..+23 dB on
    the synthetic and shared clips; -17 dB even 40 dB quieter), so its features do not change.

    Args:
        db: log-mel in dB, any shape (normally (M, N_MELS)); numpy array or tensor.

    Returns:
        same type and shape, values in [0, 1].
    """
    if isinstance(db, torch.Tensor):
        rel = torch.clamp(db - torch.clamp(db.max(), min=QUIET_PEAK_DB), min=-TOP_DB)
    else:
        rel = np.maximum(db - max(float(db.max()), QUIET_PEAK_DB), -TOP_DB)
    return rel / TOP_DB + 1.0


def mfcc(audio: np.ndarray | torch.Tensor, n_mfcc: int = N_MFCC) -> torch.Tensor:
    """Mel-frequency cepstral coefficients, as ``librosa.feature.mfcc`` with our STFT settings.

    The dB step is ``librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=TOP_DB)``: note the
    top_db floor is relative to the loudest bin of the whole input, so the MFCCs of a slice
    differ from the same rows of a whole-clip MFCC where the slice is quieter.

    Returns:
        float32 tensor (M, n_mfcc); row m is the orthonormal DCT-II of mel frame m in dB.
    """
    if not 1 <= n_mfcc <= N_MELS:
        raise InputError(f"n_mfcc must be in 1..{N_MELS}, got {n_mfcc}")
    db = _power_to_db(mel_power(audio))
    db = torch.clamp(db, min=float(db.max()) - TOP_DB)
    dct = torch.tensor(_dct_matrix(n_mfcc, N_MELS), device=db.device)
    return db @ dct.T


# -- index maths: 25 fps video timeline vs 80 fps mel timeline --


def num_mel_frames(num_samples: int) -> int:
    """Mel frames for ``num_samples`` audio samples (center=True STFT): 1 + samples // hop."""
    return 1 + int(num_samples) // HOP_SAMPLES


IndexLike = TypeVar("IndexLike", int, np.ndarray, torch.Tensor)


def mel_start(frame: IndexLike) -> IndexLike:
    """First mel index of the sync window whose first video frame is ``frame`` (an int, or an integer array or
    tensor of frames, giving the same type back).

    Mel frame m is centred on time m / MEL_FPS s (m / 80); video frame v covers
    [v / 25, (v + 1) / 25) s. The window starts at the mel frame nearest to v / 25 s,
    i.e. round(v * MEL_PER_FRAME) (3.2 v never lies halfway, so rounding has no ties).
    """
    if isinstance(frame, torch.Tensor):
        return torch.round(frame * MEL_PER_FRAME).long()
    if isinstance(frame, np.ndarray):
        return np.round(frame * MEL_PER_FRAME).astype(np.int64)
    return int(round(frame * MEL_PER_FRAME))


def mel_window(mel: ArrayOrTensor, frame: int) -> ArrayOrTensor:
    """The MEL_WINDOW mel rows for the sync window starting at video frame ``frame``.

    Where the window runs past either end of ``mel``, the edge row is repeated, so a clip's
    first and last video frames still get a full-size window (the models need fixed input).

    Args:
        mel: (M, N_MELS) numpy array or tensor; M >= 1.

    Returns:
        same type, (MEL_WINDOW, N_MELS); a copy (fancy indexing), not a view.
    """
    num_mel = mel.shape[0]
    if num_mel == 0:
        raise InputError("mel has no frames")
    start = mel_start(frame)
    if isinstance(mel, torch.Tensor):
        idx = torch.arange(start, start + MEL_WINDOW, device=mel.device).clamp(0, num_mel - 1)
    else:
        idx = np.clip(np.arange(start, start + MEL_WINDOW), 0, num_mel - 1)
    return mel[idx]


def windows_at(feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Audio windows of the sync windows starting at each of ``frames`` (N,) int: (N, MEL_WINDOW, F).

    Rows past either edge of ``feats`` (M, F) repeat the edge row, as in :func:`mel_window`.
    """
    rows = mel_start(frames)[:, None] + torch.arange(MEL_WINDOW)
    return feats[rows.clamp(0, len(feats) - 1)]


def window_feats(feats: torch.Tensor, first_frame: int | torch.Tensor, count: int) -> torch.Tensor:
    """Audio windows of ``count`` consecutive sync windows from ``first_frame``: (count, MEL_WINDOW, F)."""
    return windows_at(feats, torch.arange(count) + first_frame)


def centred_windows(feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """The audio window centred on each video frame (frames v-2 .. v+2): frames (N,) -> (N, MEL_WINDOW, F).
    The generator draws frame v from it."""
    return windows_at(feats, frames - SYNC_FRAMES // 2)


def num_windows(num_frames: int, num_mel: int) -> int:
    """How many sync windows, with first frames 0, 1, ..., fit inside both timelines.

    Window f fits when f + SYNC_FRAMES <= num_frames and mel_start(f) + MEL_WINDOW <= num_mel.
    """
    n = max(0, num_frames - SYNC_FRAMES + 1)
    # Upper bound from the mel side, then step down: cheap and exact despite the rounding.
    n = min(n, int((num_mel - MEL_WINDOW) / MEL_PER_FRAME) + 2)
    while n > 0 and mel_start(n - 1) + MEL_WINDOW > num_mel:
        n -= 1
    return max(n, 0)


def frames_to_samples(num_frames: int) -> int:
    """Audio samples spanned by ``num_frames`` video frames (640 each)."""
    return int(num_frames) * SAMPLES_PER_FRAME


def samples_to_frames(num_samples: int) -> int:
    """Whole video frames covered by ``num_samples`` audio samples (floor)."""
    return int(num_samples) // SAMPLES_PER_FRAME


def fit_to_frames(wav: np.ndarray, num_frames: int) -> np.ndarray:
    """Audio cut, or padded with silence at the end, to exactly ``num_frames`` video frames (640 samples each)."""
    want = frames_to_samples(num_frames)
    return np.pad(wav, (0, max(0, want - len(wav))))[:want]


def is_silent(wav: np.ndarray) -> bool:
    """True when no sample reaches SILENCE_PEAK (empty audio counts as silent)."""
    return bool(np.abs(wav).max(initial=0.0) < SILENCE_PEAK)


# -- the models' input features --


def feature_bins(kind: str) -> int:
    """F for model.audio_feature ``kind`` (mel: 80, mfcc: 13)."""
    if kind not in FEATURE_BINS:
        raise InputError(f"unknown audio feature {kind!r}", fix=f"use one of {', '.join(FEATURE_BINS)}")
    return FEATURE_BINS[kind]


def model_features(db_mel: np.ndarray | None, mfcc_coeffs: np.ndarray | None, kind: str) -> torch.Tensor:
    """Stored features of a clip (log-mel in dB, MFCC) -> the models' (M, F) float32 input of ``kind``:
    normalised log-mel in [0, 1], or MFCCs scaled by MFCC_SCALE (clipped to [-1, 2])."""
    feature_bins(kind)
    if kind == "mel":
        return torch.from_numpy(np.asarray(normalize_mel(db_mel), dtype=np.float32))
    if mfcc_coeffs is None:
        raise DataError("MFCC features are missing", fix="run `synclip prepare --force`")
    return torch.from_numpy(np.clip(mfcc_coeffs / MFCC_SCALE + 0.5, -1.0, 2.0).astype(np.float32))


def features_for(wav: np.ndarray, kind: str) -> torch.Tensor:
    """16 kHz audio -> the models' (M, F) input features of ``kind`` (mel or mfcc)."""
    db = log_mel(wav)
    return features_at_peak(db, kind, float(db.max()))


def features_at_peak(db: torch.Tensor, kind: str, peak_db: float) -> torch.Tensor:
    """Log-mel rows in dB (any leading shape, N_MELS last) -> the models' features of ``kind``, scaled to a
    given loudest level ``peak_db``. Offline that is the clip's peak (:func:`features_for`); a live stream,
    which cannot see its future, passes the loudest level heard so far. Each row depends only on itself and
    the peak, so rows can be converted in any grouping with the same result.

    mel: as :func:`normalize_mel`; mfcc: as :func:`mfcc` (floor at peak - TOP_DB, DCT), scaled as
    :func:`model_features`.
    """
    feature_bins(kind)
    if kind == "mel":
        return torch.clamp(db - max(peak_db, QUIET_PEAK_DB), min=-TOP_DB) / TOP_DB + 1.0
    dct = torch.tensor(_dct_matrix(N_MFCC, N_MELS), device=db.device)
    coeffs = torch.clamp(db, min=peak_db - TOP_DB) @ dct.T
    return torch.clamp(coeffs / MFCC_SCALE + 0.5, -1.0, 2.0)
