"""A real-footage training corpus for the sync expert: face mesh, lower-face crops and audio of many clips.

``extract`` turns a folder of talking-face clips (``../shared/data/corpus/grid_s1``, ``lrc_ar``, or a user's
own footage) into one cache file per source: for every 25 fps frame the face mesh (468 landmarks, float16)
and the lower half of the face crop at ``CROP_PX`` (uint8), and for every clip its 16 kHz audio (int16).
Clips without a face in at least half of their frames, or without sound, are left out and listed with why.
The cache is an ``.npz`` of arrays plus a JSON index (no pickles), written to a temp file and renamed.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import audio as A
from . import media
from .errors import DataError, SynclipError
from .lips import lip_track
from .store import write_arrays, write_json_atomic

log = logging.getLogger(__name__)

CROP_PX = 96  # crop side the pixel branch sees (model.input_size); the cache keeps its lower half
MIN_FACE_SHARE = 0.5
CACHE_FORMAT = 1
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg")


@dataclass
class CorpusClip:
    """One clip in memory: per-frame mesh and crops on the 25 fps timeline, and its audio."""

    name: str
    landmarks: np.ndarray  # (T, 468, 3) float32, NaN rows where no mesh
    crops: np.ndarray  # (T, CROP_PX // 2, CROP_PX, 3) uint8 lower half of the face crop, zeros where no face
    wav: np.ndarray  # (T * 640,) float32 16 kHz

    @property
    def num_frames(self) -> int:
        return len(self.landmarks)

    @property
    def present(self) -> np.ndarray:
        return ~np.isnan(self.landmarks[:, 0, 0])


def track_clip(video: Path, detector, mesh_factory: Callable) -> CorpusClip:
    """Detect and track the subject's face, then run the face mesh on its crops, frame by frame."""
    info = media.probe_video(video)
    wav = media.read_audio(video)
    if np.abs(wav).max(initial=0.0) < 1e-4:
        raise DataError("the sound track is silent", path=video, fix="leave this clip out")
    track = lip_track(video, info, detector, mesh_factory, crop_px=CROP_PX)
    if track is None or track.present.mean() < MIN_FACE_SHARE:
        share = 0.0 if track is None else track.present.mean()
        raise DataError(f"a face mesh was found in only {share:.0%} of frames", path=video,
                        fix="leave this clip out")
    n = len(track.landmarks)
    wav = np.pad(wav, (0, max(0, A.frames_to_samples(n) - len(wav))))[:A.frames_to_samples(n)]
    lower = track.crops[:, CROP_PX // 2:]
    return CorpusClip(video.stem, track.landmarks, np.ascontiguousarray(lower), wav.astype(np.float32))


_WORKER: dict = {}


def _init_worker() -> None:
    import cv2

    from .face import FaceDetector
    from .mesh import FaceMesh

    cv2.setNumThreads(1)
    _WORKER["detector"] = FaceDetector()
    _WORKER["mesh"] = FaceMesh


def _work(track: Callable, video: Path):
    try:
        return track(video, _WORKER["detector"], _WORKER["mesh"])
    except SynclipError as e:
        return str(e)
    except Exception as e:  # an odd file must not stop the corpus; the reason is kept
        return f"{video}: unexpected error: {type(e).__name__}: {e}"


def track_videos(videos: list[Path], track: Callable, workers: int) -> Iterator:
    """``track(video, detector, mesh_factory)`` for each video, in order, on ``workers`` processes (each with a
    detector of its own); a video it fails on gives the one-line reason (str) instead. ``track`` must be a
    module-level function (or a partial of one): spawned processes receive it by name."""
    job = partial(_work, track)
    if workers <= 1:
        _init_worker()
        yield from (job(v) for v in videos)
        return
    ctx = multiprocessing.get_context("spawn")  # mediapipe does not survive fork() well
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
        yield from pool.map(job, videos, chunksize=4)


def extract(src_dir: Path, out: Path, *, workers: int = 2, limit: int | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Every video in ``src_dir`` -> the cache file ``out`` (.npz) and ``out``.json (index and rejects)."""
    videos = sorted(p for p in Path(src_dir).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)[:limit]
    if not videos:
        raise DataError("no videos found", path=src_dir, fix="point --src at a folder of talking-face clips")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)  # now, not after minutes of tracking
    clips, rejects = [], []
    for k, item in enumerate(track_videos(videos, track_clip, workers)):
        (rejects if isinstance(item, str) else clips).append(item)
        if progress:
            progress(k + 1, len(videos))
    if not clips:
        raise DataError("no usable clip", path=src_dir, fix="; ".join(rejects[:3]))
    index = save_cache(out, clips, source=str(src_dir))
    index["rejects"] = rejects
    write_json_atomic(out.with_suffix(".json"), index)
    return index


def save_cache(path: Path, clips: list[CorpusClip], source: str) -> dict:
    frames = np.cumsum([0] + [c.num_frames for c in clips])
    arrays = {"frame_offsets": frames.astype(np.int64),
              "landmarks": np.concatenate([c.landmarks for c in clips]).astype(np.float16),
              "crops": np.concatenate([c.crops for c in clips]),
              "audio": np.concatenate([np.round(np.clip(c.wav, -1, 1) * 32767) for c in clips]).astype(np.int16)}
    write_arrays(path, **arrays)
    return {"format": CACHE_FORMAT, "source": source, "names": [c.name for c in clips],
            "num_frames": int(frames[-1]), "crop_px": CROP_PX}


def load_cache(path: Path) -> list[CorpusClip]:
    """The clips of one cache file (see ``extract``)."""
    path = Path(path)
    index_path = path.with_suffix(".json")
    if not path.is_file() or not index_path.is_file():
        raise DataError("corpus cache not found", path=path,
                        fix="run `python benchmarks/corpus_extract.py` to build it from ../shared/data/corpus")
    index = json.loads(index_path.read_text(encoding="utf-8"))
    if index.get("format") != CACHE_FORMAT:
        raise DataError("corpus cache of another format", path=path, fix="extract it again")
    z = np.load(path, allow_pickle=False)
    offs = z["frame_offsets"]
    lms, crops, audio = z["landmarks"], z["crops"], z["audio"]
    out = []
    for k, name in enumerate(index["names"]):
        a, b = int(offs[k]), int(offs[k + 1])
        wav = audio[A.frames_to_samples(a):A.frames_to_samples(b)].astype(np.float32) / 32767
        out.append(CorpusClip(name, lms[a:b].astype(np.float32), crops[a:b], wav))
    return out
