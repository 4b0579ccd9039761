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

import cv2
import numpy as np

from . import media
from .corpus import MIN_FACE_SHARE, track_videos  # clips meshed in fewer frames are left out, as in the corpus
from .errors import DataError
from .lips import lip_track
from .mesh import MOUTH_POINTS, frame_poses, from_template, make_template, to_template
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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)  # now, not after minutes of tracking
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

    def sampler(self, augment: bool = False):
        """``sample(rng, batch)`` -> (targets, references, landmarks), as ``render.fit`` takes it. ``augment``:
        each target (with its landmarks) and each reference moved by a small random similarity transform of
        its own (``jitter``), and both given one random gain: more poses and framings than a few hundred
        frames hold, for a presenter with little footage."""
        usable = np.flatnonzero(self.present)

        def sample(rng: np.random.Generator, batch: int):
            idx = rng.choice(usable, batch)
            refs = np.array([self.reference(rng, int(i)) for i in idx])
            targets, references, landmarks = self.crops[idx], self.crops[refs], self.landmarks[idx]
            if not augment:
                return targets, references, landmarks
            out = [jitter(t, r, lm, rng) for t, r, lm in zip(targets, references, landmarks)]
            return tuple(np.stack(x) for x in zip(*out))
        return sample

    def swap_sampler(self, template: np.ndarray | None = None):
        """``sample(rng, batch)`` -> (targets, references, landmarks) as ``sampler``, but each target's
        mouth points are another frame's of its clip (at least ``reference_gap`` frames away), carried onto
        the target's pose through ``template`` (default: one made from these frames): the mouth a dub would
        ask of that frame, which the frame's own pixels around it do not show. There is no true picture of
        it, so these feed only ``render.shape_loss``."""
        usable = np.flatnonzero(self.present)
        poses = self.poses(template)

        def sample(rng: np.random.Generator, batch: int):
            idx = rng.choice(usable, batch)
            refs = np.array([self.reference(rng, int(i)) for i in idx])
            donors = [self.reference(rng, int(i)) for i in idx]  # another frame of the clip gives the mouth
            landmarks = np.stack([mouth_onto(self.landmarks[i], self.landmarks[j], poses[int(i)], poses[j])
                                  for i, j in zip(idx, donors)])
            return self.crops[idx], self.crops[refs], landmarks
        return sample

    def poses(self, template: np.ndarray | None = None) -> dict[int, tuple]:
        """{frame: (s, R, shift)} of every frame with a mesh onto ``template`` (``mesh.frame_poses``; default
        template: one made from these frames)."""
        usable = np.flatnonzero(self.present)
        template = make_template(self.landmarks[usable[::10]]) if template is None else template
        return {int(usable[t]): pose for t, pose in frame_poses(self.landmarks[usable], template).items()}


def mouth_onto(landmarks: np.ndarray, donor: np.ndarray, pose: tuple, donor_pose: tuple) -> np.ndarray:
    """(468, 3) landmarks with their mouth points replaced by ``donor``'s (another frame of the same face),
    carried from the donor's pose onto theirs (poses as ``mesh.frame_poses`` gives them)."""
    mouth = list(MOUTH_POINTS)
    out = landmarks.copy()
    out[mouth] = from_template(to_template(donor[mouth].astype(np.float64), donor_pose), pose).astype(landmarks.dtype)
    return out


JITTER_SCALE, JITTER_SHIFT, JITTER_DEGREES, JITTER_GAIN = 0.05, 0.03, 3.0, 0.1  # at most: +-5%, +-3% of the side
# Bicubic: bilinear resampling softens every jittered target and the renderer learns that softness (mouth
# sharpness 0.58 / 0.37 on the two 20-s shared presenters, 0.70 / 0.57 bicubic, 0.71 / 0.77 without jitter)
JITTER_INTERPOLATION = cv2.INTER_CUBIC


def _similarity(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random 2x3 similarity about the crop's centre, in pixels."""
    angle = rng.uniform(-JITTER_DEGREES, JITTER_DEGREES)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1 + rng.uniform(-JITTER_SCALE, JITTER_SCALE))
    m[:, 2] += rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, 2) * size
    return m


def jitter(target: np.ndarray, reference: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S, S, 3) target and reference crops and the target's (468, 3) landmarks in crop units -> the same,
    the target and its landmarks moved by one random similarity, the reference by another, both crops scaled
    in brightness by one random gain (one person in one light)."""
    size = target.shape[0]
    m = _similarity(rng, size)
    gain = 1 + rng.uniform(-JITTER_GAIN, JITTER_GAIN)

    def warp(img: np.ndarray, mat: np.ndarray) -> np.ndarray:
        moved = cv2.warpAffine(img, mat, (size, size), flags=JITTER_INTERPOLATION, borderMode=cv2.BORDER_REPLICATE)
        return np.clip(moved.astype(np.float32) * gain, 0, 255).astype(np.uint8)

    lm = landmarks.copy()
    xy = landmarks[:, :2] * size - 0.5  # cv2 places pixel centres at whole numbers, the mesh at half ones
    lm[:, :2] = (xy @ m[:, :2].T + m[:, 2] + 0.5) / size
    lm[:, 2] = landmarks[:, 2] * np.sqrt(abs(np.linalg.det(m[:, :2])))
    return warp(target, m), warp(reference, _similarity(rng, size)), lm.astype(landmarks.dtype)


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
