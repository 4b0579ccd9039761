"""The renderer's training data: one presenter's full face crops and face mesh, frame by frame.

``extract`` tracks the subject's face in each clip (``corpus.track_videos``, as the corpus does), and
keeps for every 25 fps frame the whole square face crop at ``crop_px`` (uint8) and the 468 landmarks in
units of that crop's side (float16). Unlike the expert's corpus cache (lower halves at 96 px, plus audio),
the renderer needs the upper half too (it is the part it sees) and a larger side; it needs no audio.
Written as ``.npz`` (arrays only) + ``.json`` index, each to a temp file and renamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from . import media
from .corpus import MIN_FACE_SHARE, track_videos  # clips meshed in fewer frames are left out, as in the corpus
from .errors import DataError
from .lips import lip_track
from .store import write_arrays, write_json_atomic

CACHE_FORMAT = 1


@dataclass
class FaceClip:
    name: str
    crops: np.ndarray  # (T, S, S, 3) uint8 RGB face crops, zeros where no face
    landmarks: np.ndarray  # (T, 468, 3) float32 in units of the crop side, NaN rows where no mesh

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.landmarks[:, 0, 0])


def track_faces(video: Path, detector, mesh_factory: Callable, crop_px: int) -> FaceClip:
    track = lip_track(video, media.probe_video(video), detector, mesh_factory, crop_px=crop_px)
    if track is None or track.present.mean() < MIN_FACE_SHARE:
        share = 0.0 if track is None else track.present.mean()
        raise DataError(f"a face mesh was found in only {share:.0%} of frames", path=video, fix="leave it out")
    return FaceClip(video.stem, track.crops, track.landmarks)


def extract(videos: list[Path], out: Path, crop_px: int, *, workers: int = 2,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """The given clips -> ``out`` (.npz: frame_offsets, crops, landmarks) and ``out``.json (names, rejects)."""
    if not videos:
        raise DataError("no videos to extract", fix="check the corpus folder and the names asked for")
    clips, rejects = [], []
    for k, item in enumerate(track_videos(list(videos), partial(track_faces, crop_px=crop_px), workers)):
        (rejects if isinstance(item, str) else clips).append(item)
        if progress:
            progress(k + 1, len(videos))
    if not clips:
        raise DataError("no usable clip", fix="; ".join(rejects[:3]))
    offsets = np.cumsum([0] + [len(c.crops) for c in clips]).astype(np.int64)
    write_arrays(out, frame_offsets=offsets, crops=np.concatenate([c.crops for c in clips]),
                 landmarks=np.concatenate([c.landmarks for c in clips]).astype(np.float16))
    index = {"format": CACHE_FORMAT, "crop_px": crop_px, "names": [c.name for c in clips],
             "num_frames": int(offsets[-1]), "rejects": rejects, "sources": sorted(str(v) for v in videos)}
    write_json_atomic(out.with_suffix(".json"), index)
    return index


def load_faces(path: Path, names: list[str] | None = None) -> dict[str, FaceClip]:
    """{name: FaceClip} of a cache written by ``extract`` (only ``names`` when given)."""
    path = Path(path)
    index_path = path.with_suffix(".json")
    if not path.is_file() or not index_path.is_file():
        raise DataError("renderer cache not found", path=path, fix="run `python benchmarks/real_render.py --extract`")
    index = json.loads(index_path.read_text(encoding="utf-8"))
    if index.get("format") != CACHE_FORMAT:
        raise DataError("renderer cache of another format", path=path, fix="extract it again")
    with np.load(path, allow_pickle=False) as z:
        offs, crops, lms = z["frame_offsets"], z["crops"], z["landmarks"]
    wanted = set(index["names"] if names is None else names)
    out = {}
    for k, name in enumerate(index["names"]):
        if name in wanted:
            a, b = int(offs[k]), int(offs[k + 1])
            out[name] = FaceClip(name, crops[a:b], lms[a:b].astype(np.float32))
    return out


class Frames:
    """The frames of some clips in one array, where each clip starts, and how training draws from them."""

    def __init__(self, clips: list[FaceClip], reference_gap: int = 10):
        self.names = [c.name for c in clips]
        self.crops = np.concatenate([c.crops for c in clips])
        self.landmarks = np.concatenate([c.landmarks for c in clips])
        self.starts = np.cumsum([0] + [len(c.crops) for c in clips])
        self.clip_of = np.repeat(np.arange(len(clips)), np.diff(self.starts))
        self.present = ~np.isnan(self.landmarks[:, 0, 0])
        self.reference_gap = reference_gap  # frames between a frame and its reference: another mouth

    def reference(self, rng: np.random.Generator, i: int) -> int:
        """Another frame with a face from the same clip, at least ``reference_gap`` frames from i."""
        a, b = self.starts[self.clip_of[i]], self.starts[self.clip_of[i] + 1]
        choices = [j for j in range(a, b) if abs(j - i) >= self.reference_gap and self.present[j]]
        return int(rng.choice(choices)) if choices else i

    def sampler(self):
        """``sample(rng, batch)`` -> (targets, references, landmarks), as ``render.fit`` takes it."""
        usable = np.flatnonzero(self.present)

        def sample(rng: np.random.Generator, batch: int):
            idx = rng.choice(usable, batch)
            refs = np.array([self.reference(rng, int(i)) for i in idx])
            return self.crops[idx], self.crops[refs], self.landmarks[idx]
        return sample


def split_faces(clips: dict[str, FaceClip], split: dict, part: str) -> list[FaceClip]:
    """The clips (or, for a time split, clip pieces) of one part of ``datasets.make_split``'s split."""
    if split["by"] == "clip":
        return [clips[n] for n in split[part] if n in clips]
    out = []
    for name, lo, hi in split[part]:  # shares of the clip's length
        if name in clips:
            c = clips[name]
            a, b = round(lo * len(c.crops)), round(hi * len(c.crops))
            out.append(FaceClip(f"{name}[{a}:{b}]", c.crops[a:b], c.landmarks[a:b]))
    return out
