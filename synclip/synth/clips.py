"""Synthetic talking-head clips with exact lip-sync ground truth.

One photo (scikit-image's astronaut, shipped in its wheel) becomes many distinct people:
an :class:`Appearance` recolours skin, hair and clothes, flips, stretches, places and
lights the person, puts them in front of a new background and moves the head slightly.
The real lips are painted out once; every frame draws a new mouth whose opening and
width follow :func:`synclip.synth.phones.mouth_track` of the same phone segments that
:func:`synclip.synth.voice.synthesize` speaks, so mouth and voice agree by construction.

Files of a clip ``NAME`` (see :func:`make_clip`): ``videos/NAME.mp4`` (H.264 + AAC),
``audios/NAME.wav`` (16 kHz mono) and ``truth/NAME.json``.

Sign convention (syncnet_python's): ``offset_frames = K > 0`` means the audio leads the
video by K frames: the audio at time t carries the sound the mouth makes at t + K/25, so
the sound of video frame v is in the audio at frame v - K.

Timing: video frame v covers ``[v/25, (v+1)/25)`` and shows the mouth at its middle,
``(v + 0.5)/25`` (truth key ``mouth_phase``), the instant audio samples
``[640 v, 640 (v+1))`` are centred on; phone times in the truth are video times.

This module makes the sentences, audio, truth dicts and files of clips from the other modules of
:mod:`synclip.synth` (see its docstring).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from . import voice
from ..audio import SAMPLE_RATE_HZ, VIDEO_FPS
from ..errors import ConfigError
from ..store import write_json_atomic
from .looks import appearance, draw_background, round4
from .phones import PAUSE_SYMBOL, Segment, clip_segments, make_sentence, mouth_track, shift_segments
from .render import DEFAULT_FRAME_SIZE, DEFAULT_FRAME_SIZE_2, DrawnFace, check_frame_size, render_scene
from .voice import Speaker

#: Segments extend this far beyond both ends of a clip, so audio shifted by up to
#: +-20 frames is still speech (larger offsets reach into silence).
MARGIN_S = 0.8

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ---------------------------------------------------------------------------------------------
# sentences, audio, clips


def _sentence(sentence_seed: int, seconds: float) -> list[Segment]:
    """The sentence of ``sentence_seed`` for a clip of ``seconds``, in video time, covering
    ``[-MARGIN_S, seconds + MARGIN_S]``."""
    rng = np.random.default_rng([0x5E7, int(sentence_seed)])
    segs = make_sentence(rng, seconds + 2 * MARGIN_S)
    return shift_segments(segs, -MARGIN_S)


def voice_for(sentence_seed: int) -> Speaker:
    """The voice that speaks the sentence of ``sentence_seed`` by default."""
    return Speaker.random(np.random.default_rng([0x70C, int(sentence_seed)]))


def _audio(segments: Sequence[Segment], speaker: Speaker, sentence_seed: int, seconds: float,
           offset_frames: int) -> np.ndarray:
    rng = np.random.default_rng([0xA0D, int(sentence_seed)])
    return voice.synthesize(segments, speaker, seconds, sample_rate=SAMPLE_RATE_HZ, rng=rng,
                            time_shift_s=offset_frames / VIDEO_FPS)


def make_audio(sentence_seed: int, seconds: float = 4.0, speaker: Speaker | None = None,
               ) -> tuple[np.ndarray, list[Segment]]:
    """New speech to dub with: (float32 16 kHz mono audio, its phones clipped to
    ``[0, seconds]``).  Equal to the audio of ``make_clip(..., sentence_seed=sentence_seed,
    offset_frames=0)`` (when ``speaker`` is None, the clip's voice)."""
    seconds = _check_seconds(seconds)
    segs = _sentence(sentence_seed, seconds)
    speaker = voice_for(sentence_seed) if speaker is None else speaker
    audio = _audio(segs, speaker, sentence_seed, seconds, 0)
    return audio, clip_segments(segs, 0.0, seconds)


def silent_audio(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Pure silence as the voice renders a pause: a -74 dBFS noise floor, float32 16 kHz."""
    seconds = _check_seconds(seconds)
    segs = [Segment(PAUSE_SYMBOL, 0.0, seconds)]
    return voice.synthesize(segs, Speaker(120.0, 1.0, 0.0, 1.0), seconds,
                            rng=np.random.default_rng([0x511, int(seed)]))


def _check_seconds(seconds: float) -> float:
    seconds = float(seconds)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(f"seconds must be a positive number, got {seconds}")
    return seconds


def _check_name(name: str) -> str:
    if not _NAME_RE.match(str(name)):
        raise ConfigError(f"clip name {name!r} is not usable as a file name",
                          fix="use letters, digits, '_', '-' and '.'")
    return str(name)


def _round_list(x, nd: int = 4):
    return np.round(np.asarray(x, np.float64), nd).tolist()


def _out_dirs(out_dir: str | Path) -> tuple[Path, Path, Path]:
    out = Path(out_dir)
    dirs = (out / "videos", out / "audios", out / "truth")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def _write_clip(out_dir: str | Path, name: str, frames: Iterator[np.ndarray],
                audio: np.ndarray, truth: dict) -> dict:
    from .. import media

    videos, audios, truths = _out_dirs(out_dir)
    media.write_video(videos / f"{name}.mp4", frames, audio, fps=VIDEO_FPS,
                      sample_rate=SAMPLE_RATE_HZ)
    media.write_wav(audios / f"{name}.wav", audio, sample_rate=SAMPLE_RATE_HZ)
    write_json_atomic(truths / f"{name}.json", truth)
    return truth


def clip_content(*, seconds: float = 4.0, offset_frames: int = 0, faces: int = 1,
                 appearance_index: int | None = None, sentence_seed: int | None = None,
                 seed: int = 0, frame_size: Sequence[int] | None = None, name: str = "clip",
                 ) -> tuple[Iterator[np.ndarray], np.ndarray, dict]:
    """Everything :func:`make_clip` writes, in memory: (frame iterator, audio, truth dict).
    Same arguments as :func:`make_clip`."""
    seconds = _check_seconds(seconds)
    offset_frames = int(offset_frames)
    if faces not in (1, 2):
        raise ConfigError(f"faces must be 1 or 2, got {faces}")
    seed = int(seed)
    appearance_index = seed if appearance_index is None else int(appearance_index)
    sentence_seed = seed if sentence_seed is None else int(sentence_seed)
    if frame_size is None:
        frame_size = DEFAULT_FRAME_SIZE if faces == 1 else DEFAULT_FRAME_SIZE_2
    fw, fh = check_frame_size(frame_size, faces)
    num_frames = int(round(seconds * VIDEO_FPS))

    segs = _sentence(sentence_seed, seconds)
    speaker_voice = voice_for(sentence_seed)
    audio = _audio(segs, speaker_voice, sentence_seed, seconds, offset_frames)
    opening, width = mouth_track(segs, num_frames, fps=VIDEO_FPS)
    # the truth file keeps 4 decimals: render exactly what it says
    opening, width = np.round(opening, 4), np.round(width, 4)

    if faces == 1:
        speaker_face = 0
        indices = [appearance_index]
        seeds = [sentence_seed]
        tracks = [(opening, width)]
        cells = [(0, 0, fw, fh)]
    else:
        rng = np.random.default_rng([0xC11, seed])
        speaker_face = int(rng.integers(2))
        other_index = appearance_index + 1 + int(rng.integers(0, 10_000))
        other_seed = sentence_seed + 1 + int(rng.integers(0, 1_000_000))
        o2, w2 = mouth_track(_sentence(other_seed, seconds), num_frames, fps=VIDEO_FPS)
        other = (np.round(o2, 4), np.round(w2, 4))
        half = (fw // 2) // 2 * 2
        cells = [(0, 0, half, fh), (half, 0, fw - half, fh)]
        if speaker_face == 0:
            indices, seeds, tracks = ([appearance_index, other_index],
                                      [sentence_seed, other_seed], [(opening, width), other])
        else:
            indices, seeds, tracks = ([other_index, appearance_index],
                                      [other_seed, sentence_seed], [other, (opening, width)])
    apps = [appearance(i) for i in indices]
    face_objs = [DrawnFace(a, c, num_frames) for a, c in zip(apps, cells)]
    background = draw_background(apps[0], (fw, fh))
    geo = [[f.geometry(k) for k in range(num_frames)] for f in face_objs]

    phones = clip_segments(segs, 0.0, seconds)
    truth = {
        "name": name,
        "seconds": round4(seconds),
        "fps": VIDEO_FPS,
        "sample_rate": SAMPLE_RATE_HZ,
        "num_frames": num_frames,
        "num_samples": int(len(audio)),
        "frame_size": [fw, fh],
        "offset_frames": offset_frames,
        "faces": faces,
        "speaker": speaker_face,
        "appearance_index": appearance_index,
        "appearance_indices": indices,
        "sentence_seed": sentence_seed,
        "sentence_seeds": seeds,
        "seed": seed,
        "voice": {k: round4(v) for k, v in asdict(speaker_voice).items()},
        "appearances": [a.to_dict() for a in apps],
        "phones": [{"symbol": p.symbol, "start_s": round4(p.start_s), "end_s": round4(p.end_s)}
                   for p in phones],
        "mouth_phase": 0.5,
        "mouth_opening": _round_list(opening),
        "mouth_width": _round_list(width),
        "mouth_openings": [_round_list(t[0]) for t in tracks],
        "mouth_widths": [_round_list(t[1]) for t in tracks],
        "face_boxes": [[_round_list(g[0], 2) for g in face_geo] for face_geo in geo],
        "mouth_centres": [[_round_list(g[1], 2) for g in face_geo] for face_geo in geo],
    }
    frames = render_scene(face_objs, tracks, background, num_frames)
    return frames, audio, truth


def make_clip(out_dir: str | Path, name: str, *, seconds: float = 4.0, offset_frames: int = 0,
              faces: int = 1, appearance_index: int | None = None,
              sentence_seed: int | None = None, seed: int = 0,
              frame_size: Sequence[int] | None = None) -> dict:
    """Write one synthetic clip and return its truth dict.

    Files: ``out_dir/videos/NAME.mp4`` (H.264 + AAC), ``out_dir/audios/NAME.wav`` (16 kHz
    mono, the same audio) and ``out_dir/truth/NAME.json``.  ``offset_frames`` = K > 0: the
    audio leads the video by K frames.  The look comes from ``appearance_index`` (default
    ``seed``), the sentence and voice from ``sentence_seed`` (default ``seed``); head motion
    belongs to the look, so the same look with another sentence differs only in the mouth.
    ``faces=2``: two people side by side (default frame 640 x 320), both mouths move, only
    face ``truth["speaker"]`` speaks the audio; the other face's look and sentence come
    from ``seed``.  Frame size defaults to 320 x 320 (one face).
    """
    name = _check_name(name)
    frames, audio, truth = clip_content(seconds=seconds, offset_frames=offset_frames,
                                        faces=faces, appearance_index=appearance_index,
                                        sentence_seed=sentence_seed, seed=seed,
                                        frame_size=frame_size, name=name)
    return _write_clip(out_dir, name, frames, audio, truth)


def silence_clip(out_dir: str | Path, name: str, *, seconds: float = 4.0,
                 appearance_index: int = 0, seed: int = 0,
                 frame_size: Sequence[int] | None = None) -> dict:
    """A clip of a person keeping their mouth closed over near-silent audio (one face)."""
    name = _check_name(name)
    seconds = _check_seconds(seconds)
    fw, fh = check_frame_size(frame_size or DEFAULT_FRAME_SIZE)
    num_frames = int(round(seconds * VIDEO_FPS))
    segs = [Segment(PAUSE_SYMBOL, 0.0, seconds)]
    opening, width = mouth_track(segs, num_frames, fps=VIDEO_FPS)
    audio = silent_audio(seconds, seed)
    app = appearance(appearance_index)
    face = DrawnFace(app, (0, 0, fw, fh), num_frames)
    geo = [face.geometry(k) for k in range(num_frames)]
    truth = {
        "name": name, "seconds": round4(seconds), "fps": VIDEO_FPS, "sample_rate": SAMPLE_RATE_HZ,
        "num_frames": num_frames, "num_samples": int(len(audio)), "frame_size": [fw, fh],
        "offset_frames": 0, "faces": 1, "speaker": 0, "appearance_index": int(appearance_index),
        "appearance_indices": [int(appearance_index)], "sentence_seed": None,
        "sentence_seeds": [None], "seed": int(seed), "voice": None,
        "appearances": [app.to_dict()],
        "phones": [{"symbol": PAUSE_SYMBOL, "start_s": 0.0, "end_s": round4(seconds)}],
        "mouth_phase": 0.5,
        "mouth_opening": _round_list(opening), "mouth_width": _round_list(width),
        "mouth_openings": [_round_list(opening)], "mouth_widths": [_round_list(width)],
        "face_boxes": [[_round_list(g[0], 2) for g in geo]],
        "mouth_centres": [[_round_list(g[1], 2) for g in geo]],
    }
    frames = render_scene([face], [(opening, width)], draw_background(app, (fw, fh)), num_frames)
    return _write_clip(out_dir, name, frames, audio, truth)


def make_dataset(out_dir: str | Path, clips: int, *, seconds: float = 4.0,
                 offset_frames: int | Sequence[int] = 0, faces: int = 1, seed: int = 0,
                 appearance_indices: Sequence[int] | None = None,
                 progress: Callable[[int, int], None] | None = None, prefix: str = "synth",
                 frame_size: Sequence[int] | None = None) -> list[dict]:
    """Write ``clips`` clips named ``{prefix}_0000``, ``{prefix}_0001``, ... into
    ``out_dir/videos``, ``out_dir/audios`` and ``out_dir/truth``; return their truth dicts.

    Clip i uses seed ``seed * 100000 + i`` for its sentence (and, with ``faces=2``, its
    partner); its look is ``appearance_indices[i % len(appearance_indices)]`` when given,
    else appearance ``seed * 100000 + i`` (so seed 0 starts with the 8 hand-picked looks and
    every clip has its own).  ``offset_frames`` may be one int or a sequence cycled over
    the clips.  ``progress(n_done, n_total)`` is called after each clip.
    """
    clips = int(clips)
    if clips < 0:
        raise ConfigError(f"clips must be >= 0, got {clips}")
    _check_name(prefix)
    if appearance_indices is not None:
        appearance_indices = [int(i) for i in appearance_indices]
        if not appearance_indices:
            raise ConfigError("appearance_indices is empty", fix="give at least one index")
    offsets = [int(offset_frames)] if np.ndim(offset_frames) == 0 else [
        int(k) for k in offset_frames]  # type: ignore[union-attr]
    if not offsets:
        raise ConfigError("offset_frames is empty", fix="give at least one offset")
    _out_dirs(out_dir)
    truths = []
    for i in range(clips):
        clip_seed = int(seed) * 100_000 + i
        app_index = (appearance_indices[i % len(appearance_indices)]
                     if appearance_indices is not None else clip_seed)
        truths.append(make_clip(out_dir, f"{prefix}_{i:04d}", seconds=seconds,
                                offset_frames=offsets[i % len(offsets)], faces=faces,
                                appearance_index=app_index, sentence_seed=clip_seed,
                                seed=clip_seed, frame_size=frame_size))
        if progress is not None:
            progress(i + 1, clips)
    return truths
