"""Real-time dubbing: frames drawn as the audio arrives, through the same frame path as :func:`dub.dub_video`.

Audio comes in pieces of any size (16 kHz mono float); each log-mel row is computed as soon as its 800 samples
are in, by the same STFT step the whole-file transform uses, so the rows are the offline rows. Output frame v
is drawn from the 16 mel rows centred on it; it can be drawn once the last of them is complete. That is the
look-ahead the generator needs: at most ``LOOKAHEAD_MS`` (117.5 ms) of audio after the frame's centre
(112.5 ms on average over the 5 phases of 3.2 mel rows per frame), 97.5 ms after the frame's end.

The one difference from offline dubbing is the loudness scale. Offline features are scaled to the clip's
loudest mel bin; a live stream cannot see its future, so it scales to the loudest bin heard so far (or to a
``peak_db`` the caller knows). From the moment the stream has passed the clip's loudest point, its frames are
the offline frames.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from . import audio as A
from .alloc import trim_heap
from .config import DataConfig
from .dub import DubOptions, FramePainter, open_source
from .errors import InputError
from .face import FaceDetector
from .models.generator import Generator

HALF_FFT = A.N_FFT // 2  # the centre-padding: mel row m reads samples [m * HOP - HALF_FFT, m * HOP + HALF_FFT)
MAX_BATCH_FRAMES = 8  # frames drawn in one generator call when the stream has fallen behind


def window_rows_end(frame: int) -> int:
    """One past the last mel row of the audio window centred on ``frame``."""
    return A.mel_start(frame - A.SYNC_FRAMES // 2) + A.MEL_WINDOW


def samples_needed(frame: int) -> int:
    """Audio samples (from the stream's start) that must have arrived before ``frame`` can be drawn."""
    return (window_rows_end(frame) - 1) * A.HOP_SAMPLES + HALF_FFT


# The worst case over the five phases of 3.2 mel rows per video frame (the pattern repeats every 5 frames).
LOOKAHEAD_SAMPLES = max(samples_needed(v) - (2 * v + 1) * A.SAMPLES_PER_FRAME // 2 for v in range(5))
LOOKAHEAD_MS = LOOKAHEAD_SAMPLES * 1000 / A.SAMPLE_RATE_HZ


class MelStream:
    """Log-mel rows (dB) of audio that arrives piece by piece; each row equals the whole-file ``log_mel`` row.

    Rows already used can be dropped (``drop_before``), so memory does not grow with the stream's length.
    """

    def __init__(self) -> None:
        self.pending = np.zeros(HALF_FFT, np.float32)  # centre-padded audio from the next row's first sample
        self.next_row = 0  # index of the next row to compute
        self.first_row = 0  # index of rows[0]
        self.rows = torch.zeros(0, A.N_MELS)
        self.received = 0  # samples pushed
        self.peak_db = A.MIN_DB  # loudest mel bin so far
        self.total_rows: int | None = None  # known once finished

    def push(self, samples: np.ndarray) -> None:
        self.received += len(samples)
        self.pending = np.concatenate([self.pending, samples.astype(np.float32, copy=False)])
        self._compute()

    def finish(self) -> int:
        """End of audio: pad to whole video frames as offline dubbing does, add the end's centre-padding,
        compute the last rows. Returns the number of output frames."""
        frames = -(-self.received // A.SAMPLES_PER_FRAME)
        tail = A.frames_to_samples(frames) - self.received + HALF_FFT
        self.pending = np.concatenate([self.pending, np.zeros(tail, np.float32)])
        self._compute()
        self.total_rows = A.num_mel_frames(A.frames_to_samples(frames))
        assert self.next_row == self.total_rows, (self.next_row, self.total_rows)
        return frames

    def _compute(self) -> None:
        n = (len(self.pending) - A.N_FFT) // A.HOP_SAMPLES + 1  # rows whose 800 samples are all here
        if n <= 0:
            return
        db = A.power_to_log_mel(A.padded_mel_power(torch.from_numpy(self.pending[: (n - 1) * A.HOP_SAMPLES
                                                                                  + A.N_FFT])))
        self.rows = torch.cat([self.rows, db])
        self.peak_db = max(self.peak_db, float(db.max()))
        self.pending = self.pending[n * A.HOP_SAMPLES:]
        self.next_row += n

    def windows(self, frames: torch.Tensor) -> torch.Tensor:
        """dB rows of the windows centred on ``frames`` (N,) -> (N, MEL_WINDOW, N_MELS); the edges repeat the
        first and (once finished) the last row, as ``A.centred_windows`` does."""
        rows = A.mel_start(frames - A.SYNC_FRAMES // 2)[:, None] + torch.arange(A.MEL_WINDOW)
        last = (self.total_rows or self.next_row) - 1
        return self.rows[rows.clamp(0, last) - self.first_row]

    def drop_before(self, row: int) -> None:
        row = max(0, row)
        if row > self.first_row:
            self.rows = self.rows[row - self.first_row:]
            self.first_row = row


@dataclass
class StreamFrame:
    """One output frame of a stream."""

    index: int  # output frame number on the 25 fps timeline
    image: np.ndarray  # (H, W, 3) uint8 RGB
    audio: np.ndarray  # (640,) float32: the sound of this frame (its 40 ms), to play or mux beside it
    needs_samples: int  # audio samples from the start that had to arrive before it could be drawn
    face: bool  # whether a face was redrawn (False: the source frame passed through)


class Streamer:
    """Dub ``source`` (video or photo) to audio that arrives in pieces; ``streamer(chunks)`` yields the frames.

    ``generator``, ``data``, ``detector``, ``opts``: as for :func:`dub.dub_video` (the face is found in the
    whole source first, before any audio is taken). ``peak_db``: the loudness scale (see the module doc); None
    = the loudest heard so far. Also ``push(samples)`` -> frames ready now, and ``finish()`` -> the rest.
    """

    def __init__(self, generator: Generator, source: str | Path, *, data: DataConfig = DataConfig(),
                 detector: FaceDetector | None = None, opts: DubOptions = DubOptions(), peak_db: float | None = None,
                 max_batch: int = MAX_BATCH_FRAMES):
        self.src = open_source(Path(source), opts, data, detector)
        self.size = self.src.size  # (width, height) of the output frames
        self.painter = FramePainter(generator, self.src.ordered(None))
        self.kind = generator.dims.audio_feature
        self.peak_db, self.max_batch = peak_db, max_batch
        self.mel = MelStream()
        self.audio = np.zeros(0, np.float32)  # samples of frames not yet drawn, from frame `painter.done`
        self.total: int | None = None

    def push(self, samples: np.ndarray) -> list[StreamFrame]:
        """Take the next piece of audio ((n,) float in [-1, 1] at 16 kHz); return the frames it made ready."""
        if self.total is not None:
            raise InputError("push() after finish()")
        samples = np.asarray(samples, np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, samples])
        self.mel.push(samples)
        return self._draw()

    def finish(self) -> list[StreamFrame]:
        """End of the audio: the frames still waiting (the last partial frame padded with silence)."""
        if self.total is None:
            self.total = self.mel.finish()
            want = A.frames_to_samples(self.total - self.painter.done)
            self.audio = np.pad(self.audio, (0, max(0, want - len(self.audio))))
        return self._draw()

    def __call__(self, chunks: Iterable[np.ndarray]) -> Iterator[StreamFrame]:
        for chunk in chunks:
            yield from self.push(chunk)
        yield from self.finish()

    def _ready(self) -> int:
        """How many frames from ``painter.done`` on can be drawn now."""
        v = self.painter.done
        if self.total is not None:
            return self.total - v
        n = 0
        while window_rows_end(v + n) <= self.mel.next_row:
            n += 1
        return n

    def _draw(self) -> list[StreamFrame]:
        out: list[StreamFrame] = []
        ready = self._ready()
        while ready > 0:
            n = min(ready, self.max_batch)
            first = self.painter.done
            frames = torch.arange(first, first + n)
            peak = self.mel.peak_db if self.peak_db is None else self.peak_db
            windows = A.features_at_peak(self.mel.windows(frames), self.kind, peak)
            pad = 1 << (n - 1).bit_length()  # a few batch shapes only (1, 2, 4, 8): each is a kernel-cache entry
            for k, (image, face) in enumerate(self.painter.paint(windows, pad)):
                v = first + k
                out.append(StreamFrame(v, image, self.audio[k * A.SAMPLES_PER_FRAME:(k + 1) * A.SAMPLES_PER_FRAME],
                                       min(samples_needed(v), self.mel.received), face))
            self.audio = self.audio[n * A.SAMPLES_PER_FRAME:]
            self.mel.drop_before(A.mel_start(self.painter.done - A.SYNC_FRAMES // 2))
            ready -= n
        if out and self.painter.done // A.VIDEO_FPS > (self.painter.done - len(out)) // A.VIDEO_FPS:
            trim_heap()  # once a second of frames: each call costs about a millisecond
        return out

# -- audio sources: (piece, arrival time) pairs, and a run that times each frame against its audio's arrival --


def pcm_chunks(stream, chunk_samples: int) -> Iterator[np.ndarray]:
    """Raw 16 kHz mono s16le PCM from a binary stream (e.g. stdin) -> float32 pieces of up to ``chunk_samples``,
    as they arrive (each read returns what is there, so a slow producer is not waited on for a full chunk)."""
    read = getattr(stream, "read1", stream.read)
    odd = b""
    while True:
        data = read(2 * chunk_samples)
        if not data:
            return
        data = odd + data
        usable = len(data) // 2 * 2
        odd = data[usable:]
        if usable:
            yield np.frombuffer(data[:usable], "<i2").astype(np.float32) / 32768.0


def arriving(chunks: Iterable[np.ndarray], clock=time.perf_counter) -> Iterator[tuple[np.ndarray, float]]:
    """Pieces from a live source, each with the time it was taken."""
    for piece in chunks:
        yield piece, clock()


def paced(wav: np.ndarray, chunk_samples: int, clock=time.perf_counter) -> Iterator[tuple[np.ndarray, float]]:
    """A whole track handed out at real-time pace: piece k once its last sample's time has come, with that
    time (when a live source would have delivered it, even if the consumer asks late)."""
    t0 = clock()
    for start in range(0, len(wav), chunk_samples):
        piece = wav[start:start + chunk_samples]
        due = t0 + (start + len(piece)) / A.SAMPLE_RATE_HZ
        wait = due - clock()
        if wait > 0:
            time.sleep(wait)
        yield piece, due


@dataclass
class StreamReport:
    frames: int
    face_frames: int
    wall_s: float  # first piece taken -> last frame out
    fps: float  # frames out per second after the first frame (25 when it keeps up with a real-time source)
    latency_ms: list[float]  # per frame: its audio's arrival (the piece that completed its window) -> frame out

    def summary(self) -> dict:
        lat = np.asarray(self.latency_ms) if self.latency_ms else np.zeros(1)
        return {"frames": self.frames, "face_frames": self.face_frames, "wall_s": round(self.wall_s, 2),
                "fps": round(self.fps, 2), "latency_median_ms": round(float(np.median(lat)), 1),
                "latency_p95_ms": round(float(np.percentile(lat, 95)), 1),
                "latency_max_ms": round(float(lat.max()), 1), "lookahead_ms": LOOKAHEAD_MS}


def run_stream(streamer: Streamer, timed: Iterable[tuple[np.ndarray, float]],
               sink: Callable[[StreamFrame], None] | None = None, clock=time.perf_counter) -> StreamReport:
    """Feed ``timed`` (piece, arrival time) into ``streamer``, hand each frame to ``sink`` (e.g. a
    GrowingWriter's write), and time every frame from its audio's arrival to the moment it is out (before
    the sink). Ctrl+C stops it; the frames already out stay with the sink."""
    ends: list[int] = []  # samples received after each piece
    times: list[float] = []
    latency: list[float] = []
    faces = 0
    first_out = None

    def frames() -> Iterator[StreamFrame]:
        for piece, t in timed:
            ends.append((ends[-1] if ends else 0) + len(piece))
            times.append(t)
            yield from streamer.push(piece)
        yield from streamer.finish()

    t0 = clock()
    for f in frames():
        now = clock()
        first_out = now if first_out is None else first_out
        latency.append(1000 * (now - times[min(bisect.bisect_left(ends, f.needs_samples), len(times) - 1)]))
        faces += f.face
        if sink is not None:
            sink(f)
    end = clock()
    n = len(latency)
    fps = (n - 1) / (end - first_out) if n > 1 and end > first_out else 0.0
    return StreamReport(n, faces, end - t0, fps, latency)
