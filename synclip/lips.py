"""Face tracks -> the face mesh of each tracked face, frame by frame.

Two ways in. :func:`mesh_tracks` runs the mesh over known tracks (a second decoding pass after detection): the
corpus extraction (training) and the pixel branch use it, since they need the smoothed crop squares of
``face.subject_squares``. :func:`scan_faces` detects, tracks and meshes in one decoding pass, on the crop
square of each frame's own detection: scoring with the landmark expert needs nothing else, and decoding is a
third of scoring's time. The crop's placement does not reach the expert: ``mesh.lip_features`` maps every
frame onto a template head by a similarity fit, so only the mesh's shape counts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import media
from .alloc import trim_heap
from .background import prefetched
from .face import FaceTracker, Track, crop, square_boxes
from .mesh import MESH_INPUT_PX, NUM_LANDMARKS

TRIM_EVERY_FRAMES = 64
SCAN_DETECT_EVERY = 2  # the scan detects faces on every 2nd frame; the mesh tracks them on every one
SCAN_SQUARE_FOLLOW = 0.5  # each frame the mesh's crop square moves this share of the way to the detection's
SCAN_QUEUE_FRAMES = 8  # frames the detecting thread may run ahead of the mesh
SCAN_MAX_SIDE_PX = 1920  # larger frames are decoded at this size for the one-pass scan (faces stay > 192 px)


@dataclass
class LipTrack:
    landmarks: np.ndarray  # (T, 468, 3) float32 in units of the crop side; NaN rows where no face or no mesh
    crops: np.ndarray | None  # (T, S, S, 3) uint8 crops at crop_px (zeros where no face), when asked for

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.landmarks[:, 0, 0])


def mesh_tracks(video: Path, squares: list[np.ndarray], mesh_factory: Callable, crop_px: int | None = None,
                decode_size: tuple[int, int] | None = None, scale: float = 1.0) -> list[LipTrack]:
    """Run one face mesh per track over the video.

    squares: per track (T, 3) crop squares (cx, cy, side) in source pixels, NaN where the face is absent.
    decode_size / scale: frames may be decoded smaller (``scale`` < 1) when the faces stay large enough.
    """
    n = len(squares[0])
    meshes = [mesh_factory() for _ in squares]
    lms = [np.full((n, NUM_LANDMARKS, 3), np.nan, np.float32) for _ in squares]
    crops = [np.zeros((n, crop_px, crop_px, 3), np.uint8) for _ in squares] if crop_px else None
    frames = media.iter_frames(video, size=decode_size)
    try:
        for i in range(n):
            frame = next(frames, None)
            if frame is None:
                break
            for k, sq in enumerate(squares):
                if np.isnan(sq[i, 0]):
                    continue
                face = crop(frame, sq[i] * scale, MESH_INPUT_PX)
                found = meshes[k].run(face)
                if found is not None:
                    lms[k][i] = found
                if crops is not None:
                    crops[k][i] = crop(frame, sq[i] * scale, crop_px)
            if i % TRIM_EVERY_FRAMES == 0:
                trim_heap()
    finally:
        frames.close()
        for m in meshes:
            m.close()
    return [LipTrack(lms[k], crops[k] if crops else None) for k in range(len(squares))]


def scan_faces(video: Path, info: media.VideoInfo, detector, mesh_factory: Callable, pad: float) -> list[Track]:
    """One decoding pass: the faces of every frame, linked into tracks (as ``face.detect_tracks`` gives them),
    each tracked face meshed on its detection's crop square (``pad`` as ``DataConfig.face_pad``). A track's
    ``mesh`` maps frame -> (468, 3) landmarks in units of that frame's crop side.

    Two threads: one decodes, detects (every SCAN_DETECT_EVERY-th frame) and tracks, the other runs the meshes
    a few frames behind. They overlap only in part (mediapipe's calls mostly take turns under the GIL): on
    60 s of 720p the scan took 15.4 s against 17.3 s for its parts one after another."""
    k = min(1.0, SCAN_MAX_SIDE_PX / max(info.width, info.height))
    size = None if k == 1.0 else (2 * round(info.width * k / 2), 2 * round(info.height * k / 2))
    tracker = FaceTracker(info.num_frames)

    def detected() -> Iterator[tuple[int, np.ndarray, list[tuple[np.ndarray, Track]]]]:
        """(frame index, frame, [(crop square, track)]), on the detecting thread."""
        dets, squares = [], []
        for i, frame in enumerate(media.iter_frames(video, size=size)):
            if i % SCAN_DETECT_EVERY == 0 or not dets:
                dets = detector.detect(frame)
                squares = [square_boxes(d.box[None], pad, None if d.keypoints is None else d.keypoints[None])[0]
                           for d in dets]
                for d in dets:  # the tracker works in source pixels
                    d.box = d.box / k
                    d.keypoints = None if d.keypoints is None else d.keypoints / k
            else:  # in between, the faces stay where they were found (40 ms earlier)
                dets = [replace(d) for d in dets]
            yield i, frame, list(zip(squares, tracker.update(i, dets)))

    meshes: dict[int, tuple[Track, object]] = {}  # id(track) -> (track, its mesh, which follows that face)
    steady: dict[int, np.ndarray] = {}  # id(track) -> the crop square its mesh saw last
    n = 0
    items = prefetched(detected(), depth=SCAN_QUEUE_FRAMES, name="synclip-scan")
    try:
        for i, frame, faces in items:
            for sq, track in faces:
                if id(track) not in meshes:
                    meshes[id(track)] = (track, mesh_factory())
                    steady[id(track)] = sq
                # Each detection's square jitters by a few pixels; the mesh, which tracks the face from crop to
                # crop, reads steadier lips from a square that follows it smoothly (half-way each frame).
                sq = steady[id(track)] = SCAN_SQUARE_FOLLOW * sq + (1 - SCAN_SQUARE_FOLLOW) * steady[id(track)]
                lm = meshes[id(track)][1].run(crop(frame, sq, MESH_INPUT_PX))
                if lm is not None:
                    track.mesh[i] = lm
            n = i + 1
            if n % TRIM_EVERY_FRAMES == 0:
                for key, (track, mesh) in list(meshes.items()):  # a face gone for good frees its mesh
                    if i - track.last_seen > tracker.max_lost:  # (the detecting thread is ahead: it is gone there too)
                        mesh.close()
                        del meshes[key], steady[key]
                trim_heap()
    finally:
        items.close()  # stops the detecting thread before the tracker is read
        for _, mesh in meshes.values():
            mesh.close()
    return tracker.finish(n, min_frames=min(3, n))


def dense_mesh(track: Track) -> np.ndarray:
    """A scanned track's landmarks as (T, 468, 3) float32, NaN rows where the mesh was not found."""
    out = np.full((len(track.boxes), NUM_LANDMARKS, 3), np.nan, np.float32)
    for i, lm in track.mesh.items():
        out[i] = lm
    return out


def lip_track(video: Path, info: media.VideoInfo, detector, mesh_factory: Callable,
              crop_px: int | None = None) -> LipTrack | None:
    """The subject's (best) face track of a video, meshed; None when no face is found."""
    from .config import DataConfig
    from .face import detect_tracks, subject_squares

    tracks = detect_tracks(video, info, detector)
    if not tracks:
        return None
    squares = subject_squares(tracks[0], DataConfig())[2]
    return mesh_tracks(video, [squares], mesh_factory, crop_px)[0]


@torch.no_grad()
def lip_window_embeddings(model, video: Path, squares: list[np.ndarray], device: torch.device,
                          decode_size: tuple[int, int] | None = None, scale: float = 1.0
                          ) -> tuple[list[torch.Tensor], list[np.ndarray]]:
    """The real-footage expert's face side for every track: (T-4, D) window embeddings, and (T,) flags of the
    frames where the mesh was found (a frame without one cannot vouch for its window)."""
    from .mesh import FaceMesh

    size = model.dims.input_size if model.uses_pixels else None
    tracks = mesh_tracks(video, squares, FaceMesh, crop_px=size, decode_size=decode_size, scale=scale)
    return landmark_window_embeddings(model, tracks, device)


@torch.no_grad()
def landmark_window_embeddings(model, tracks: list[LipTrack], device: torch.device
                               ) -> tuple[list[torch.Tensor], list[np.ndarray]]:
    """Meshed tracks (crops too, for a pixel branch) -> the expert's (T-4, D) window embeddings and (T,) flags
    of the frames where the mesh was found."""
    from .mesh import lip_features

    size = model.dims.input_size if model.uses_pixels else None
    template = model.template.cpu().numpy()
    embeddings, present = [], []
    for tr in tracks:
        lips = lip_features(tr.landmarks, template)
        seen = ~np.isnan(lips[:, 0])
        face = {"lips": torch.from_numpy(np.nan_to_num(lips, nan=0.0))[None].to(device)}
        if model.uses_pixels:
            lower = torch.from_numpy(tr.crops[:, size // 2:])[None].to(device)
            face["pixels"] = lower.permute(0, 1, 4, 2, 3).float().div_(255.0)
        embeddings.append(model.face_embed(face)[0].cpu())
        present.append(seen)
    return embeddings, present
