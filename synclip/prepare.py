"""Raw clips -> processed clips + a JSON index + a rejects log (step 2 of the user's path).

For each ``videos/NAME.*`` (paired with ``audios/NAME.*`` when present, else the video's own sound):
pass 1 decodes small frames and finds/tracks faces; the subject's track is gap-filled and smoothed; pass 2
decodes full frames and cuts square crops from the smoothed track. Two passes keep memory flat however long
the video is. Each clip becomes one ``NAME.npz`` (arrays only, no pickles), written to a temp file and renamed.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from . import audio as A
from . import media, store
from .alloc import trim_heap
from .config import Config, DataConfig
from .errors import DataError, NoFaceError, SynclipError
from .face import TRIM_EVERY_FRAMES, FaceDetector, crop, detect_tracks, subject_squares

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    video: Path
    audio: Path | None  # None: the video's own sound track


@dataclass
class Outcome:
    name: str
    video: Path
    status: str  # processed, skipped, rejected
    reason: str = ""
    entry: dict = field(default_factory=dict)


def find_jobs(videos_dir: Path, audios_dir: Path) -> tuple[list[Job], list[Outcome]]:
    """Pair videos with audio files by stem. Returns (jobs, early rejects such as duplicate names)."""
    if not videos_dir.is_dir():
        raise DataError("videos folder not found", path=videos_dir,
                        fix="run `synclip setup` and put your clips there, or pass --videos")
    audios = {}
    if audios_dir.is_dir():
        for p in sorted(audios_dir.iterdir()):
            if p.suffix.lower() in media.AUDIO_EXTS and p.is_file():
                audios.setdefault(p.stem, p)
    jobs: dict[str, Job] = {}
    rejects = []
    for p in sorted(videos_dir.iterdir()):
        if p.suffix.lower() not in media.VIDEO_EXTS or p.name.startswith("."):
            continue
        if not p.is_file():  # a folder, a broken or looping link, a pipe: nothing to read (a pipe would hang)
            rejects.append(Outcome(p.stem, p, "rejected", "not a regular file (a folder, a broken link or a pipe); "
                                   "replace it with the video file itself"))
            continue
        if p.stem in jobs:
            rejects.append(Outcome(p.stem, p, "rejected", f"another video is also named {p.stem!r} "
                                   f"({jobs[p.stem].video.name}); rename one"))
            continue
        jobs[p.stem] = Job(p.stem, p, audios.get(p.stem))
    return list(jobs.values()), rejects


def source_signature(job: Job, cfg: DataConfig) -> dict:
    """What decides a clip's output: its files' sizes and times and the settings that shape the crops."""
    def stat(p: Path | None) -> list | None:
        if p is None:
            return None
        s = p.stat()
        return [s.st_size, s.st_mtime_ns]

    return {"video": stat(job.video), "audio": stat(job.audio), "format": store.FORMAT_VERSION,
            "settings": [cfg.crop_size, cfg.face_pad, cfg.detector, cfg.min_detection_confidence,
                         cfg.max_gap_frames, cfg.smooth_frames]}


def encode_crops(video: Path, squares: np.ndarray, size: int, spool: Path) -> np.ndarray:
    """Pass 2: JPEG bytes of every crop appended to the file ``spool``; returns offsets (T+1,) into it.

    Frames without a face get no bytes. Spooling to disk keeps memory flat however long the video is.
    """
    offsets = [0]
    frames = media.iter_frames(video)
    with open(spool, "wb") as out:
        for i in range(len(squares)):
            frame = next(frames, None)
            sq = squares[i]
            data = b""
            if frame is not None and not np.isnan(sq[0]):
                data = store.encode_crop(crop(frame, sq, size))
            out.write(data)
            offsets.append(offsets[-1] + len(data))
            if i % TRIM_EVERY_FRAMES == 0:
                trim_heap()
    frames.close()
    return np.asarray(offsets, dtype=np.int64)


def load_clip_audio(job: Job, info: media.VideoInfo, cfg: DataConfig) -> np.ndarray:
    """16 kHz mono audio cut or padded to the video's length; rejects length mismatches beyond tolerance."""
    wav = media.read_audio(job.audio or job.video)
    mismatch_s = abs(len(wav) - A.frames_to_samples(info.num_frames)) / A.SAMPLE_RATE_HZ
    if mismatch_s > cfg.max_length_mismatch_s:
        raise DataError(f"video lasts {info.duration_s:.2f} s but its audio {len(wav) / A.SAMPLE_RATE_HZ:.2f} s",
                        path=job.audio or job.video,
                        fix="trim them to the same length or raise data.max_length_mismatch_s")
    return A.fit_to_frames(wav, info.num_frames)


def process_clip(job: Job, cfg: DataConfig, out_dir: Path, detector: FaceDetector) -> dict:
    """One clip end to end; returns its index entry. Raises SynclipError kinds for a reason to reject."""
    t0 = time.perf_counter()
    info = media.probe_video(job.video)
    if info.duration_s < cfg.min_seconds:
        raise DataError(f"too short: {info.duration_s:.2f} s", path=job.video,
                        fix=f"clips need at least data.min_seconds = {cfg.min_seconds} s")
    wav = load_clip_audio(job, info, cfg)
    tracks = detect_tracks(job.video, info, detector)
    num_frames = min(info.num_frames, len(tracks[0].boxes)) if tracks else info.num_frames
    coverage = tracks[0].coverage if tracks else 0.0
    if coverage < cfg.min_face_coverage:
        raise NoFaceError(f"a face was found in only {coverage:.0%} of frames", path=job.video,
                          fix=f"use footage that shows one face (data.min_face_coverage = {cfg.min_face_coverage})")
    boxes, kps, squares = subject_squares(tracks[0], cfg)
    boxes, kps, squares = boxes[:num_frames], kps[:num_frames], squares[:num_frames]
    wav = wav[: A.frames_to_samples(num_frames)]
    mel = A.log_mel(wav).numpy().astype(np.float32)
    mfcc = A.mfcc(wav).numpy().astype(np.float32)
    out = out_dir / f"{job.name}.npz"
    spool = out_dir / f".{job.name}.tmp.jpeg"
    try:
        offsets = encode_crops(job.video, squares, cfg.crop_size, spool)
        present = offsets[1:] > offsets[:-1]
        store.write_npz(out, spool, jpeg_offsets=offsets, present=present, boxes=boxes.astype(np.float32),
                        squares=squares.astype(np.float32), keypoints=kps.astype(np.float32), mel=mel, mfcc=mfcc)
    finally:
        spool.unlink(missing_ok=True)
    return {"name": job.name, "file": out.name, "video": str(job.video),
            "audio": str(job.audio) if job.audio else None, "num_frames": int(num_frames),
            "fps": A.VIDEO_FPS, "source_fps": info.fps, "width": info.width, "height": info.height,
            "duration_s": round(num_frames / A.VIDEO_FPS, 3), "face_coverage": round(float(present.mean()), 4),
            "num_faces": len(tracks), "crop_size": cfg.crop_size, "num_mel": int(len(mel)),
            "seconds_to_process": round(time.perf_counter() - t0, 2)}


# Worker processes keep one detector each (mediapipe graphs are not picklable and slow to build).
_WORKER: dict = {}


def _init_worker(cfg: DataConfig) -> None:
    cv2.setNumThreads(1)
    _WORKER["detector"] = FaceDetector(cfg.detector, cfg.min_detection_confidence)


def _run_job(job: Job, cfg: DataConfig, out_dir: Path, signature: dict) -> Outcome:
    try:
        entry = process_clip(job, cfg, out_dir, _WORKER["detector"])
        entry["signature"] = signature
        return Outcome(job.name, job.video, "processed", entry=entry)
    except SynclipError as e:  # the line names the video; name the other file too when that one is at fault
        where = f"{e.path}: " if e.path is not None and e.path != job.video else ""
        return Outcome(job.name, job.video, "rejected", f"{where}{e.reason}" + (f" ({e.fix})" if e.fix else ""))
    except Exception as e:  # a bug or an odd file must not stop the batch; the reason is kept
        log.debug("unexpected failure on %s", job.video, exc_info=True)  # the traceback only with --debug
        return Outcome(job.name, job.video, "rejected", f"unexpected error: {type(e).__name__}: {e}")


def prepare(cfg: Config, *, force: bool = False, workers: int | None = None,
            on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Process every clip under cfg.data.videos_dir; returns one Outcome per video found.

    The index is rewritten after each clip so an interrupted run keeps what it finished; a re-run skips
    clips whose files and settings are unchanged (``force`` redoes them).
    """
    d = cfg.data
    out_dir = Path(d.processed_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.tmp*"):  # leftovers of an interrupted run
        stale.unlink(missing_ok=True)
    jobs, outcomes = find_jobs(Path(d.videos_dir), Path(d.audios_dir))
    index = store.read_index(out_dir)
    clips: dict = index["clips"]
    todo = []
    for job in jobs:
        sig = source_signature(job, d)
        old = clips.get(job.name)
        if not force and old and old.get("signature") == sig and (out_dir / old["file"]).is_file():
            outcomes.append(Outcome(job.name, job.video, "skipped", entry=old))
        else:
            todo.append((job, sig))
    for o in outcomes:
        if on_done:
            on_done(o)
    names = {j.name for j in jobs}
    for gone in [n for n in clips if n not in names]:  # sources removed since the last run
        del clips[gone]
    rejects: list[Outcome] = [o for o in outcomes if o.status == "rejected"]

    def record(o: Outcome) -> None:
        outcomes.append(o)
        if o.status == "processed":
            clips[o.name] = o.entry
        else:
            clips.pop(o.name, None)
            rejects.append(o)
        store.write_index(out_dir, clips)
        if on_done:
            on_done(o)

    workers = max(1, min(workers or d.workers, len(todo)))
    for o in _run_all(todo, d, out_dir, workers):
        record(o)
    store.write_index(out_dir, clips)
    (out_dir / store.REJECTS_NAME).write_text("".join(f"{o.video}\t{o.reason}\n" for o in rejects), encoding="utf-8")
    return outcomes


def _run_all(todo: list, cfg: DataConfig, out_dir: Path, workers: int) -> Iterator[Outcome]:
    if not todo:
        return
    if workers == 1:
        _init_worker(cfg)
        for job, sig in todo:
            yield _run_job(job, cfg, out_dir, sig)
        return
    ctx = multiprocessing.get_context("spawn")  # mediapipe and torch do not survive fork() well
    pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg,))
    try:
        futures = [pool.submit(_run_job, job, cfg, out_dir, sig) for job, sig in todo]
        for fut in cf.as_completed(futures):
            yield fut.result()
    finally:  # Ctrl+C: stop the workers; their temp files are removed on the next run
        pool.shutdown(wait=True, cancel_futures=True)
