"""A formant voice: how the phones of :mod:`synclip.synth.phones` sound.

What is said (the phone inventory, sentences, segments) and how the mouth moves
(:func:`~synclip.synth.phones.mouth_track`) live in :mod:`synclip.synth.phones`.
One list of :class:`Segment` drives both the audio (:func:`synthesize`) and the mouth, so
the audio-visual correspondence of the synthetic data is exact by construction.

The voice is a classic source-filter synthesiser, vectorised with numpy/scipy:

* a glottal impulse train (sub-sample pulse placement, shimmer) at an f0 that drifts
  slowly, declines across each phrase and jitters, smoothed by a -12 dB/octave glottal
  low-pass, plus breath noise;
* scaled by a per-phone voicing envelope and passed through a cascade of three
  time-varying formant resonators (coefficients updated every 5 ms, state carried);
* lip radiation (+6 dB/octave), then band-limited noise for fricatives and plosive
  bursts, a -60 dB noise floor, and a fixed gain (no per-clip normalisation, so a pause
  stays near silent).

Formant targets are interpolated across consonants that have none of their own and
smoothed (about 30 ms transitions), which gives coarticulation for free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import signal

from ..audio import SAMPLE_RATE_HZ
from ..errors import InputError
# The control rate and time-grid helpers are shared with the mouth, so both follow one timeline.
from .phones import CONTROL_HZ, PAUSE_SYMBOL, PHONES, PLOSIVE, Segment, gauss, lookup, segment_index

_BURST_S = 0.012  # release burst length at the end of a plosive segment
_NOISE_FLOOR_RMS = 2e-4  # -74 dBFS: about -55 dB below the vowels
_VOICED_RMS = 0.12  # RMS of a steady voiced phone with voice_amp 1 at loudness 1 (peaks ~0.6)
_GLOTTAL_BW = 100.0
_BLOCK = 80  # samples per formant-coefficient update (5 ms at 16 kHz)


@dataclass(frozen=True)
class Speaker:
    """A voice: mean pitch, vocal-tract size (formant scale), breath noise, loudness."""

    f0_hz: float
    tract_scale: float
    breathiness: float
    loudness: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Speaker":
        f0 = float(rng.uniform(85.0, 260.0))
        # higher voices tend to come with shorter vocal tracts (higher formants)
        tract = 0.9 + 0.2 * (f0 - 85.0) / 175.0 + float(rng.uniform(-0.05, 0.05))
        return cls(f0_hz=round(f0, 2), tract_scale=round(float(np.clip(tract, 0.85, 1.15)), 4),
                   breathiness=round(float(rng.uniform(0.0, 0.35)), 4),
                   loudness=round(float(rng.uniform(0.7, 1.0)), 4))


# ---------------------------------------------------------------------------------------------
# control tracks


def _smooth_curve(rng: np.random.Generator, t: np.ndarray, freqs: tuple[float, float],
                  n: int = 3) -> np.ndarray:
    """A smooth random curve in about [-1, 1]: a sum of ``n`` slow sinusoids."""
    f = rng.uniform(freqs[0], freqs[1], n)
    ph = rng.uniform(0, 2 * np.pi, n)
    a = rng.uniform(0.5, 1.0, n)
    a /= a.sum()
    return (a[:, None] * np.sin(2 * np.pi * f[:, None] * t[None, :] + ph[:, None])).sum(0)


def _f0_track(segments: Sequence[Segment], speaker: Speaker, tc: np.ndarray,
              idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """f0 in Hz at the control times: drift, phrase declination, accents and jitter."""
    drift = 0.06 * _smooth_curve(rng, tc, (0.15, 0.9))
    # declination: from +8 % to -8 % across each phrase (a phrase ends at a pause)
    decl = np.zeros_like(tc)
    phrase_start = None
    bounds = []
    for s in segments:
        if s.symbol == PAUSE_SYMBOL:
            if phrase_start is not None:
                bounds.append((phrase_start, s.start_s))
                phrase_start = None
        elif phrase_start is None:
            phrase_start = s.start_s
    if phrase_start is not None:
        bounds.append((phrase_start, segments[-1].end_s))
    for a, b in bounds:
        m = (tc >= a - 0.05) & (tc < b + 0.05)
        decl[m] = 0.08 - 0.16 * np.clip((tc[m] - a) / max(b - a, 1e-3), 0, 1)
    # pitch accents: each vowel gets a random bump, smoothed
    accents = rng.uniform(-0.05, 0.07, len(segments))
    acc = lookup(segments, idx, accents, 0.0)
    acc = gauss(acc, 30.0)
    jitter = gauss(rng.standard_normal(len(tc)), 1.5) * 0.012
    return speaker.f0_hz * (1.0 + drift + decl + acc + jitter)


def _resonator_sos(freq: np.ndarray, bw: np.ndarray, sr: int) -> np.ndarray:
    """Klatt resonators (unity DC gain) as second-order sections, shape (..., 6)."""
    r = np.exp(-np.pi * bw / sr)
    c = -r * r
    b = 2 * r * np.cos(2 * np.pi * freq / sr)
    a = 1 - b - c
    z = np.zeros_like(a)
    return np.stack([a, z, z, np.ones_like(a), -b, -c], axis=-1)


def _voiced_rms(f0: np.ndarray, formants: np.ndarray, bws: np.ndarray, sr: int) -> np.ndarray:
    """RMS of the source pulse train (100 energy units per second) after the glottal tilt,
    the formant cascade and lip radiation, per row of ``formants`` (shape (B, 3)), computed
    from the filters' magnitude responses at the harmonics of ``f0`` (shape (B,))."""
    n_h = int(0.5 * sr / max(float(f0.min()), 20.0))
    h = np.arange(1, n_h + 1)
    f = f0[:, None] * h[None, :]  # (B, H)
    ok = f < 0.5 * sr
    w = 2 * np.pi * np.where(ok, f, 0.0) / sr
    z1 = np.exp(-1j * w)
    z2 = z1 * z1
    power = np.ones_like(w)
    for j in range(formants.shape[1] + 1):
        fr = np.zeros_like(f0) if j == 0 else formants[:, j - 1]
        bw = np.full_like(f0, _GLOTTAL_BW) if j == 0 else bws[:, j - 1]
        r = np.exp(-np.pi * bw / sr)
        c = -r * r
        b = 2 * r * np.cos(2 * np.pi * fr / sr)
        a = 1 - b - c
        power *= np.abs(a[:, None] / (1 - b[:, None] * z1 - c[:, None] * z2)) ** 2
    power *= (2 * np.sin(w / 2)) ** 2  # radiation
    # a pulse train of weight sqrt(100/f0) and period P = sr/f0 has 2 (w/P)^2 per harmonic
    per_harm = 2.0 * (100.0 / f0) * (f0 / sr) ** 2
    total = per_harm * np.where(ok, power, 0.0).sum(axis=1)
    return np.sqrt(np.maximum(total, 1e-20))


_GLOTTAL_SOS = _resonator_sos(np.array(0.0), np.array(_GLOTTAL_BW), SAMPLE_RATE_HZ)[None]


def _band_noise(rng: np.random.Generator, n: int, band: tuple[float, float], sr: int,
                ) -> np.ndarray:
    lo, hi = band
    hi = min(hi, 0.45 * sr)
    sos = signal.butter(3, [lo, hi], btype="bandpass", fs=sr, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n))
    return x / (np.sqrt(np.mean(x * x)) + 1e-12)


def synthesize(segments: Sequence[Segment], speaker: Speaker, seconds: float,
               sample_rate: int = SAMPLE_RATE_HZ, rng: np.random.Generator | None = None,
               time_shift_s: float = 0.0) -> np.ndarray:
    """Render ``segments`` with ``speaker``'s voice: float32 in [-1, 1], round(seconds*sr) long.

    Output sample ``n`` renders segment time ``n / sample_rate + time_shift_s`` (the shift is
    rounded to a whole sample).  The whole segment range is rendered on one fixed sample
    grid and then cut, so the same segments, speaker and rng state at two shifts give the
    same waveform moved by the difference.  Times outside every segment are pauses.
    ``rng`` (default: a fixed seed) draws intonation, jitter and noise.
    """
    sr = int(sample_rate)
    rng = np.random.default_rng(0) if rng is None else rng
    segments = sorted((s for s in segments if s.end_s > s.start_s), key=lambda s: s.start_s)
    n_out = int(round(float(seconds) * sr))
    shift = int(round(float(time_shift_s) * sr))
    if not segments:
        segments = [Segment(PAUSE_SYMBOL, shift / sr, (shift + n_out) / sr)]
    for s in segments:
        if s.symbol not in PHONES:
            raise InputError(f"unknown phone symbol {s.symbol!r}; known: {sorted(PHONES)}")
    lo = min(int(math.floor(segments[0].start_s * sr)), shift)
    hi = max(int(math.ceil(segments[-1].end_s * sr)), shift + n_out) + 1
    n = hi - lo
    t = (lo + np.arange(n)) / sr  # segment time of every rendered sample

    # control tracks at 1 kHz over the same range
    tc = np.arange(int(math.floor(t[0] * CONTROL_HZ)) - 1,
                   int(math.ceil(t[-1] * CONTROL_HZ)) + 2) / CONTROL_HZ
    idx = segment_index(segments, tc)
    phones = [s.phone for s in segments]
    scale = speaker.tract_scale

    # formants: own targets, interpolated through phones without any, ~30 ms transitions
    formants = np.empty((3, len(tc)))
    bws = np.empty((3, len(tc)))
    for j in range(3):
        vals = [p.formants[j] if p.formants else np.nan for p in phones]
        f = lookup(segments, idx, vals, np.nan)
        ok = ~np.isnan(f)
        if ok.any():
            f = np.interp(tc, tc[ok], f[ok])
        else:
            f = np.full_like(tc, PHONES["@"].formants[j])
        formants[j] = gauss(f, 12.0) * scale
        bws[j] = gauss(lookup(segments, idx, [p.bandwidths[j] for p in phones],
                                PHONES["@"].bandwidths[j]), 12.0)

    # voicing amplitude: smooth (about 20 ms) per-phone envelope
    av = lookup(segments, idx, [p.voice_amp for p in phones], 0.0)
    av = gauss(av, 7.0)
    av[av < 1e-4] = 0.0

    # fricative noise envelopes, one per band, and plosive release bursts
    noise_tracks: dict[tuple[float, float], np.ndarray] = {}
    for i, (s, p) in enumerate(zip(segments, phones)):
        if p.noise_band is None or p.noise_amp <= 0:
            continue
        tr = noise_tracks.setdefault(p.noise_band, np.zeros_like(tc))
        if p.kind == PLOSIVE:
            t0 = max(s.end_s - _BURST_S, s.start_s)
            m = (tc >= t0) & (tc < s.end_s + 0.01)
            tr[m] += p.noise_amp * np.exp(-(tc[m] - t0) / 0.006)
        else:
            tr[idx == i] += p.noise_amp
    for band, tr in noise_tracks.items():
        has_burst = any(p.kind == PLOSIVE and p.noise_band == band for p in phones)
        noise_tracks[band] = gauss(tr, 1.5 if has_burst else 6.0)

    f0c = _f0_track(segments, speaker, tc, idx, rng)

    def up(x: np.ndarray) -> np.ndarray:
        return np.interp(t, tc, x)

    f0 = up(f0c)
    av_s = up(av)

    # glottal impulse train with sub-sample pulse positions and shimmer; the pulse weight
    # keeps the source power at 100 pulse-energy units per second whatever the f0
    phase = np.cumsum(f0 / sr)
    k = np.floor(phase)
    pulses = np.nonzero(np.diff(k) > 0)[0] + 1
    frac = np.clip((phase[pulses] - k[pulses]) / (f0[pulses] / sr), 0.0, 1.0)
    weight = (1.0 + 0.05 * rng.standard_normal(len(pulses))) * np.sqrt(100.0 / f0[pulses])
    src = np.zeros(n)
    src[pulses] += weight * (1.0 - frac)
    src[np.maximum(pulses - 1, 0)] += weight * frac
    # glottal spectral tilt: a resonator at 0 Hz with 100 Hz bandwidth (-12 dB/octave)
    src = signal.sosfilt(_GLOTTAL_SOS, src) if sr == SAMPLE_RATE_HZ else signal.sosfilt(
        _resonator_sos(np.array(0.0), np.array(_GLOTTAL_BW), sr)[None], src)
    # breath noise, strongest in the open phase of each glottal cycle
    src += (speaker.breathiness * 3e-4 * rng.standard_normal(n)
            * (0.5 + 0.5 * np.cos(2 * np.pi * phase)))

    # cascade of 3 time-varying formant resonators, coefficients per 5 ms block
    n_blocks = -(-n // _BLOCK)
    tb = t[np.minimum(np.arange(n_blocks) * _BLOCK + _BLOCK // 2, n - 1)]
    fb = np.minimum(np.stack([np.interp(tb, tc, formants[j]) for j in range(3)], axis=1),
                    0.45 * sr)
    bb = np.stack([np.interp(tb, tc, bws[j]) for j in range(3)], axis=1)
    # level: the voicing envelope times the inverse of the RMS a unit pulse train would
    # have at this f0 through this filter, so that the output RMS follows voice_amp
    gain_b = _VOICED_RMS / _voiced_rms(np.interp(tb, tc, f0c), fb, bb, sr)
    src *= av_s * np.interp(np.arange(n), np.arange(n_blocks) * _BLOCK + _BLOCK // 2, gain_b)
    sos_all = _resonator_sos(fb, bb, sr)  # (blocks, 3, 6)
    voiced = np.empty(n)
    zi = np.zeros((3, 2))
    active = av_s != 0
    for b in range(n_blocks):
        a0, a1 = b * _BLOCK, min((b + 1) * _BLOCK, n)
        if not zi.any() and not active[a0:a1].any():
            voiced[a0:a1] = 0.0
            continue
        voiced[a0:a1], zi = signal.sosfilt(sos_all[b], src[a0:a1], zi=zi)
        if np.abs(zi).max() < 1e-9:
            zi[:] = 0.0
    # lip radiation: +6 dB/octave
    out = np.diff(voiced, prepend=0.0)

    for band, tr in noise_tracks.items():
        out += _band_noise(rng, n, band, sr) * up(tr) * _VOICED_RMS

    out *= speaker.loudness
    out += _NOISE_FLOOR_RMS * rng.standard_normal(n)
    start = shift - lo
    res = out[start:start + n_out]
    # soft knee above 0.8 keeps the rare loud peak inside [-1, 1] without hard clipping
    mag = np.abs(res)
    res = np.where(mag > 0.8, np.sign(res) * (0.8 + 0.2 * np.tanh((mag - 0.8) / 0.2)), res)
    return res.astype(np.float32)
