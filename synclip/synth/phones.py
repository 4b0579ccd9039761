"""Phonemes, random sentences and the mouth shapes that go with them: what is said and how
the mouth moves.  How it sounds is :mod:`synclip.synth.voice`.

One list of :class:`Segment` drives both the audio (:func:`synclip.synth.voice.synthesize`) and
the mouth (:func:`mouth_track`), so the audio-visual correspondence of the synthetic data is
exact by construction: whatever phone sounds at segment time ``t`` is also what the mouth
shows at segment time ``t``.

This module does not import :mod:`synclip.synth.voice`; the voice imports the inventory, the
segments and the shared time-grid helpers (:func:`segment_index`, :func:`lookup`,
:func:`gauss`, ``CONTROL_HZ``) from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from ..audio import VIDEO_FPS
from ..errors import InputError

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
CONTROL_HZ = 1000  # rate (Hz) of the control-track grid, for the voice as for the mouth


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
        raise InputError(f"seconds must be > 0, got {seconds}")
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
# segment lookups on a time grid (shared by the mouth here and the voice in synclip.synth.voice)


def segment_index(segments: Sequence[Segment], t: np.ndarray) -> np.ndarray:
    """Index of the segment containing each time, -1 outside every segment."""
    starts = np.array([s.start_s for s in segments])
    ends = np.array([s.end_s for s in segments])
    idx = np.searchsorted(starts, t, side="right") - 1
    ok = (idx >= 0) & (t < ends[np.clip(idx, 0, None)])
    return np.where(ok, idx, -1)


def lookup(segments: Sequence[Segment], idx: np.ndarray, values: Sequence[float],
            outside: float) -> np.ndarray:
    table = np.append(np.asarray(values, np.float64), outside)
    return table[np.where(idx >= 0, idx, len(values))]


def gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return x
    return ndimage.gaussian_filter1d(x, sigma, mode="nearest", truncate=3.0)


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
    dt = 1.0 / CONTROL_HZ
    tg = np.arange(int(math.floor(t_lo / dt)), int(math.ceil(t_hi / dt)) + 1) * dt
    idx = segment_index(segments, tg)
    phones = [s.phone for s in segments]
    pause = PHONES[PAUSE_SYMBOL]
    opening = lookup(segments, idx, [p.opening for p in phones], pause.opening)
    width = lookup(segments, idx, [p.width for p in phones], pause.width)
    sigma = 0.025 / dt
    opening = gauss(opening, sigma)
    width = gauss(width, sigma)
    closed = lookup(segments, idx, [1.0 if p.opening == 0.0 else 0.0 for p in phones], 1.0) > 0
    if closed.any():
        dist = ndimage.distance_transform_edt(~closed) * dt
        opening = opening * _smoothstep(dist / 0.035)
    o = np.clip(np.interp(tf, tg, opening), 0.0, 1.0)
    # exact at the frame times themselves (the 1 ms grid may straddle a boundary)
    idx_f = segment_index(segments, tf)
    o[lookup(segments, idx_f, [p.opening for p in phones], pause.opening) == 0.0] = 0.0
    w = np.clip(np.interp(tf, tg, width), 0.0, 1.0)
    return o.astype(np.float32), w.astype(np.float32)
