"""Damaged and hostile media for ``fuzz_media.py``, generated (never committed) with PyAV, numpy and OpenCV.

``make_corpus(folder)`` writes a few hundred small files and returns one :class:`Case` per file: which role it
plays (a video to score/dub/prepare, an audio track to dub to, a photo to animate) and which hostile kind it is.
Everything is derived from one 2-second synthetic talking head, so damage reaches past the container into face
detection, audio features and the models.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


@dataclass(frozen=True)
class Case:
    name: str  # unique; also the file's stem
    role: str  # "video", "audio" or "image": the argument it is given as
    kind: str  # the hostile family (for the report's rows)
    path: Path


class Corpus:
    """Collects cases; ``add`` names the file after the case."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.cases: list[Case] = []

    def path(self, name: str, ext: str, role: str = "video") -> Path:
        """Files live in one folder per role (videos/, audios/, images/): prepare and batch take videos/."""
        return self.folder / f"{role}s" / f"{name}{ext}"

    def add(self, name: str, role: str, kind: str, ext: str, data: bytes | None = None) -> Path:
        p = self.path(name, ext, role)
        p.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            p.write_bytes(data)
        self.cases.append(Case(name, role, kind, p))
        return p


# ---------------------------------------------------------------------------------------------- writers


def encode(path: Path, frames, fps: float | Fraction = 25, codec: str = "libx264", pix_fmt: str = "yuv420p",
           audio: np.ndarray | None = None, audio_rate: int = 16000, pts=None, time_base=None,
           video_streams: int = 1, audio_streams: int = 1, fmt: str | None = None) -> Path:
    """Write RGB frames (and mono float audio) with PyAV; ``pts`` (per frame, in ``time_base``) makes the
    timing irregular; several streams of each kind copy the same content."""
    frames = list(frames)
    with av.open(str(path), "w", format=fmt) as out:
        vs = []
        for _ in range(video_streams if frames else 0):
            s = out.add_stream(codec, rate=Fraction(fps).limit_denominator(100000))
            s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
            if time_base is not None:
                s.time_base = s.codec_context.time_base = time_base
            vs.append(s)
        aus = [out.add_stream("aac", rate=audio_rate, layout="mono") for _ in range(audio_streams)] \
            if audio is not None else []
        for i, f in enumerate(frames):
            for s in vs:
                vf = av.VideoFrame.from_ndarray(f, format="rgb24")
                if pts is not None:
                    vf.pts, vf.time_base = int(pts[i]), time_base
                out.mux(s.encode(vf))
        for s in vs:
            out.mux(s.encode())
        for s in aus:
            samples = audio.astype(np.float32)
            step = 1024
            for k in range(0, len(samples), step):
                af = av.AudioFrame.from_ndarray(samples[None, k:k + step], format="flt", layout="mono")
                af.sample_rate, af.pts = audio_rate, k
                out.mux(s.encode(af))
            out.mux(s.encode())
    return path


def wav_bytes(samples: np.ndarray, rate: int = 16000, channels: int = 1, bits: int = 16,
              declared_data: int | None = None, fmt_tag: int | None = None) -> bytes:
    """A RIFF/WAVE file: int16 PCM, or float32 (tag 3) when ``bits`` is 32; sizes may lie."""
    if bits == 32:
        data, tag = samples.astype("<f4").tobytes(), 3
    else:
        data, tag = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(), 1
    tag = fmt_tag if fmt_tag is not None else tag
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    size = len(data) if declared_data is None else declared_data
    return (b"RIFF" + struct.pack("<I", (36 + size) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + data)


def patch_box(data: bytes, box: bytes, offset: int, fmt: str, value) -> bytes:
    """Overwrite a field ``offset`` bytes after every mp4 box type ``box`` (e.g. b"tkhd")."""
    out = bytearray(data)
    start = 0
    while (i := out.find(box, start)) >= 0:
        pos = i + 4 + offset
        if pos + struct.calcsize(fmt) <= len(out):
            struct.pack_into(fmt, out, pos, value)
        start = i + 4
    return bytes(out)


# ----------------------------------------------------------------------------------------------- corpus


def make_corpus(folder: Path, seed: int = 0) -> list[Case]:
    """Write the whole corpus into ``folder``/videos, audios, images (created) and return its cases."""
    from synclip import media, synth

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base_dir = folder / "base"
    synth.make_clip(base_dir, "face", seconds=2.0, seed=5)
    face_mp4 = base_dir / "videos" / "face.mp4"
    speech = media.read_audio(base_dir / "audios" / "face.wav")
    frames = list(media.iter_frames(face_mp4))
    c = Corpus(folder)
    good = face_mp4.read_bytes()
    _containers(c, frames, speech)
    _damage(c, good, rng)
    _timing(c, frames, speech)
    _shapes(c, frames, speech)
    _streams(c, frames, speech)
    _impostors(c, good, frames, speech, rng)
    _audio(c, speech, rng)
    _images(c, frames[0], rng)
    return c.cases


def _containers(c: Corpus, frames, speech) -> None:
    """Healthy files in other containers and codecs: the 'correct result' controls."""
    c.add("ok_h264_mp4", "video", "control", ".mp4", (c.folder / "base/videos/face.mp4").read_bytes())
    encode(c.add("ok_mpeg4_avi", "video", "control", ".avi"), frames, codec="mpeg4", audio=speech)
    encode(c.add("ok_vp9_webm", "video", "control", ".webm"), frames[:25], codec="libvpx-vp9", audio=None)
    encode(c.add("ok_mjpeg_mkv", "video", "control", ".mkv"), frames, codec="mjpeg", pix_fmt="yuvj420p",
           audio=speech)


def _damage(c: Corpus, good: bytes, rng) -> None:
    """Truncations, zeroed and flipped bytes of a healthy mp4 (its moov comes after the data)."""
    for frac in (0.0005, 0.002, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97, 0.995):
        c.add(f"trunc_{frac:g}", "video", "truncated", ".mp4", good[: max(1, int(len(good) * frac))])
    for k in range(1, 9):  # the tail cut off by a few bytes: the index is incomplete
        c.add(f"trunc_tail_{k}", "video", "truncated", ".mp4", good[: len(good) - 7 * k ** 2])
    for k, rate in enumerate((1e-5, 1e-4, 1e-3, 1e-2, 5e-2) * 5):
        data = np.frombuffer(good, np.uint8).copy()
        hits = rng.integers(0, len(data), max(1, int(len(data) * rate)))
        data[hits] ^= rng.integers(1, 256, len(hits), dtype=np.uint8)
        c.add(f"bitflip_{k}", "video", "bit flips", ".mp4", data.tobytes())
    for k in range(8):  # a zeroed block somewhere (a bad sector, a failed copy)
        data = bytearray(good)
        at = int(len(data) * (k + 0.5) / 8)
        data[at: at + 4096] = bytes(min(4096, len(data) - at))
        c.add(f"zeroed_{k}", "video", "zeroed block", ".mp4", bytes(data))
    for k, n in enumerate((16, 64, 256, 1024, 4096, 32768)):  # a valid header, then noise
        c.add(f"header_noise_{k}", "video", "valid header + random", ".mp4",
              good[:n] + rng.integers(0, 256, 60000, dtype=np.uint8).tobytes())
    for k in range(6):  # the moov box (the index) moved to another place's bytes
        data = bytearray(good)
        at = data.find(b"moov")
        if at > 0:
            span = slice(at + 8 + k * 97, at + 8 + k * 97 + 200)
            data[span] = rng.integers(0, 256, len(data[span]), dtype=np.uint8).tobytes()
        c.add(f"moov_noise_{k}", "video", "valid header + random", ".mp4", bytes(data))


def _timing(c: Corpus, frames, speech) -> None:
    """Frame rates from 0 to 1000, irregular timestamps, one frame, huge frame durations."""
    few = frames[:20]
    for fps in (1000, 240, 120, 60, 29.97, 24, 12, 5, 1, 0.5, 0.1):
        encode(c.add(f"fps_{fps:g}", "video", "odd frame rate", ".mp4"), few, fps=fps)
    rng = np.random.default_rng(1)
    tb = Fraction(1, 1000)
    for k in range(6):  # variable frame rate: 5-200 ms between frames
        steps = np.cumsum(rng.integers(5, 200, len(frames)))
        encode(c.add(f"vfr_{k}", "video", "variable frame rate", ".mkv"), frames, pts=steps - steps[0],
               time_base=tb, codec="mpeg4", audio=speech if k % 2 else None)
    gaps = np.arange(len(few)) * 40
    gaps[10:] += 30000  # a 30-s hole in the middle
    encode(c.add("vfr_hole", "video", "variable frame rate", ".mkv"), few, pts=gaps, time_base=tb, codec="mpeg4")
    encode(c.add("one_frame", "video", "one frame", ".mp4"), frames[:1], audio=speech)
    encode(c.add("one_frame_silent", "video", "one frame", ".mp4"), frames[:1])
    good = c.path("fps_24", ".mp4").read_bytes()
    for k, scale in enumerate((0, 1, 7, 0x7FFFFFFF)):  # the track's timescale patched: 0 fps, 1 tick/s, ...
        c.add(f"timescale_{k}", "video", "0 or absurd fps (patched)", ".mp4",
              patch_box(good, b"mdhd", 4 + 8, ">I", scale))
    for k, delta in enumerate((0, 1, 0xFFFFFFFF)):  # every frame's duration patched (stts sample delta)
        c.add(f"stts_delta_{k}", "video", "0 or absurd fps (patched)", ".mp4",
              patch_box(good, b"stts", 4 + 8 + 4, ">I", delta))
    c.add("duration_huge", "video", "0 or absurd fps (patched)", ".mp4",
          patch_box(good, b"mvhd", 4 + 12, ">I", 0xFFFFFFFF))


def _shapes(c: Corpus, frames, speech) -> None:
    """1-pixel, odd, extreme-aspect and huge-declared frame sizes."""
    f0 = frames[0]
    for w, h in ((1, 1), (2, 2), (3, 5), (1, 64), (640, 1), (17, 9)):
        tiny = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames[:10]]
        encode(c.add(f"size_{w}x{h}", "video", "1-pixel and odd sizes", ".mov"), tiny, codec="png",
               pix_fmt="rgb24", audio=speech[:6400])
    for w, h in ((2048, 16), (16, 2048), (4096, 2160)):
        big = [cv2.resize(f0, (w, h)) for _ in range(3)]
        encode(c.add(f"size_{w}x{h}", "video", "extreme sizes", ".mp4"), big)
    good = c.path("fps_24", ".mp4").read_bytes()
    for k, (w, h) in enumerate(((65535, 65535), (0, 0), (1, 65535))):
        data = patch_box(good, b"tkhd", 4 + 72, ">I", w << 16)  # display size, 16.16 fixed point
        data = patch_box(data, b"tkhd", 4 + 76, ">I", h << 16)
        data = patch_box(data, b"avc1", 4 + 24, ">H", w)  # the sample entry's coded size
        data = patch_box(data, b"avc1", 4 + 26, ">H", h)
        c.add(f"declared_{w}x{h}", "video", "huge declared size (patched)", ".mp4", data)
    for k, rot in enumerate((90, 180, 270)):
        data = bytearray(good)
        at = data.find(b"tkhd")
        if at > 0:  # the display matrix's a,b,c,d for a rotation
            cos, sin = round(np.cos(np.radians(rot))), round(np.sin(np.radians(rot)))
            struct.pack_into(">iiiii", data, at + 4 + 40, cos << 16, sin << 16, 0, -sin << 16, cos << 16)
        c.add(f"rotated_{rot}", "video", "rotation matrix", ".mp4", bytes(data))


def _streams(c: Corpus, frames, speech) -> None:
    """Audio only, video only, many streams."""
    encode(c.add("audio_only_mp4", "video", "audio-only", ".mp4"), [], audio=speech)
    encode(c.add("audio_only_mkv", "video", "audio-only", ".mkv"), [], audio=speech, fmt="matroska")
    encode(c.add("video_only", "video", "video-only", ".mp4"), frames)
    encode(c.add("video_only_silent_mkv", "video", "video-only", ".mkv"), frames[:25], codec="mpeg4")
    for nv, na in ((2, 2), (8, 8), (1, 32), (16, 0)):
        encode(c.add(f"streams_{nv}v{na}a", "video", "many streams", ".mkv"), frames[:25], codec="mpeg4",
               video_streams=nv, audio_streams=na, audio=speech[:16000] if na else None)
    silent = np.zeros_like(speech)
    encode(c.add("silent_track", "video", "silent audio", ".mp4"), frames, audio=silent)


def _impostors(c: Corpus, good: bytes, frames, speech, rng) -> None:
    """Wrong extensions, other kinds of file, odd names and file-system objects."""
    jpg = cv2.imencode(".jpg", cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))[1].tobytes()
    png = cv2.imencode(".png", cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))[1].tobytes()
    wav = wav_bytes(speech)
    for ext in (".mp4", ".mov", ".avi", ".mkv", ".webm"):
        c.add(f"still_jpg_as{ext[1:]}", "video", "still image renamed", ext, jpg)
    c.add("still_png_as_mp4", "video", "still image renamed", ".mp4", png)
    c.add("wav_as_mp4", "video", "wrong extension", ".mp4", wav)
    c.add("mp4_as_mov", "video", "wrong extension", ".mov", good)
    c.add("mp4_as_webm", "video", "wrong extension", ".webm", good)
    c.add("text_as_mp4", "video", "not media", ".mp4", b"This is not a video.\n" * 40)
    c.add("html_as_mp4", "video", "not media", ".mp4", b"<!doctype html><html><body>404 Not Found</body></html>")
    c.add("json_as_mp4", "video", "not media", ".mp4", b'{"error": "expired link"}')
    c.add("elf_as_mp4", "video", "not media", ".mp4", b"\x7fELF\x02\x01\x01" + bytes(200))
    c.add("gzip_as_mp4", "video", "not media", ".mp4", b"\x1f\x8b\x08\x00" + rng.bytes(3000))
    for ext in (".mp4", ".mkv", ".avi"):
        c.add(f"empty{ext.replace('.', '_')}", "video", "zero-length", ext, b"")
    for k, n in enumerate((1, 7, 100, 4096, 100000, 1000000)):
        c.add(f"random_{n}", "video", "random bytes", ".mp4", rng.bytes(n))
    for k, magic in enumerate((b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", b"\x1aE\xdf\xa3",
                               b"RIFF\xff\xff\xff\x7fAVI LIST", b"OggS\x00\x02", b"FLV\x01\x05")):
        c.add(f"magic_noise_{k}", "video", "valid header + random", ".mp4", magic + rng.bytes(50000))
    c.add("name with spaces 中文 ünï", "video", "odd name", ".mp4", good)
    c.add("-dash_first", "video", "odd name", ".mp4", good)
    c.add("dotted.name.v2", "video", "odd name", ".mp4", good)
    folder_case = c.add("folder_named", "video", "not a file", ".mp4")
    folder_case.mkdir(exist_ok=True)
    dangling = c.add("dangling_link", "video", "not a file", ".mp4")
    if not dangling.is_symlink():
        os.symlink(c.folder / "no_such_target.mp4", dangling)
    loop = c.add("link_loop", "video", "not a file", ".mp4")
    if not loop.is_symlink():
        os.symlink(loop, loop)
    fifo = c.add("fifo", "video", "not a file", ".mp4")
    if not fifo.exists():
        os.mkfifo(fifo)  # opening it for reading waits for a writer forever: a hang if anything opens it


def _audio(c: Corpus, speech, rng) -> None:
    """Audio tracks to dub to: damaged, silent, odd rates, channels, NaN samples, lying headers."""
    c.add("aud_ok", "audio", "control", ".wav", wav_bytes(speech))
    c.add("aud_empty", "audio", "zero-length", ".wav", b"")
    c.add("aud_header_only", "audio", "truncated", ".wav", wav_bytes(speech)[:44])
    c.add("aud_one_sample", "audio", "truncated", ".wav", wav_bytes(speech[:1]))
    c.add("aud_30ms", "audio", "truncated", ".wav", wav_bytes(speech[:480]))
    c.add("aud_silence", "audio", "silent audio", ".wav", wav_bytes(np.zeros(32000)))
    c.add("aud_dc", "audio", "silent audio", ".wav", wav_bytes(np.full(32000, 0.5)))
    c.add("aud_declared_4gb", "audio", "lying header", ".wav", wav_bytes(speech, declared_data=0xFFFFFFF0))
    c.add("aud_declared_0", "audio", "lying header", ".wav", wav_bytes(speech, declared_data=0))
    c.add("aud_bad_tag", "audio", "lying header", ".wav", wav_bytes(speech, fmt_tag=0x1234))
    for rate in (8000, 11025, 44100, 96000, 192000, 1):
        c.add(f"aud_rate_{rate}", "audio", "odd sample rate", ".wav", wav_bytes(speech, rate=rate))
    for ch in (2, 6, 32):
        c.add(f"aud_{ch}ch", "audio", "many channels", ".wav", wav_bytes(np.repeat(speech, ch), channels=ch))
    bad = speech.copy()
    bad[::100] = np.nan
    c.add("aud_nan", "audio", "NaN samples", ".wav", wav_bytes(bad, bits=32))
    bad = speech.copy()
    bad[::50] = np.inf
    c.add("aud_inf", "audio", "NaN samples", ".wav", wav_bytes(bad, bits=32))
    c.add("aud_loud", "audio", "NaN samples", ".wav", wav_bytes(speech * 1e6, bits=32))
    full = wav_bytes(speech)
    for frac in (0.1, 0.5, 0.9):
        c.add(f"aud_trunc_{frac:g}", "audio", "truncated", ".wav", full[: int(len(full) * frac)])
    c.add("aud_random", "audio", "random bytes", ".wav", rng.bytes(20000))
    c.add("aud_riff_noise", "audio", "valid header + random", ".wav", full[:44] + rng.bytes(20000))
    c.add("aud_mp4_as_wav", "audio", "wrong extension", ".wav", (c.folder / "base/videos/face.mp4").read_bytes())
    c.add("aud_video_only", "audio", "video-only", ".mp4", c.path("video_only", ".mp4").read_bytes())
    c.add("aud_jpg_as_wav", "audio", "still image renamed", ".wav", c.path("still_jpg_asmp4", ".mp4").read_bytes())
    c.add("aud_text", "audio", "not media", ".mp3", b"ID3 but not really an mp3")


def _images(c: Corpus, frame: np.ndarray, rng) -> None:
    """Photos to animate: damaged, tiny, huge-declared, odd formats."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    jpg = cv2.imencode(".jpg", bgr)[1].tobytes()
    png = cv2.imencode(".png", bgr)[1].tobytes()
    c.add("img_ok", "image", "control", ".jpg", jpg)
    c.add("img_empty", "image", "zero-length", ".jpg", b"")
    for frac in (0.01, 0.3, 0.7):
        c.add(f"img_trunc_{frac:g}", "image", "truncated", ".jpg", jpg[: int(len(jpg) * frac)])
    c.add("img_random", "image", "random bytes", ".png", rng.bytes(5000))
    c.add("img_jpeg_noise", "image", "valid header + random", ".jpg", jpg[:600] + rng.bytes(20000))
    huge = bytearray(png)  # IHDR width/height declared as 2^30 (CRC left stale, as a hostile file would)
    struct.pack_into(">II", huge, 16, 1 << 30, 1 << 30)
    c.add("img_declared_huge", "image", "huge declared size (patched)", ".png", bytes(huge))
    for w, h in ((1, 1), (3, 3), (4000, 8)):
        c.add(f"img_{w}x{h}", "image", "1-pixel and odd sizes", ".png",
              cv2.imencode(".png", cv2.resize(bgr, (w, h)))[1].tobytes())
    c.add("img_grey16", "image", "odd pixel format", ".png",
          cv2.imencode(".png", (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257))[1].tobytes())
    c.add("img_rgba", "image", "odd pixel format", ".png",
          cv2.imencode(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))[1].tobytes())
    c.add("img_mp4_as_jpg", "image", "wrong extension", ".jpg", (c.folder / "base/videos/face.mp4").read_bytes())
    c.add("img_text", "image", "not media", ".jpg", b"not an image")
    c.add("img_folder", "image", "not a file", ".jpg").mkdir(exist_ok=True)


def tiny_generator(path: Path) -> Path:
    """An untrained generator checkpoint small enough to run every file through dub in seconds."""
    import torch

    from synclip.checkpoint import save_checkpoint
    from synclip.config import load_config
    from synclip.models.generator import Generator, GeneratorDims
    from synclip.models.syncnet import SyncDims, SyncExpert

    torch.manual_seed(0)
    sd = SyncDims(input_size=96, hidden_dim=16, num_layers=2, base_channels=4)
    gd = GeneratorDims(input_size=96, base_channels=4)
    save_checkpoint(path, kind="generator", config=load_config(None).to_dict(), dims=gd.to_dict(),
                    state_dict=Generator(gd).state_dict(),
                    extra={"expert": {"dims": sd.to_dict(), "state_dict": SyncExpert(sd).state_dict()}})
    return path
