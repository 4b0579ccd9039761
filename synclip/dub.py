"""Dubbing: make the face in a video (or a photo) say new audio with the generator, streamed frame by frame.

The output lasts as long as the audio: a shorter video plays forward then backward, a longer one is cut.
Frames without a face pass through untouched. The generated crop replaces only the lower face, through a
feathered mask, colour-matched to the original crop, from a smoothed box. The generator's reference (whose
identity it keeps) is the first face crop of the source, for every frame.

:func:`dub_video` is the one door: the CLI calls it with the generator it loaded, ``LipSyncInference`` (and so
its ``batch_process``) with the one it holds.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from . import audio as A
from . import media
from .alloc import trim_heap
from .background import prefetched
from .config import DataConfig
from .errors import InputError, MediaError, NoFaceError
from .face import (FaceDetector, crop, detect_still, detect_tracks, lower_face_mask, paste, square_boxes,
                   subject_squares)
from .models.generator import Generator, mask_lower_half

JPEG_CACHE_QUALITY = 95
GENERATOR_PADS = (0, 10, 0, 0)  # the generator's crops reach below the chin
MAX_MOUTH_MOTION = 3.0  # DubOptions.mouth_motion's top: beyond it the renderer draws shapes no face makes


@dataclass(frozen=True)
class DubOptions:
    """The knobs Wav2Lip users rely on."""

    # px added to the face box: top, bottom, left, right (None: the model's own, GENERATOR_PADS or presenter.PADS)
    pads: tuple[int, int, int, int] | None = None
    resize_factor: int = 1  # shrink the video by this factor first (faster; output is smaller)
    smooth: bool = True  # smooth the face box over 5 frames (off: --nosmooth)
    static: bool = False  # use only the first frame (a photo, or a video as a still)
    box: tuple[int, int, int, int] | None = None  # fixed face box x0 y0 x1 y1: skip detection
    batch_frames: int = 32
    allow_silence: bool = False  # dub a silent track (the mouth should stay closed) instead of refusing
    # presenter models: how far the mouth moves, as a share of how far it moves in the presenter's footage
    mouth_motion: float = 1.0

    def __post_init__(self):
        if not 0 < self.mouth_motion <= MAX_MOUTH_MOTION:
            raise InputError(f"mouth motion {self.mouth_motion} is out of range",
                             fix=f"give a share of the presenter's own motion above 0 and at most {MAX_MOUTH_MOTION}")


def pingpong(t: int, n: int) -> int:
    """Source frame for output frame t of a video with n frames: forward, then backward, and so on."""
    if n <= 1:
        return 0
    period = 2 * n - 2
    k = t % period
    return k if k < n else period - k


class FrameSource:
    """Frames of the video (or photo) in output order, with the face square (cx, cy, side) or NaN for each."""

    def __init__(self, path: Path, opts: DubOptions, data: DataConfig, detector: FaceDetector):
        self.path, self.opts = path, opts
        self.still: np.ndarray | None = None
        info = None
        if path.suffix.lower() in media.IMAGE_EXTS:
            self.still = self._resize(media.read_image(path))
        else:
            info = media.probe_video(path)
            if opts.static:
                self.still = self._resize(next(media.iter_frames(path)))
        if self.still is not None:
            self.n, self.size = 1, (self.still.shape[1], self.still.shape[0])
        else:
            self.n, self.size = info.num_frames, self._scaled(info.width, info.height)
        self.squares = self._squares(info, data, detector)

    def _scaled(self, w: int, h: int) -> tuple[int, int]:
        """(width, height) after the resize factor (kept even for the encoder)."""
        f = self.opts.resize_factor
        return (w, h) if f <= 1 else (w // f // 2 * 2, h // f // 2 * 2)

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        if self.opts.resize_factor <= 1:
            return frame
        return cv2.resize(frame, self._scaled(frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_AREA)

    def frames(self) -> Iterator[np.ndarray]:
        if self.still is not None:
            return iter([self.still])
        return prefetched(self._resize(f) for f in media.iter_frames(self.path))

    def _squares(self, info: media.VideoInfo | None, data: DataConfig, detector: FaceDetector) -> np.ndarray:
        """Face squares (n, 3) in output pixels: from --box, or the subject's track (as `synclip prepare`
        finds it: detected at the detector's size, gaps filled, smoothed unless --nosmooth)."""
        top, bottom, left, right = GENERATOR_PADS if self.opts.pads is None else self.opts.pads
        kps = None
        if self.opts.box is not None:
            boxes = np.tile(np.asarray(self.opts.box, dtype=np.float64) / self.opts.resize_factor, (self.n, 1))
        else:
            if self.still is not None:
                tracks, sx, sy = detect_still(self.still, detector), 1.0, 1.0
            else:  # found in source pixels; output pixels differ by the resize factor
                tracks = detect_tracks(self.path, info, detector)
                sx, sy = self.size[0] / info.width, self.size[1] / info.height
            if not tracks:
                raise NoFaceError("no face found", path=self.path,
                                  fix="use footage or a photo with a visible frontal face, or give --box")
            boxes, kps, _ = subject_squares(tracks[0], data if self.opts.smooth else replace(data, smooth_frames=1))
            boxes, kps = boxes * np.array([sx, sy, sx, sy]), kps * np.array([sx, sy])
        boxes = boxes + np.array([-left, -top, right, bottom], dtype=np.float64)
        return square_boxes(boxes, data.face_pad, kps)

    def ordered(self, total: int | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(frame, square) for output frames 0..total-1 (None: without end, for a stream). Forward-only when the
        video is long enough; else the frames are kept JPEG-compressed (memory grows with the video, never with
        the audio). A stream cannot know, so it always keeps them: its frames are the same either way."""
        if self.still is not None:
            frame = self.still
            t = 0
            while total is None or t < total:
                yield frame, self.squares[0]
                t += 1
            return
        need_cache = total is None or total > self.n
        # JPEG-encoding a 720p frame costs about a tenth of a streamed frame's time: a thread of its own does it
        # (OpenCV works outside the GIL) on a copy, since the frame goes on to the caller, who may draw on it (a
        # stream hands frames without a face to its user as they are).
        encoder = ThreadPoolExecutor(1, thread_name_prefix="synclip-jpeg") if need_cache else None
        cache: list[Future | bytes] = []
        forward = self.n if total is None else min(total, self.n)
        shown = 0
        try:
            for i, frame in enumerate(self.frames()):
                if i >= forward:
                    break
                if encoder is not None:
                    cache.append(encoder.submit(_jpeg, frame.copy()))
                yield frame, self.squares[i]
                shown += 1
            if shown < forward and (shown == 0 or not need_cache):  # its headers promised more than it holds
                raise MediaError(f"the video ended after {shown} of its {self.n} frames (damaged or cut short)",
                                 path=self.path,
                                 fix="re-export or re-download it, or dub a photo of the face instead")
            n, t = len(cache), len(cache)
            while need_cache and (total is None or t < total):
                src = pingpong(t, n)
                if isinstance(cache[src], Future):
                    cache[src] = cache[src].result()
                yield cv2.imdecode(np.frombuffer(cache[src], np.uint8), cv2.IMREAD_COLOR), self.squares[src]
                t += 1
        finally:
            if encoder is not None:
                encoder.shutdown(wait=False, cancel_futures=True)


def _jpeg(frame: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_CACHE_QUALITY])[1].tobytes()


def colour_match(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the generated crop's per-channel mean onto the original's inside the mask (both (S, S, 3) uint8)."""
    w = mask[..., None]
    total = max(float(w.sum()), 1e-6)
    diff = ((original.astype(np.float32) - generated.astype(np.float32)) * w).sum((0, 1)) / total
    return np.clip(generated.astype(np.float32) + diff, 0, 255).astype(np.uint8)


def load_speech(path: Path, allow_silence: bool) -> np.ndarray:
    """The new audio, padded with silence to whole video frames; refuses audio with nothing to say."""
    wav = media.read_audio(path)
    if len(wav) < A.SAMPLES_PER_FRAME:
        raise MediaError("the audio is shorter than one video frame (40 ms)", path=path,
                         fix="give an audio file with speech in it")
    if A.is_silent(wav) and not allow_silence:
        raise MediaError("the audio has no sound (all silence)", path=path,
                         fix="give an audio file with speech, or allow silence (--allow-silence)")
    return A.fit_to_frames(wav, -(-len(wav) // A.SAMPLES_PER_FRAME))  # ceil: the last partial frame counts


@torch.no_grad()
def redraw(generator: Generator, frames: list[np.ndarray], squares: np.ndarray, feats: torch.Tensor,
           reference: torch.Tensor | None, batch_frames: int) -> tuple[list[np.ndarray], torch.Tensor]:
    """Redraw the lower face of a batch of frames that all show the face.

    frames: N (H, W, 3) uint8; squares (N, 3); feats (N, MEL_WINDOW, F), the audio centred on each frame;
    reference (3, S, S) in [0, 1], the crop whose identity is kept (None: the first crop of this batch).
    Returns the frames with the generated mouth pasted in, and the reference used.
    """
    size, device = generator.dims.input_size, next(generator.parameters()).device
    crops = np.stack([crop(f, sq, size) for f, sq in zip(frames, squares)])
    x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float() / 255.0
    if reference is None:
        reference = x[0]
    # One reference from another moment, as in training (never the frame itself, whose mouth says the old
    # words): measured dubbed/true confidence 0.92 vs 0.88 with each frame as its own.
    inp = torch.cat([mask_lower_half(x), reference.expand_as(x)], 1)
    aud = feats.to(device)
    pad = batch_frames - len(frames)
    if pad > 0:  # one batch shape always: each new shape would add to oneDNN's kernel cache
        inp = torch.cat([inp, inp[:1].expand(pad, -1, -1, -1)])
        aud = torch.cat([aud, aud[:1].expand(pad, -1, -1)])
    fake = generator(inp, aud)[: len(frames)]
    fake = (fake.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    mask = lower_face_mask(size)
    out = [paste(f, colour_match(g, c, mask), sq, mask) for f, sq, g, c in zip(frames, squares, fake, crops)]
    return out, reference


class FramePainter:
    """The frame path that offline and streaming dubbing share: takes the next output frames in order from a
    frame source and redraws the lower face of those that show one, for the audio window centred on each."""

    def __init__(self, generator: Generator, frames: Iterator[tuple[np.ndarray, np.ndarray]]):
        self.generator, self.frames = generator, frames
        self.reference: torch.Tensor | None = None  # the first face crop: the reference for every frame
        self.done = 0  # output frames painted so far

    def paint(self, windows: torch.Tensor, batch_frames: int) -> list[tuple[np.ndarray, bool]]:
        """The next len(windows) output frames, as (image (H, W, 3) uint8, whether a face was redrawn).

        windows: (N, MEL_WINDOW, F), the audio centred on each of those frames (A.centred_windows);
        batch_frames >= N: the generator's batch is padded to it (one shape, one kernel cache entry)."""
        batch = [next(self.frames) for _ in range(len(windows))]
        out = [f for f, _ in batch]
        face = [k for k, (_, sq) in enumerate(batch) if not np.isnan(sq[0])]
        if face:
            drawn, self.reference = redraw(self.generator, [out[k] for k in face],
                                           np.stack([batch[k][1] for k in face]), windows[face], self.reference,
                                           batch_frames)
            for k, frame in zip(face, drawn):
                out[k] = frame
        self.done += len(batch)
        return [(f, k in face) for k, f in enumerate(out)]


def open_source(source: Path, opts: DubOptions, data: DataConfig, detector: FaceDetector | None) -> FrameSource:
    """The frame source of a video or photo, its face found (with a detector made from ``data`` and closed
    at once unless one is given)."""
    own = detector is None
    detector = FaceDetector(data.detector, data.min_detection_confidence) if own else detector
    try:
        return FrameSource(source, opts, data, detector)
    finally:
        if own:
            detector.close()


def dub_video(model, source: str | Path, audio_path: str | Path, output: str | Path, *,
              data: DataConfig = DataConfig(), detector: FaceDetector | None = None,
              opts: DubOptions = DubOptions(), progress: Callable[[int, int], None] | None = None
              ) -> tuple[bool, str]:
    """Write ``output`` (H.264 + AAC mp4): ``source`` (video or photo) lip-synced to ``audio_path``.

    ``model``: a ``Generator`` (in eval mode on the device to run on; its dims say the crop size and audio
    features), or a model that paints frames its own way from the speech (``presenter.Presenter``: its
    ``painter(source, wav, total)`` and its own default ``pads``). ``data``: the settings the faces are found
    and cropped by (detector, face_pad, gaps, smoothing): those the model was trained with. ``detector``: a
    ready FaceDetector to reuse (else one is made from ``data`` and closed at the end). ``progress(frames done,
    total)``. Returns (True, a one-line summary).
    """
    source, audio_path, output = Path(source), Path(audio_path), Path(output)
    if not output.parent.is_dir():
        raise MediaError("output folder does not exist", path=output.parent, fix="create it first")
    wav = load_speech(audio_path, opts.allow_silence)
    total = A.samples_to_frames(len(wav))
    if hasattr(model, "painter"):
        src = open_source(source, opts if opts.pads is not None else replace(opts, pads=model.pads), data, detector)
        painter = model.painter(src, wav, total, motion=opts.mouth_motion)

        def paint(frames: torch.Tensor) -> list[tuple[np.ndarray, bool]]:
            return painter.paint(frames, opts.batch_frames)
    else:
        if opts.mouth_motion != 1.0:
            raise InputError("mouth motion is a presenter model's option; this one-stage generator draws the mouth "
                             "straight from the audio", fix="leave --mouth-motion out, or dub with a presenter model")
        feats = A.features_for(wav, model.dims.audio_feature)
        src = open_source(source, opts, data, detector)
        painter = FramePainter(model, src.ordered(total))

        def paint(frames: torch.Tensor) -> list[tuple[np.ndarray, bool]]:
            return painter.paint(A.centred_windows(feats, frames), opts.batch_frames)
    with media.VideoWriter(output, *src.size) as writer:
        for start in range(0, total, opts.batch_frames):
            for image, _ in paint(torch.arange(start, min(total, start + opts.batch_frames))):
                writer.write(image)
            if progress:
                progress(painter.done, total)
            trim_heap()  # freed frames go back to the OS: memory stays flat with the audio's length
        writer.close(wav)
    return True, f"dubbed {total} frames ({total / A.VIDEO_FPS:.1f} s) -> {output}"
