"""Faces: detection backends, tracking across frames (and over a whole video: :func:`detect_tracks`),
smoothing, gap filling, the subject's square crops (:func:`subject_squares`), crops and paste-back masks.

A *box* is ``(x0, y0, x1, y1)`` in frame pixels (float). A frame without a face has a NaN box: frames without a
face are marked, never guessed. Only short gaps inside a track (``max_gap`` frames) are interpolated, since a
face cannot teleport in 200 ms but a cutaway to B-roll can last seconds.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import media
from .alloc import trim_heap
from .config import DataConfig
from .errors import ConfigError

DETECT_MAX_SIDE_PX = 640  # frames are shrunk to this before detection; BlazeFace sees 128 px anyway
TRIM_EVERY_FRAMES = 64  # frames between giving freed heap pages back to the OS (see synclip.alloc)
# BlazeFace keypoint order (mediapipe): right eye, left eye, nose tip, mouth centre, right ear, left ear.
MOUTH_KEYPOINT = 3
NUM_KEYPOINTS = 6
TRACK_MIN_IOU = 0.2  # a detection joins the track whose last box it overlaps at least this much


@dataclass
class Detection:
    box: np.ndarray  # (4,) x0 y0 x1 y1, frame pixels
    score: float
    keypoints: np.ndarray | None = None  # (6, 2) frame pixels, BlazeFace order


def detection_size(width: int, height: int) -> tuple[float, tuple[int, int] | None]:
    """(scale, (w, h)) a width x height frame is shrunk to for detection; (1.0, None) when it is small enough.
    The size is kept even, so the video decoder can produce it directly (swscale while decoding is cheaper than
    shrinking RGB frames afterwards)."""
    scale = min(1.0, DETECT_MAX_SIDE_PX / max(width, height))
    if scale == 1.0:
        return 1.0, None
    return scale, (2 * round(width * scale / 2), 2 * round(height * scale / 2))


def _rescale(detections: list[Detection], scale: float) -> None:
    """Detections found on a frame shrunk by ``scale`` -> the full frame's pixels (in place)."""
    for det in detections:
        det.box = det.box / scale
        if det.keypoints is not None:
            det.keypoints = det.keypoints / scale


_STDERR_LOCK = threading.RLock()  # one redirection of fd 2 at a time: interleaved ones could leave it at /dev/null


@contextlib.contextmanager
def quiet_stderr():
    """Silence the C++ side's stderr (file descriptor 2) for the duration; Python's logging is unaffected.
    Threads take turns (the scan meshes in a thread of its own)."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            sys.stderr.flush()
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


class FaceDetector:
    """Finds faces in RGB frames. ``backend``: "mediapipe" (BlazeFace) or "haar" (OpenCV cascade).

    BlazeFace runs its short-range model first (2x faster, faces that fill a good part of the frame, as in
    talking-head footage) and falls back to the full-range model on frames where it finds nothing.
    """

    def __init__(self, backend: str = "mediapipe", min_confidence: float = 0.5):
        self.backend = backend
        self.min_confidence = min_confidence
        if backend == "mediapipe":
            from mediapipe.python.solutions import face_detection

            with quiet_stderr():  # TFLite announces its CPU delegate on stderr at the first frame
                self._near = face_detection.FaceDetection(model_selection=0, min_detection_confidence=min_confidence)
                self._far = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
                blank = np.zeros((64, 64, 3), np.uint8)
                self._near.process(blank)
                self._far.process(blank)
        elif backend == "haar":
            path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
            self._cascade = cv2.CascadeClassifier(path)
        else:
            raise ConfigError(f"unknown face detector {backend!r}", fix="use mediapipe or haar")

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """frame: (H, W, 3) uint8 RGB -> detections in that frame's pixels, best first."""
        scale, size = detection_size(frame.shape[1], frame.shape[0])
        small = frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        if self.backend == "haar":
            found = self._detect_haar(small)
        else:
            found = self._detect_blazeface(self._near, small) or self._detect_blazeface(self._far, small)
        _rescale(found, scale)
        return sorted(found, key=lambda d: -d.score)

    @staticmethod
    def _detect_blazeface(model, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        result = model.process(frame)
        out = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h])
            kps = np.array([[k.x * w, k.y * h] for k in det.location_data.relative_keypoints], dtype=np.float64)
            out.append(Detection(box.astype(np.float64), float(det.score[0]), kps if len(kps) == 6 else None))
        return out

    def _detect_haar(self, frame: np.ndarray) -> list[Detection]:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        faces = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
        # The cascade gives no score; a bigger face is the likelier subject.
        return [Detection(np.array([x, y, x + fw, y + fh], dtype=np.float64), float(fw * fh) / gray.size)
                for (x, y, fw, fh) in faces]

    def close(self) -> None:
        if self.backend == "mediapipe":
            self._near.close()
            self._far.close()

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One face followed through a clip. Arrays cover every frame; NaN where this face was not seen."""

    boxes: np.ndarray  # (T, 4)
    scores: np.ndarray  # (T,)
    keypoints: np.ndarray  # (T, 6, 2)
    last_seen: int = -1
    mesh: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> face-mesh landmarks, where one was run

    @classmethod
    def empty(cls, num_frames: int) -> "Track":
        return cls(np.full((num_frames, 4), np.nan), np.zeros(num_frames),
                   np.full((num_frames, NUM_KEYPOINTS, 2), np.nan))

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.boxes[:, 0])

    @property
    def coverage(self) -> float:
        return float(self.present.mean()) if len(self.boxes) else 0.0

    @property
    def mean_area(self) -> float:
        b = self.boxes[self.present]
        return float(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).mean()) if len(b) else 0.0


class FaceTracker:
    """Links per-frame detections into tracks by overlap with each track's last box (greedy, best IoU first)."""

    def __init__(self, num_frames: int, max_lost_frames: int = 25):
        self.num_frames = num_frames
        self.max_lost = max_lost_frames
        self.tracks: list[Track] = []

    def update(self, frame_index: int, detections: list[Detection]) -> list[Track]:
        """Link one frame's detections; returns the track each detection joined (in their order)."""
        live = [t for t in self.tracks if frame_index - t.last_seen <= self.max_lost]
        pairs = sorted(((iou(t.boxes[t.last_seen], d.box), ti, di) for ti, t in enumerate(live)
                        for di, d in enumerate(detections)), reverse=True)
        joined: dict[int, Track] = {}
        used_t = set()
        for overlap, ti, di in pairs:
            if overlap < TRACK_MIN_IOU or ti in used_t or di in joined:
                continue
            used_t.add(ti)
            joined[di] = live[ti]
            self._put(live[ti], frame_index, detections[di])
        for di, det in enumerate(detections):
            if di not in joined:
                joined[di] = Track.empty(self.num_frames)
                self._put(joined[di], frame_index, det)
                self.tracks.append(joined[di])
        return [joined[di] for di in range(len(detections))]

    @staticmethod
    def _put(track: Track, i: int, det: Detection) -> None:
        if i >= len(track.boxes):  # the frame count was an estimate: grow
            grow = i + 1 - len(track.boxes)
            track.boxes = np.concatenate([track.boxes, np.full((grow, 4), np.nan)])
            track.scores = np.concatenate([track.scores, np.zeros(grow)])
            track.keypoints = np.concatenate([track.keypoints, np.full((grow, NUM_KEYPOINTS, 2), np.nan)])
        track.boxes[i] = det.box
        track.scores[i] = det.score
        if det.keypoints is not None:
            track.keypoints[i] = det.keypoints
        track.last_seen = i

    def finish(self, num_frames: int, min_frames: int = 3) -> list[Track]:
        """Tracks trimmed/padded to ``num_frames``, dropping flickers seen on fewer than ``min_frames`` frames,
        and re-joined across long gaps (a cutaway) when the face comes back where it left."""
        out = []
        for t in merge_returning(self.tracks):
            n = min(num_frames, len(t.boxes))
            boxes = np.full((num_frames, 4), np.nan)
            kps = np.full((num_frames, NUM_KEYPOINTS, 2), np.nan)
            scores = np.zeros(num_frames)
            boxes[:n], kps[:n], scores[:n] = t.boxes[:n], t.keypoints[:n], t.scores[:n]
            track = Track(boxes, scores, kps, t.last_seen, {i: m for i, m in t.mesh.items() if i < num_frames})
            if track.present.sum() >= min_frames:
                out.append(track)
        return sorted(out, key=lambda t: -t.coverage * t.mean_area)


def _ends(track: Track) -> tuple[int, int]:
    seen = np.flatnonzero(~np.isnan(track.boxes[:, 0]))
    return int(seen[0]), int(seen[-1])


def same_place(a: np.ndarray, b: np.ndarray) -> bool:
    """Two boxes plausibly of one face seen apart in time: centres within half a face, sizes within 1.5x."""
    wa, wb = a[2] - a[0], b[2] - b[0]
    ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    return bool(np.linalg.norm(ca - cb) < 0.5 * max(wa, wb) and 1 / 1.5 < wa / wb < 1.5)


def merge_returning(tracks: list[Track]) -> list[Track]:
    """Join track pairs that never overlap in time where the later one starts where the earlier one ended."""
    tracks = sorted(tracks, key=lambda t: _ends(t)[0])
    merged: list[Track] = []
    for t in tracks:
        first, _ = _ends(t)
        for m in merged:
            _, last = _ends(m)
            n = min(len(m.boxes), len(t.boxes))
            if last < first and same_place(m.boxes[last], t.boxes[first]):
                keep = ~np.isnan(t.boxes[:n, 0])
                m.boxes[:n][keep], m.scores[:n][keep] = t.boxes[:n][keep], t.scores[:n][keep]
                m.keypoints[:n][keep] = t.keypoints[:n][keep]
                m.mesh.update(t.mesh)
                m.last_seen = max(m.last_seen, t.last_seen)
                break
        else:
            merged.append(t)
    return merged


def fill_gaps(values: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate NaN runs of at most ``max_gap`` rows that have valid rows on both sides.

    values: (T, ...) float. Leading/trailing runs and longer gaps stay NaN (no face is ever guessed there).
    """
    out = values.copy()
    flat = out.reshape(len(out), -1)
    valid = ~np.isnan(flat[:, 0])
    idx = np.flatnonzero(valid)
    for a, b in zip(idx[:-1], idx[1:]):
        gap = b - a - 1
        if 0 < gap <= max_gap:
            w = (np.arange(1, gap + 1) / (gap + 1))[:, None]
            flat[a + 1:b] = flat[a] * (1 - w) + flat[b] * w
    return out


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over time within each run of valid rows (never across a no-face gap).

    values: (T, ...) float with NaN rows; window: odd number of frames (1 = unchanged).
    """
    if window <= 1:
        return values.copy()
    out = values.copy()
    flat = out.reshape(len(out), -1)
    src = values.reshape(len(values), -1)
    valid = ~np.isnan(src[:, 0])
    half = window // 2
    start = None
    for i in range(len(valid) + 1):
        if i < len(valid) and valid[i]:
            start = i if start is None else start
            continue
        if start is not None:
            run = src[start:i]
            padded = np.concatenate([np.repeat(run[:1], half, 0), run, np.repeat(run[-1:], half, 0)])
            kernel = np.ones(2 * half + 1) / (2 * half + 1)
            flat[start:i] = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(run.shape[1])], 1)
            start = None
    return out


def detect_tracks(video: Path, info: media.VideoInfo, detector: FaceDetector) -> list[Track]:
    """Every face in every frame of a video, linked into tracks (best subject first). Frames are decoded at
    the detector's size already (see :func:`detection_size`)."""
    scale, size = detection_size(info.width, info.height)
    tracker = FaceTracker(info.num_frames)
    n = 0
    for i, frame in enumerate(media.iter_frames(video, size=size)):
        dets = detector.detect(frame)
        _rescale(dets, scale)
        tracker.update(i, dets)
        n = i + 1
        if n % TRIM_EVERY_FRAMES == 0:
            trim_heap()  # freed frames go back to the OS: memory stays flat with the video's length
    return tracker.finish(n, min_frames=min(3, n))  # a face in every frame of a 1- or 2-frame video counts


def detect_still(frame: np.ndarray, detector: FaceDetector) -> list[Track]:
    """The faces of one picture as one-frame tracks (best subject first)."""
    tracker = FaceTracker(1)
    tracker.update(0, detector.detect(frame))
    return tracker.finish(1, min_frames=1)


def subject_squares(track: Track, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gap-filled, smoothed boxes (T, 4), keypoints (T, 6, 2) and crop squares (T, 3) of one face track;
    NaN where no face. ``cfg`` gives max_gap_frames, smooth_frames and face_pad."""
    boxes = smooth(fill_gaps(track.boxes, cfg.max_gap_frames), cfg.smooth_frames)
    kps = smooth(fill_gaps(track.keypoints, cfg.max_gap_frames), cfg.smooth_frames)
    kps = np.where(np.isnan(boxes)[:, :1, None], np.nan, kps)  # keypoints only where the box is known
    return boxes, kps, square_boxes(boxes, cfg.face_pad, kps)


def square_boxes(boxes: np.ndarray, pad: float, keypoints: np.ndarray | None = None) -> np.ndarray:
    """Face boxes -> square crop boxes (T, 3): centre x, centre y, side, all in frame pixels.

    The side is the box's larger edge grown by ``pad`` on each side. The centre is the box centre moved down
    by 10% of the box height so the chin stays inside (BlazeFace boxes end near the lower lip); when the
    mouth keypoint is known, the centre is placed so the mouth sits at 70% of the crop height, which keeps
    the mouth where the models expect it whatever the detector's box shape.
    """
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h) * (1 + 2 * pad)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + 0.1 * h
    if keypoints is not None:
        mouth_y = keypoints[:, MOUTH_KEYPOINT, 1]
        known = ~np.isnan(mouth_y)
        cy = np.where(known, mouth_y - 0.2 * side, cy)
    return np.stack([cx, cy, side], 1)


def crop(frame: np.ndarray, square: np.ndarray, size: int) -> np.ndarray:
    """Cut the square (cx, cy, side) out of frame, resampled to (size, size, 3); edges beyond the frame repeat."""
    cx, cy, side = (float(v) for v in square)
    scale = size / side
    m = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]], dtype=np.float64)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def lower_face_mask(size: int, feather: float = 0.08) -> np.ndarray:
    """(size, size) float32 blend weights for paste-back: 1 over the lower face, 0 at the crop's edges.

    The mask covers the mouth and jaw (the part the generator redraws) and fades out over ``feather`` of
    the side so no box edge shows.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    # An ellipse centred below the middle: mouth, cheeks and chin.
    d = ((xx - 0.5) / 0.36) ** 2 + ((yy - 0.72) / 0.3) ** 2
    mask = np.clip((1.0 - d) / max(feather * 4, 1e-6), 0.0, 1.0)
    mask[: int(size * 0.45)] = 0.0
    k = max(3, int(size * feather) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def paste(frame: np.ndarray, face: np.ndarray, square: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend a generated crop back into the frame: face (S, S, 3) uint8 at square (cx, cy, side) with mask (S, S).

    Only the frame's pixels under the mask's footprint (the lower face, about half the square) are warped and
    blended: everywhere else the weight is 0 and the frame's own pixels stay. A crop is a small part of a
    720p frame, and this runs once per output frame.
    """
    cx, cy, side = (float(v) for v in square)
    h, w = frame.shape[:2]
    out = frame.copy()
    rows, cols = np.flatnonzero(mask.max(1) > 0), np.flatnonzero(mask.max(0) > 0)
    if not len(rows):
        return out
    scale = side / face.shape[0]
    left, top = cx - side / 2, cy - side / 2
    # The footprint in frame pixels, one pixel wider each side for the bilinear warp's reach.
    x0, y0 = max(0, int(np.floor(left + cols[0] * scale)) - 1), max(0, int(np.floor(top + rows[0] * scale)) - 1)
    x1 = min(w, int(np.ceil(left + (cols[-1] + 1) * scale)) + 2)
    y1 = min(h, int(np.ceil(top + (rows[-1] + 1) * scale)) + 2)
    if x1 <= x0 or y1 <= y0:
        return out
    m = np.array([[scale, 0, left - x0], [0, scale, top - y0]], dtype=np.float64)
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(face, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    out[y0:y1, x0:x1] = cv2.blendLinear(frame[y0:y1, x0:x1], warped, 1.0 - alpha, alpha)  # rounded, saturated
    return out
