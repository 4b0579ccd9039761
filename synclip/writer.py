"""Writing video and audio with PyAV (its wheel bundles FFmpeg): :class:`VideoWriter`,
:func:`write_video` and :func:`write_wav`.

Writers stream: they encode frames as they arrive, so memory does not grow with video
length (audio, being small, is held whole).  Each writes a hidden temp file beside its
path and renames it onto the path, so the path only ever holds a complete file.
:mod:`synclip.media` re-exports these names (callers use ``media.write_video`` etc.).
"""

from __future__ import annotations

import contextlib
import os
import wave
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Iterable

import av
import numpy as np

from .audio import SAMPLE_RATE_HZ, VIDEO_FPS
from .errors import InputError, MediaError

AAC_BITRATE_BPS = 128_000
AUDIO_LEAD_S = 0.5  # how far audio is encoded ahead of video while muxing (keeps interleaving tight)


def _output(path: str | Path) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        folder = path.parent
        raise MediaError(f"output folder {folder} does not exist", path=path, fix=f"create it first: mkdir -p {folder}")
    return path


def _tmp_path(path: Path, suffix: str) -> Path:
    # Hidden and in the same folder, so os.replace is an atomic rename on one filesystem.
    return path.parent / f".{path.stem}{suffix}"


def _mono(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"audio must be mono, 1-D (samples,), got shape {x.shape}")
    return np.clip(x, -1.0, 1.0)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE_HZ) -> None:
    """Write mono float audio in [-1, 1] as 16-bit PCM wav, atomically (temp file + rename)."""
    path = _output(path)
    pcm = np.round(_mono(audio) * 32767.0).astype("<i2")  # 32767 so +1.0 cannot overflow
    tmp = _tmp_path(path, ".tmp.wav")
    try:
        with wave.open(str(tmp), "wb") as out:
            out.setparams((1, 2, int(sample_rate), pcm.size, "NONE", "not compressed"))  # mono, 16-bit
            out.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise



def _video_frame(frame: np.ndarray, size: tuple[int, int], encoded_size: tuple[int, int]) -> av.VideoFrame:
    """A (height, width, 3) uint8 RGB frame, checked against ``size`` (width, height) and edge-padded to the
    encoder's even ``encoded_size``, as a PyAV frame."""
    frame = np.asarray(frame)
    width, height = size
    if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
        raise InputError(f"frame must be ({height}, {width}, 3) uint8, got {frame.shape} {frame.dtype}")
    pad_w, pad_h = encoded_size[0] - width, encoded_size[1] - height
    if pad_w or pad_h:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")

class VideoWriter:
    """H.264 (yuv420p, libx264) mp4 writer with optional AAC audio; a context manager.

    Design: frames are encoded as they come into a hidden video-only ``.<stem>.video.tmp.mp4``
    beside ``path``; ``close(audio)`` remuxes those packets (no re-encode) with the audio
    encoded as AAC (mono, 128 kb/s) into ``.<stem>.tmp.mp4`` and renames it onto ``path``.
    So audio need only be known at the end, memory stays flat, and ``path`` only ever holds
    a complete file. If the ``with`` block raises, the temp files are deleted.

    Odd sizes are padded to even (yuv420p needs it) by repeating the last column/row;
    ``encoded_size`` is what gets written. The container is mp4 whatever the suffix.
    AAC pads up to 1023 samples at the end: readers should trim to the length they expect.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float = VIDEO_FPS, crf: int = 18,
                 preset: str = "veryfast"):
        self.path = _output(path)
        if width <= 0 or height <= 0:
            raise InputError(f"width and height must be positive, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        self.encoded_size = (self.width + self.width % 2, self.height + self.height % 2)
        self.fps = Fraction(fps).limit_denominator(100_000)
        self.frames_written = 0
        self._video_tmp = _tmp_path(self.path, ".video.tmp.mp4")
        self._final_tmp = _tmp_path(self.path, ".tmp.mp4")
        self._closed = False
        try:
            self._container = av.open(str(self._video_tmp), "w", format="mp4")
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            self._stream.width, self._stream.height = self.encoded_size
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(crf), "preset": preset}
        except (av.error.FFmpegError, OSError) as e:
            self._abort()
            raise MediaError(f"cannot start writing video ({e})", path=self.path, fix="check write permission") from e

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._abort()
        elif not self._closed:
            self.close()

    def write(self, frame: np.ndarray) -> None:
        """Encode one (height, width, 3) uint8 RGB frame."""
        if self._closed:
            raise InputError("write() after close()")
        vf = _video_frame(frame, (self.width, self.height), self.encoded_size)
        vf.pts = self.frames_written  # codec time base is 1/fps
        try:
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(f"writing video failed ({e})", path=self.path, fix="check free disk space") from e
        self.frames_written += 1

    def close(self, audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE_HZ) -> None:
        """Finish the file; mux ``audio`` ((samples,) float in [-1, 1], mono) as AAC if given.

        Raises:
            InputError (a ValueError): no frame was written (the temp files are removed).
            MediaError: encoding or writing failed (the temp files are removed).
        """
        if self._closed:
            return
        try:
            audio = None if audio is None else _mono(audio)
            if self.frames_written == 0:
                raise InputError("no frames were written")
            for packet in self._stream.encode(None):  # drain the encoder's lookahead
                self._container.mux(packet)
            self._container.close()
            if audio is None:
                os.replace(self._video_tmp, self.path)
            else:
                self._remux_with_audio(audio, int(sample_rate))
                os.replace(self._final_tmp, self.path)
                self._video_tmp.unlink(missing_ok=True)
            self._closed = True
        except (av.error.FFmpegError, OSError) as e:
            self._abort()
            raise MediaError(f"writing video failed ({e})", path=self.path, fix="check free disk space") from e
        except BaseException:
            self._abort()
            raise

    def _remux_with_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        with av.open(str(self._video_tmp)) as src, av.open(
            str(self._final_tmp), "w", format="mp4", options={"movflags": "+faststart"}
        ) as out:
            src_video = src.streams.video[0]
            out_video = out.add_stream_from_template(src_video)
            out_audio = out.add_stream("aac", rate=sample_rate, layout="mono")
            out_audio.bit_rate = AAC_BITRATE_BPS
            chunk = sample_rate  # 1 s per AudioFrame; PyAV re-cuts them to AAC's 1024 samples
            done = 0

            def encode_audio_until(sample: int) -> None:
                nonlocal done
                while done < min(sample, audio.size):
                    piece = audio[done : done + chunk]
                    af = av.AudioFrame.from_ndarray(piece[None, :], format="flt", layout="mono")
                    af.sample_rate, af.pts, af.time_base = sample_rate, done, Fraction(1, sample_rate)
                    for packet in out_audio.encode(af):
                        out.mux(packet)
                    done += piece.size

            for packet in src.demux(src_video):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                # Keep audio slightly ahead of video so the muxer need not buffer either.
                t = float(packet.dts * src_video.time_base) + AUDIO_LEAD_S
                encode_audio_until(int(t * sample_rate))
                packet.stream = out_video
                out.mux(packet)
            encode_audio_until(audio.size)
            for packet in out_audio.encode(None):
                out.mux(packet)

    def _abort(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):  # already failing; the temp files go below anyway
            self._container.close()
        self._video_tmp.unlink(missing_ok=True)
        self._final_tmp.unlink(missing_ok=True)


def write_video(path: str | Path, frames: Iterable[np.ndarray], audio: np.ndarray | None = None,
                fps: float = VIDEO_FPS, sample_rate: int = SAMPLE_RATE_HZ, crf: int = 18) -> int:
    """Write (H, W, 3) uint8 RGB frames (size taken from the first) and optional mono audio to an mp4.

    Returns:
        the number of frames written.
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise InputError("no frames to write")
    height, width = np.asarray(first).shape[:2]
    with VideoWriter(path, width, height, fps=fps, crf=crf) as writer:
        writer.write(first)
        for frame in frames:
            writer.write(frame)
        writer.close(audio=audio, sample_rate=sample_rate)
        return writer.frames_written


class GrowingWriter:
    """A fragmented mp4 (H.264 + AAC, a fragment per second) written frame by frame with its sound, for a live
    stream: each finished fragment is flushed to disk, so the file plays while it grows.

    Unlike :class:`VideoWriter` it is written in place, not renamed at the end: a file that must be watched
    while it is made cannot live under a temp name. A fragmented mp4 cut short (a crash, a kill) still plays
    up to its last whole fragment; ``close()`` (also on Ctrl+C, through ``with``) finishes the last one.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: int = VIDEO_FPS, crf: int = 20,
                 sample_rate: int = SAMPLE_RATE_HZ):
        self.path = _output(path)
        self.size = (int(width) + int(width) % 2, int(height) + int(height) % 2)
        self.width, self.height, self.sample_rate = int(width), int(height), int(sample_rate)
        self.frames_written = self.samples_written = 0
        # frag_keyframe: a fragment per keyframe (one a second, below); delay_moov: the header is written with
        # the first fragment, so it carries the edit list that hides AAC's 1024 priming samples (empty_moov
        # cannot: audio then plays 64 ms late and the first frame lasts 64 ms longer); flush_packets: each
        # packet reaches the file at once, not in 32 KB blocks.
        options = {"movflags": "frag_keyframe+delay_moov+default_base_moof", "flush_packets": "1"}
        try:
            self._container = av.open(str(self.path), "w", format="mp4", options=options)
            self._video = self._container.add_stream("libx264", rate=fps)
            self._video.width, self._video.height = self.size
            self._video.pix_fmt = "yuv420p"
            # zerolatency: no B-frames or lookahead, so each frame's packet leaves the encoder at once.
            self._video.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency", "g": str(fps)}
            self._audio = self._container.add_stream("aac", rate=self.sample_rate, layout="mono")
            self._audio.bit_rate = AAC_BITRATE_BPS
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(f"cannot start writing video ({e})", path=self.path, fix="check write permission") from e
        self._closed = False

    def __enter__(self) -> GrowingWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()  # also on errors and Ctrl+C: what was drawn stays playable

    def write(self, frame: np.ndarray, audio: np.ndarray) -> None:
        """One (height, width, 3) uint8 RGB frame and its sound ((n,) float in [-1, 1], normally 640 samples)."""
        vf = _video_frame(frame, (self.width, self.height), self.size)
        vf.pts = self.frames_written
        try:
            self._mux(self._video.encode(vf))
            self.frames_written += 1
            sound = _mono(audio)
            if sound.size:
                af = av.AudioFrame.from_ndarray(sound[None, :], format="flt", layout="mono")
                af.sample_rate, af.pts = self.sample_rate, self.samples_written
                af.time_base = Fraction(1, self.sample_rate)
                self._mux(self._audio.encode(af))
                self.samples_written += sound.size
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(f"writing video failed ({e})", path=self.path, fix="check free disk space") from e

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        """Drain both encoders and write the last fragment (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._mux(self._video.encode(None))
            self._mux(self._audio.encode(None))
        finally:
            self._container.close()
