"""Reading video, audio and images with PyAV (its wheel bundles FFmpeg).

Everything streams: readers hold one decoded frame at a time, so memory does not grow with
video length (audio, being small, is held whole).
``iter_frames`` puts any source rate onto a constant-rate timeline from the video stream's
start; ``read_audio`` starts at the audio stream's start. An offset between the two starts
is not compensated (ordinary tools write 0).

The writers (``VideoWriter``, ``write_video``, ``write_wav``) live in :mod:`synclip.writer`
and are re-exported here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from .audio import SAMPLE_RATE_HZ, VIDEO_FPS
from .errors import InputError, MediaError, NoAudioError
# Re-exported: callers write media.VideoWriter, media.write_video and media.write_wav.
# writer.py does not import this module, so there is no cycle.
from .writer import AAC_BITRATE_BPS, AUDIO_LEAD_S, VideoWriter, write_video, write_wav  # noqa: F401

log = logging.getLogger(__name__)

# File kinds looked for in folders (prepare's data/videos and data/audios, batch folders, dub's --image).
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
AUDIO_EXTS = (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".aac")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

MAX_BAD_PACKETS = 50  # undecodable packets skipped before a file is given up as corrupt
MIN_AUDIO_RATE_HZ = 4000  # below this a sound track cannot hold speech (telephone audio is 8 kHz)
_TICK_EPS = 1e-6  # tolerance (ticks, seconds) against float rounding of exact timestamps

_FIX_READABLE = "check it is a complete video or audio file; re-export or re-download it if it was cut short"


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` found.

    width, height: pixels as displayed, i.e. after applying ``rotation`` (as iter_frames yields).
    fps: the source's average frame rate (frames/s); iter_frames resamples it to 25 fps.
    duration_s: the video stream's duration in seconds.
    num_frames: frames on the 25 fps (VIDEO_FPS) timeline = floor(duration_s * 25 + 1e-6),
        the count ``iter_frames(path)`` yields for a well-formed file (a truncated one yields fewer).
    codec: FFmpeg decoder name, e.g. "h264", "hevc", "mpeg4".
    rotation: display rotation in degrees counter-clockwise (PyAV's ``VideoFrame.rotation``);
        phone videos shot upright usually say -90. 0 when the file has none.
    """

    path: Path
    width: int
    height: int
    fps: float
    duration_s: float
    num_frames: int
    codec: str
    has_audio: bool
    rotation: int


def _open_input(path: str | Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.exists():
        raise MediaError("file not found", path=path, fix="check the path and file name")
    if path.is_dir():
        raise MediaError("is a folder, not a media file", path=path, fix="give the path of a file")
    if path.stat().st_size == 0:
        raise MediaError("file is empty (0 bytes)", path=path, fix="the copy or export probably failed; make it again")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"not a readable media file ({e})", path=path, fix=_FIX_READABLE) from e


def _video_stream(container: av.container.InputContainer, path: str | Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise MediaError("has no video stream", path=path, fix="give a video file (mp4, mov, mkv, avi, webm)")
    return container.streams.video[0]


def _decoded(container: av.container.InputContainer, stream: av.stream.Stream, path: str | Path) -> Iterator:
    """Decoded frames of one stream; damaged packets are skipped, a damaged container ends it."""
    packets, bad = container.demux(stream), 0
    try:
        while bad <= MAX_BAD_PACKETS:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                log.warning("%s: stopped reading at a damaged part (%s); keeping what was decoded", path, e)
                return
            try:
                yield from packet.decode()  # the demuxer's final empty packet flushes the decoder
            except av.error.FFmpegError as e:
                bad += 1
                (log.warning if bad == 1 else log.debug)("%s: skipped a damaged packet (%s)", path, e)
        log.warning("%s: more than %d damaged packets; stopping here", path, MAX_BAD_PACKETS)
    finally:
        if bad > 1:
            log.warning("%s: skipped %d damaged packets in all", path, bad)


def _frame_rate(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else float(VIDEO_FPS)  # no rate: any sane guess at a frame's length


def _start_s(stream: av.stream.Stream) -> float | None:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else None


def _declared_duration_s(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """Video duration from the headers, or None where they do not give it (e.g. mkv, webm)."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    # The container's duration spans all streams (audio often runs longer), so it only
    # stands for the video when the video is the only stream.
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def _scanned_duration_s(path: Path, step_s: float) -> float:
    """Video duration from packet timestamps: demuxing only, no decoding, so it is cheap."""
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        first, end = _start_s(stream), None
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    t = float(packet.pts * stream.time_base)
                    first = t if first is None else first
                    dur = float(packet.duration * stream.time_base) if packet.duration else step_s
                    end = t + dur if end is None else max(end, t + dur)
        except av.error.FFmpegError as e:  # damaged: the duration up to the damage will do
            log.warning("%s: stopped scanning at a damaged part (%s)", path, e)
    return 0.0 if end is None else end - first


def _num_ticks(duration_s: float, fps: float) -> int:
    """Ticks k whose interval [k/fps, (k+1)/fps) ends within duration_s."""
    return max(0, math.floor(duration_s * fps + _TICK_EPS))


def _rgb(frame: av.VideoFrame, size: tuple[int, int] | None, quarters: int) -> np.ndarray:
    if size is None:
        out = frame.to_ndarray(format="rgb24")
    else:
        width, height = size
        if quarters % 2:  # the stored picture is the displayed one transposed
            width, height = height, width
        # swscale resizes and converts colour in one pass: far cheaper than cv2 on full-size RGB.
        out = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    if quarters:
        out = np.ascontiguousarray(np.rot90(out, k=quarters))
    return out


def _quarters(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that make the frame display upright."""
    return round((frame.rotation or 0) / 90) % 4


def probe_video(path: str | Path) -> VideoInfo:
    """Size, rate, duration, codec, audio presence and rotation of a video file.

    Decodes the first frame, to prove the stream decodes and to read its rotation.

    Raises:
        MediaError: missing, empty, unreadable file, no video stream, or no decodable frame.
    """
    path = Path(path)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        frames = _decoded(container, stream, path)
        first = next(frames, None)
        frames.close()
        if first is None:
            raise MediaError("no video frames could be decoded", path=path, fix=_FIX_READABLE)
        quarters = _quarters(first)
        rotation = int(first.rotation or 0) if quarters else 0
        fps = _frame_rate(stream)
        duration = _declared_duration_s(container, stream)
        width, height = first.width, first.height
        codec = stream.codec_context.name
        has_audio = bool(container.streams.audio)
    if duration is None:
        duration = _scanned_duration_s(path, 1.0 / fps)
    if quarters % 2:
        width, height = height, width
    return VideoInfo(path=path, width=width, height=height, fps=fps, duration_s=duration,
                     num_frames=_num_ticks(duration, VIDEO_FPS), codec=codec, has_audio=has_audio, rotation=rotation)


def iter_frames(path: str | Path, fps: float = float(VIDEO_FPS), size: tuple[int, int] | None = None
                ) -> Iterator[np.ndarray]:
    """Frames of a video on a constant ``fps`` timeline, upright (display rotation applied).

    Tick k (time k / fps s after the stream start) gets the source frame shown at that time:
    the last one whose timestamp is <= k / fps. So a 25 fps source yields every frame once and
    a 30 fps source drops every sixth. Yields floor(duration * fps + 1e-6) frames (as
    ``VideoInfo.num_frames`` at 25 fps) for a well-formed file; after damage, it logs a warning
    and yields what could be decoded. The file is opened, and errors raised, on the call.

    Args:
        size: (width, height) to resize to, in display orientation; None keeps the source size.

    Yields:
        (H, W, 3) uint8 RGB arrays; each is a new array the caller may modify.

    Raises:
        MediaError: missing, empty or unreadable file, or no video stream.
    """
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    if size is not None and (len(size) != 2 or min(size) <= 0):
        raise InputError(f"size must be (width, height) with positive values, got {size}")
    path = Path(path)
    container = _open_input(path)
    try:
        stream = _video_stream(container, path)
        step = 1.0 / _frame_rate(stream)
        duration = _declared_duration_s(container, stream)
        duration = _scanned_duration_s(path, step) if duration is None else duration
    except BaseException:
        container.close()
        raise
    return _frame_ticks(container, stream, path, float(fps), size, _num_ticks(duration, fps))


def _frame_ticks(container, stream, path: Path, fps: float, size: tuple[int, int] | None, n_ticks: int
                 ) -> Iterator[np.ndarray]:
    try:
        stream.thread_type = "AUTO"  # frame + slice threads: several times faster for HD
        step = 1.0 / _frame_rate(stream)
        origin = _start_s(stream)
        k = 0
        held = held_rgb = None  # the source frame on screen, and its RGB once converted
        held_t = end_t = 0.0
        quarters = 0

        def emit() -> np.ndarray:
            nonlocal held_rgb
            if held_rgb is None:
                held_rgb = _rgb(held, size, quarters)
                return held_rgb
            return held_rgb.copy()  # repeats get their own array: callers may draw on frames

        for frame in _decoded(container, stream, path):
            t = frame.time if frame.time is not None else held_t + step
            if held is None:
                quarters = _quarters(frame)
                origin = t if origin is None else origin
            else:
                # Every tick before this frame's time still shows the held frame.
                while k < n_ticks and k / fps < t - origin - _TICK_EPS:
                    yield emit()
                    k += 1
            held, held_rgb, held_t = frame, None, t
            duration = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else step
            end_t = t - origin + duration
            if k >= n_ticks:
                return
        if held is None:
            raise MediaError("no video frames could be decoded", path=path, fix=_FIX_READABLE)
        # Allow one source frame of slack: headers may round the duration up a little.
        while k < n_ticks and k / fps < end_t + step:
            yield emit()
            k += 1
        if k < n_ticks:
            log.warning("%s: video ended after %d of %d frames (file damaged or cut short)", path, k, n_ticks)
    finally:
        container.close()


def read_image(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (grey is expanded, alpha dropped, EXIF orientation applied)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError("file not found", path=path, fix="check the path and file name")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MediaError("not a readable image", path=path, fix="give a jpg, png, bmp or webp image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Mono audio from an audio file or a video's audio track, resampled to ``sample_rate`` Hz.

    FFmpeg drops AAC/MP3 priming samples where the file records them, but an AAC track can
    still end with up to 1023 samples of encoder padding: trim to the length you expect.

    Returns:
        (samples,) float32 in [-1, 1]; channels are averaged.

    Raises:
        NoAudioError: the file has no audio stream.
        MediaError: missing, empty, unreadable file, or nothing decodable in the audio stream.
    """
    path = Path(path)
    fix = "give an audio file with --audio or put one in data/audios/ with the same name"
    chunks: list[np.ndarray] = []
    with _open_input(path) as container:
        if not container.streams.audio:
            raise NoAudioError("has no audio track", path=path, fix=fix)
        try:
            resampler, source = None, None
            for frame in _decoded(container, container.streams.audio[0], path):
                if frame.sample_rate < MIN_AUDIO_RATE_HZ:  # 32000 samples at 1 Hz would be 9 hours at 16 kHz
                    raise MediaError(f"its audio is sampled at {frame.sample_rate} Hz, too few for speech",
                                     path=path, fix="resample it to 16 kHz (8 kHz at the least) first")
                # A resampler is fixed to its first frame's rate and layout, and spliced files
                # (mp3s above all) can change them mid-stream: drain it and start a new one.
                if (frame.sample_rate, frame.layout.name, frame.format.name) != source:
                    if resampler is not None:
                        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
                    # swresample's stereo->mono sums at -3 dB each (a full-scale tone comes out at
                    # 1.41); rematrix_maxval=1 scales the mix to a plain average, so nothing clips.
                    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate,
                                                  options={"rematrix_maxval": "1.0"})
                    source = (frame.sample_rate, frame.layout.name, frame.format.name)
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            if resampler is not None:
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]  # the tail
        except av.error.FFmpegError as e:  # e.g. 32 channels: swresample knows no layout to mix them down
            stream = container.streams.audio[0]
            raise MediaError(f"its audio ({stream.channels} channels, {stream.rate} Hz) could not be converted "
                             f"to mono ({e})", path=path, fix="convert it to a mono or stereo wav first") from e
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if audio.size == 0:
        raise MediaError("no audio samples could be decoded", path=path, fix=_FIX_READABLE)
    # Lossy decoders overshoot full scale slightly on clipped sources; float wavs may hold NaN or inf samples
    # (a broken export), which would poison every feature downstream: silence and full scale instead.
    audio = np.nan_to_num(audio, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)
