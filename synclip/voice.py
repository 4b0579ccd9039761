"""Phonemes, random sentences, a formant voice, and the mouth shapes that go with them.

One list of :class:`Segment` drives both the audio (:func:`synthesize`) and the mouth
(:func:`mouth_track`), so the audio-visual correspondence of the synthetic data is exact
by construction: whatever phone sounds at segment time ``t`` is also what the mouth
shows at segment time ``t``.

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
from scipy import ndimage, signal

from .audio import SAMPLE_RATE_HZ, VIDEO_FPS

VOWEL, NASAL, PLOSIVE, FRICATIVE, APPROXIMANT, PAUSE = (
    "vowel", "nasal", "plosive", "fricative", "approximant", "pause")

PAUSE_SYMBOL = "sil"


@dataclass(frozen=True)
class Phone:
    """One phoneme: how it sounds and how the mouth looks while it sounds.

    ``formants`` (F1, F2, F3 in Hz, for a tract_scale of 1) is None for sounds without a
    vocal-tract resonance of their own (voiceless stops and fricatives, pause): the
    synthesiser interpolates the neighbours' formants through them.  ``noise_band`` is the
    (low, high) Hz band of frication or of the release burst of a plosive.  ``voice_amp``
    and ``noise_amp`` are relative loudness (an open 'a' is 1.0).  ``opening`` and
    ``width`` are mouth targets in [0, 1] (0 opening: lips closed).  ``duration_s`` is the
    (min, max) duration at a normal speaking rate.
    """

    symbol: str
    kind: str
    formants: tuple[float, float, float] | None
    noise_band: tuple[float, float] | None
    voiced: bool
    opening: float
    width: float
    duration_s: tuple[float, float]
    voice_amp: float = 0.0
    noise_amp: float = 0.0
    bandwidths: tuple[float, float, float] = (80.0, 100.0, 150.0)


def _phones(*phones: Phone) -> dict[str, Phone]:
    return {p.symbol: p for p in phones}


#: The inventory.  Vowel formants are textbook adult averages; tract_scale scales them.
PHONES: dict[str, Phone] = _phones(
    # vowels: distinct formants and distinct mouth shapes; 'a' loudest, 'i'/'u' weakest
    Phone("a", VOWEL, (730.0, 1250.0, 2550.0), None, True, 1.00, 0.75, (0.09, 0.16), 1.00),
    Phone("e", VOWEL, (480.0, 1900.0, 2550.0), None, True, 0.55, 0.90, (0.08, 0.15), 0.85),
    Phone("i", VOWEL, (290.0, 2250.0, 3000.0), None, True, 0.30, 1.00, (0.08, 0.14), 0.70),
    Phone("o", VOWEL, (500.0, 900.0, 2450.0), None, True, 0.65, 0.45, (0.09, 0.16), 0.85),
    Phone("u", VOWEL, (320.0, 780.0, 2300.0), None, True, 0.30, 0.30, (0.08, 0.14), 0.65),
    Phone("@", VOWEL, (500.0, 1450.0, 2500.0), None, True, 0.40, 0.60, (0.05, 0.09), 0.55),
    # nasals: low weak murmur; 'm' with closed lips
    Phone("m", NASAL, (250.0, 1100.0, 2300.0), None, True, 0.00, 0.60, (0.06, 0.10), 0.22,
          bandwidths=(100.0, 250.0, 300.0)),
    Phone("n", NASAL, (250.0, 1650.0, 2600.0), None, True, 0.30, 0.65, (0.05, 0.09), 0.22,
          bandwidths=(100.0, 250.0, 300.0)),
    # plosives: closure (silent, or a weak voice bar if voiced) then a short burst
    Phone("p", PLOSIVE, None, (400.0, 2500.0), False, 0.00, 0.60, (0.07, 0.11), 0.0, 0.50),
    Phone("b", PLOSIVE, None, (400.0, 2500.0), True, 0.00, 0.60, (0.06, 0.10), 0.06, 0.30),
    Phone("t", PLOSIVE, None, (3000.0, 7000.0), False, 0.25, 0.70, (0.06, 0.10), 0.0, 0.60),
    Phone("d", PLOSIVE, None, (3000.0, 7000.0), True, 0.25, 0.70, (0.05, 0.09), 0.06, 0.35),
    Phone("k", PLOSIVE, None, (1500.0, 3500.0), False, 0.35, 0.60, (0.06, 0.10), 0.0, 0.50),
    Phone("g", PLOSIVE, None, (1500.0, 3500.0), True, 0.35, 0.60, (0.05, 0.09), 0.06, 0.30),
    # fricatives: band noise; f/v broad and weak, s high, sh lower; voiced ones add voicing
    Phone("f", FRICATIVE, None, (1200.0, 7500.0), False, 0.10, 0.60, (0.07, 0.12), 0.0, 0.07),
    Phone("v", FRICATIVE, (300.0, 1300.0, 2400.0), (1200.0, 7500.0), True, 0.10, 0.60,
          (0.05, 0.09), 0.20, 0.05),
    Phone("s", FRICATIVE, None, (4000.0, 7500.0), False, 0.20, 0.80, (0.08, 0.13), 0.0, 0.30),
    Phone("z", FRICATIVE, (300.0, 1600.0, 2600.0), (4000.0, 7500.0), True, 0.20, 0.80,
          (0.06, 0.10), 0.20, 0.18),
    Phone("sh", FRICATIVE, None, (2000.0, 4000.0), False, 0.20, 0.50, (0.08, 0.13), 0.0, 0.30),
    # approximants
    Phone("l", APPROXIMANT, (380.0, 1100.0, 2650.0), None, True, 0.35, 0.65, (0.05, 0.08), 0.45),
    Phone("w", APPROXIMANT, (300.0, 650.0, 2200.0), None, True, 0.20, 0.30, (0.05, 0.08), 0.40),
    # pause: silence, closed relaxed mouth
    Phone(PAUSE_SYMBOL, PAUSE, None, None, False, 0.00, 0.60, (0.15, 0.60), 0.0),
)

VOWELS = tuple(s for s, p in PHONES.items() if p.kind == VOWEL and s != "@")
#: Symbols whose mouth is fully closed (opening target 0).
CLOSED_MOUTH = frozenset(s for s, p in PHONES.items() if p.opening == 0.0)

_ONSETS = ("p", "b", "m", "t", "d", "k", "g", "n", "f", "v", "s", "z", "sh", "l", "w")
_ONSET_WEIGHTS = (10, 9, 10, 8, 6, 6, 4, 7, 5, 3, 7, 3, 4, 6, 4)
_CODAS = ("m", "n", "p", "t", "k", "s", "l")
_CODA_WEIGHTS = (10, 8, 6, 7, 5, 7, 5)
_VOWEL_WEIGHTS = {"a": 9, "e": 6, "i": 6, "o": 6, "u": 5}
_BURST_S = 0.012  # release burst length at the end of a plosive segment
_NOISE_FLOOR_RMS = 2e-4  # -74 dBFS: about -55 dB below the vowels
_VOICED_RMS = 0.12  # RMS of a steady voiced phone with voice_amp 1 at loudness 1 (peaks ~0.6)
_GLOTTAL_BW = 100.0
_CONTROL_HZ = 1000
_BLOCK = 80  # samples per formant-coefficient update (5 ms at 16 kHz)


@dataclass
class Segment:
    """A phone (``symbol``, a key of :data:`PHONES`) from ``start_s`` to ``end_s`` seconds."""

    symbol: str
    start_s: float
    end_s: float

    @property
    def phone(self) -> Phone:
        return PHONES[self.symbol]

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


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


def _ms(x: float) -> float:
    """Round a time to the millisecond, so JSON with 4 decimals is exact."""
    return round(float(x), 3)


def _duration(rng: np.random.Generator, symbol: str, rate: float) -> float:
    lo, hi = PHONES[symbol].duration_s
    return float(rng.uniform(lo, hi)) / rate


def _word(rng: np.random.Generator, rate: float) -> list[tuple[str, float]]:
    n_syll = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    onset_p = np.asarray(_ONSET_WEIGHTS, float) / sum(_ONSET_WEIGHTS)
    coda_p = np.asarray(_CODA_WEIGHTS, float) / sum(_CODA_WEIGHTS)
    vowels = tuple(_VOWEL_WEIGHTS)
    vowel_p = np.asarray([_VOWEL_WEIGHTS[v] for v in vowels], float)
    vowel_p /= vowel_p.sum()
    phones: list[tuple[str, float]] = []
    for k in range(n_syll):
        phones.append((str(rng.choice(_ONSETS, p=onset_p)), 0.0))
        # an unstressed syllable of a long word sometimes reduces to schwa
        vowel = "@" if (n_syll > 1 and k == n_syll - 1 and rng.random() < 0.2) else str(
            rng.choice(vowels, p=vowel_p))
        phones.append((vowel, 0.0))
        if rng.random() < 0.35:
            coda = str(rng.choice(_CODAS, p=coda_p))
            if coda != phones[-2][0]:
                phones.append((coda, 0.0))
    # no two identical consonants in a row (they would merge into one)
    cleaned: list[tuple[str, float]] = []
    for sym, _ in phones:
        if cleaned and cleaned[-1][0] == sym:
            continue
        cleaned.append((sym, _duration(rng, sym, rate)))
    return cleaned


def make_sentence(rng: np.random.Generator, seconds: float, pause_prob: float = 0.3,
                  ) -> list[Segment]:
    """Random CV/CVC words at about 4-5 syllables per second covering exactly ``[0, seconds]``.

    Starts and ends with a pause (0.15-0.5 s where room allows); between words a pause of
    0.15-0.6 s follows with probability ``pause_prob``.  Times are multiples of 1 ms.
    Deterministic given the state of ``rng``.  Segments are contiguous.
    """
    seconds = float(seconds)
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    rate = float(rng.uniform(0.9, 1.12))  # speaking-rate factor of this sentence
    lead = float(rng.uniform(0.15, 0.5))
    tail_min = 0.15
    segs: list[Segment] = []
    t = _ms(min(lead, seconds))
    segs.append(Segment(PAUSE_SYMBOL, 0.0, t))
    tries = 0
    while tries < 4:
        word = _word(rng, rate)
        length = sum(d for _, d in word)
        if t + length > seconds - tail_min:
            tries += 1  # try a shorter word before giving up
            continue
        for sym, d in word:
            end = _ms(t + d)
            segs.append(Segment(sym, t, end))
            t = end
        if rng.random() < pause_prob:
            gap = float(rng.uniform(0.15, 0.6))
            if t + gap < seconds - tail_min:
                end = _ms(t + gap)
                segs.append(Segment(PAUSE_SYMBOL, t, end))
                t = end
    if segs[-1].symbol == PAUSE_SYMBOL:
        segs[-1].end_s = seconds
    else:
        segs.append(Segment(PAUSE_SYMBOL, t, seconds))
    if segs[-1].end_s <= segs[-1].start_s:  # seconds shorter than the lead-in
        segs = [Segment(PAUSE_SYMBOL, 0.0, seconds)]
    return segs


def shift_segments(segments: Sequence[Segment], delta_s: float) -> list[Segment]:
    """Copies of ``segments`` moved by ``delta_s`` seconds (times kept to the millisecond)."""
    return [Segment(s.symbol, _ms(s.start_s + delta_s), _ms(s.end_s + delta_s)) for s in segments]


def clip_segments(segments: Sequence[Segment], start_s: float, end_s: float) -> list[Segment]:
    """The parts of ``segments`` inside ``[start_s, end_s]``, cut at the edges."""
    out = []
    for s in segments:
        a, b = max(s.start_s, start_s), min(s.end_s, end_s)
        if b > a:
            out.append(Segment(s.symbol, a, b))
    return out


# ---------------------------------------------------------------------------------------------
# control tracks


def _segment_index(segments: Sequence[Segment], t: np.ndarray) -> np.ndarray:
    """Index of the segment containing each time, -1 outside every segment."""
    starts = np.array([s.start_s for s in segments])
    ends = np.array([s.end_s for s in segments])
    idx = np.searchsorted(starts, t, side="right") - 1
    ok = (idx >= 0) & (t < ends[np.clip(idx, 0, None)])
    return np.where(ok, idx, -1)


def _lookup(segments: Sequence[Segment], idx: np.ndarray, values: Sequence[float],
            outside: float) -> np.ndarray:
    table = np.append(np.asarray(values, np.float64), outside)
    return table[np.where(idx >= 0, idx, len(values))]


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return x
    return ndimage.gaussian_filter1d(x, sigma, mode="nearest", truncate=3.0)


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
    acc = _lookup(segments, idx, accents, 0.0)
    acc = _gauss(acc, 30.0)
    jitter = _gauss(rng.standard_normal(len(tc)), 1.5) * 0.012
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
            raise ValueError(f"unknown phone symbol {s.symbol!r}; known: {sorted(PHONES)}")
    lo = min(int(math.floor(segments[0].start_s * sr)), shift)
    hi = max(int(math.ceil(segments[-1].end_s * sr)), shift + n_out) + 1
    n = hi - lo
    t = (lo + np.arange(n)) / sr  # segment time of every rendered sample

    # control tracks at 1 kHz over the same range
    tc = np.arange(int(math.floor(t[0] * _CONTROL_HZ)) - 1,
                   int(math.ceil(t[-1] * _CONTROL_HZ)) + 2) / _CONTROL_HZ
    idx = _segment_index(segments, tc)
    phones = [s.phone for s in segments]
    scale = speaker.tract_scale

    # formants: own targets, interpolated through phones without any, ~30 ms transitions
    formants = np.empty((3, len(tc)))
    bws = np.empty((3, len(tc)))
    for j in range(3):
        vals = [p.formants[j] if p.formants else np.nan for p in phones]
        f = _lookup(segments, idx, vals, np.nan)
        ok = ~np.isnan(f)
        if ok.any():
            f = np.interp(tc, tc[ok], f[ok])
        else:
            f = np.full_like(tc, PHONES["@"].formants[j])
        formants[j] = _gauss(f, 12.0) * scale
        bws[j] = _gauss(_lookup(segments, idx, [p.bandwidths[j] for p in phones],
                                PHONES["@"].bandwidths[j]), 12.0)

    # voicing amplitude: smooth (about 20 ms) per-phone envelope
    av = _lookup(segments, idx, [p.voice_amp for p in phones], 0.0)
    av = _gauss(av, 7.0)
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
        noise_tracks[band] = _gauss(tr, 1.5 if has_burst else 6.0)

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


# ---------------------------------------------------------------------------------------------
# mouth


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def mouth_track(segments: Sequence[Segment], num_frames: int, fps: float = VIDEO_FPS,
                phase: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Mouth (opening, width) per video frame, each ``(num_frames,)`` float32 in [0, 1].

    Frame ``k`` covers ``[k / fps, (k + 1) / fps)`` (as audio frame ``k`` covers samples
    ``[k * 640, (k + 1) * 640)`` at 16 kHz and 25 fps) and shows the mouth at segment time
    ``(k + phase) / fps``: by default the middle of that interval, so that with no offset
    the audio energy of frame k and the mouth of frame k are centred on the same instant
    (a cross-correlation between them peaks at lag 0, not half a frame off).  Phone targets
    are smoothed
    with a Gaussian of sigma 25 ms (coarticulation, ~60 ms FWHM); the opening is then
    gated to exactly 0 inside every closed-mouth phone (pause, m, b, p) with a 35 ms
    smoothstep ramp on either side, so closures always close.  Times outside every
    segment count as pause.
    """
    num_frames = int(num_frames)
    if num_frames <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    segments = sorted((s for s in segments if s.end_s > s.start_s), key=lambda s: s.start_s)
    tf = (np.arange(num_frames) + float(phase)) / float(fps)
    if not segments:
        return np.zeros(num_frames, np.float32), np.full(num_frames, PHONES[PAUSE_SYMBOL].width,
                                                         np.float32)
    t_lo = min(tf[0], segments[0].start_s) - 0.3
    t_hi = max(tf[-1], segments[-1].end_s) + 0.3
    dt = 1.0 / _CONTROL_HZ
    tg = np.arange(int(math.floor(t_lo / dt)), int(math.ceil(t_hi / dt)) + 1) * dt
    idx = _segment_index(segments, tg)
    phones = [s.phone for s in segments]
    pause = PHONES[PAUSE_SYMBOL]
    opening = _lookup(segments, idx, [p.opening for p in phones], pause.opening)
    width = _lookup(segments, idx, [p.width for p in phones], pause.width)
    sigma = 0.025 / dt
    opening = _gauss(opening, sigma)
    width = _gauss(width, sigma)
    closed = _lookup(segments, idx, [1.0 if p.opening == 0.0 else 0.0 for p in phones], 1.0) > 0
    if closed.any():
        dist = ndimage.distance_transform_edt(~closed) * dt
        opening = opening * _smoothstep(dist / 0.035)
    o = np.clip(np.interp(tf, tg, opening), 0.0, 1.0)
    # exact at the frame times themselves (the 1 ms grid may straddle a boundary)
    idx_f = _segment_index(segments, tf)
    o[_lookup(segments, idx_f, [p.opening for p in phones], pause.opening) == 0.0] = 0.0
    w = np.clip(np.interp(tf, tg, width), 0.0, 1.0)
    return o.astype(np.float32), w.astype(np.float32)
