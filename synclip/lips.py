"""Face tracks -> the face mesh of each tracked face, frame by frame (one decoding pass for all faces).

Used alike by the corpus extraction (training) and by scoring, so the expert sees at scoring time exactly
what it saw in training: the crop square of ``face.square_boxes`` (mouth at 70% of the height), the mesh run
on that crop at ``mesh.MESH_INPUT_PX``, and (for the pixel branch) the same crop at the model's input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import media
from .alloc import trim_heap
from .face import crop
from .mesh import MESH_INPUT_PX, NUM_LANDMARKS

TRIM_EVERY_FRAMES = 64


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
    from .mesh import FaceMesh, lip_features

    size = model.dims.input_size if model.uses_pixels else None
    tracks = mesh_tracks(video, squares, FaceMesh, crop_px=size, decode_size=decode_size, scale=scale)
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
