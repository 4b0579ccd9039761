"""LipSyncInference: score a video's lip sync, find and fix its audio offset, dub it, in batches.

Pure functions do the work (``candidate_tracks``, ``face_window_embeddings``, ``score_track``); the class holds the
loaded models and a face detector. Offsets follow syncnet_python's sign: +K frames (40 ms each) means the
audio leads the video; ``sync_video_audio(mode="shift")`` delays such audio by K frames.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from . import audio as A
from . import media
from .alloc import trim_heap
from .checkpoint import (expert_from, generator_from, load_checkpoint, resolve_checkpoint, select_device,
                         stored_data_config)
from .config import DataConfig
from .dub import DubOptions, dub_video
from .errors import CheckpointError, InputError, MediaError, NoFaceError, SynclipError
from .face import FaceDetector, Track, crop, detect_tracks, detection_size, subject_squares
from .lips import LipTrack, dense_mesh, landmark_window_embeddings, lip_window_embeddings, scan_faces
from .mesh import MESH_INPUT_PX, FaceMesh
from .models.lipsync import LipSyncDims, LipSyncExpert
from .models.syncnet import SyncExpert
from .store import atomic_path, write_json_atomic
from .sync import OffsetResult, audio_embeddings, offset_curve, window_valid

log = logging.getLogger(__name__)

MIN_TRACK_COVERAGE = 0.2  # tracks seen on fewer frames are passers-by, not candidates for the speaker
SPEAKER_WINDOW_FRAMES = 2  # the speaker's lips go with the sound as the video plays, give or take 80 ms
FEATURE_BATCH_FRAMES = 64


@dataclass
class TrackScore:
    track: int
    coverage: float
    result: OffsetResult
    score: float  # in-sync probability as the video plays (offset 0)
    score_at_best: float  # ... and once the audio is moved by the found offset
    window_scores: list[float]
    box: list[float]  # the track's median face box (x0, y0, x1, y1), to tell faces apart


def candidate_tracks(video: Path, info: media.VideoInfo, detector: FaceDetector, data_cfg: DataConfig
                     ) -> tuple[list[Track], list[np.ndarray]]:
    """Pass 1: face tracks worth scoring and their smoothed crop squares (T, 3), NaN where absent."""
    tracks = [t for t in detect_tracks(video, info, detector) if t.coverage >= MIN_TRACK_COVERAGE]
    squares = [subject_squares(t, data_cfg)[2] for t in tracks]
    return tracks, squares


def decode_scale(info: media.VideoInfo, squares: list[np.ndarray], size: int, oversample: float = 1.5) -> float:
    """How far frames can be shrunk while decoding for crops of ``size`` px: to the detector's 640 px when
    the faces stay at least ``oversample`` x the crop there (converting and cropping a 720p frame costs more
    than the CNN does), else not at all."""
    scale, _ = detection_size(info.width, info.height)
    sides = np.concatenate([s[:, 2] for s in squares])
    smallest = np.nanpercentile(sides, 10) if np.isfinite(sides).any() else 0.0
    return scale if smallest * scale >= oversample * size else 1.0


@torch.no_grad()
def face_window_embeddings(model: SyncExpert, video: Path, info: media.VideoInfo, squares: list[np.ndarray],
                           device: torch.device) -> list[torch.Tensor]:
    """Pass 2, streamed: crops of every track -> (T-4, D) window embeddings per track (memory: features only)."""
    size = model.dims.input_size
    n_frames = len(squares[0])
    scale = decode_scale(info, squares, size)
    dims = detection_size(info.width, info.height)[1] if scale < 1 else None  # decoded straight at that size
    scaled = [s * scale for s in squares]
    feats: list[list[torch.Tensor]] = [[] for _ in squares]
    pending: list[list[np.ndarray]] = [[] for _ in squares]

    def flush() -> None:
        for k, items in enumerate(pending):
            if items:
                x = torch.from_numpy(np.stack(items)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
                feats[k].append(model.frame_features(x[None])[0].cpu())
                items.clear()
        trim_heap()  # freed frames go back to the OS: memory stays flat with the video's length

    blank = np.zeros((size, size, 3), np.uint8)
    frames = media.iter_frames(video, size=dims)
    for i in range(n_frames):
        frame = next(frames, None)
        for k, sq in enumerate(scaled):
            ok = frame is not None and not np.isnan(sq[i, 0])
            pending[k].append(crop(frame, sq[i], size) if ok else blank)
        if len(pending[0]) >= FEATURE_BATCH_FRAMES:
            flush()
    frames.close()
    flush()
    return [model.window_embed(torch.cat(f)[None].to(device))[0].cpu() for f in feats]


@torch.no_grad()
def score_track(model: SyncExpert | LipSyncExpert, face: torch.Tensor, present: np.ndarray,
                feats: torch.Tensor, max_offset: int, device: torch.device
                ) -> tuple[OffsetResult, float, float, list[float]]:
    """Offset curve of one track, then its sync score as the video plays (offset 0) and at the best offset:
    for a calibrated face-mesh expert, from how far below the curve's median the distance lies there; else
    the mean in-sync probability of the valid windows. Returns (curve result, score, score at best offset,
    window scores: each window's in-sync probability as played)."""
    valid = window_valid(torch.from_numpy(present))
    aud = audio_embeddings(model, feats, -max_offset, len(face) + 2 * max_offset, device).cpu()
    res = offset_curve(face, aud, -max_offset, max_offset, valid)

    def probs_at(offset: int) -> torch.Tensor:
        idx = torch.arange(len(face)) - offset + max_offset
        return torch.sigmoid(model.logits(face.to(device), aud[idx].to(device))).cpu()

    as_played, at_best = probs_at(0), probs_at(res.offset_frames)
    window_scores = [float(p) if v else float("nan") for p, v in zip(as_played, valid)]
    if not valid.any():
        return res, 0.0, 0.0, window_scores
    calibrated = getattr(model, "curve_score", lambda distances, at: None)  # the face-mesh expert: by its curve
    score = calibrated(res.distances, max_offset)
    if score is not None:
        return res, score, calibrated(res.distances, int(np.nanargmin(res.distances))), window_scores
    return res, float(as_played[valid].mean()), float(at_best[valid].mean()), window_scores


def speaking_margin(res: OffsetResult, window: int = SPEAKER_WINDOW_FRAMES) -> float:
    """How well a face's lips go with the sound as the video plays: the deepest the offset curve dips below
    its median within ``window`` frames of offset 0. Which face speaks is decided by this, not by each
    face's deepest dip anywhere in the search: with two faces and one voice, the silent face's curve dips
    somewhere by chance, and a speaker whose mouth moves little dips less. On composites of two shared
    real clips the speaking face was named in 29 of 30 cases this way, 22 of 30 by the deepest dip
    (README). A recording whose sound is off by more than the window for every face is judged by chance."""
    d = np.asarray(res.distances, dtype=np.float64)
    near = [k for k, o in enumerate(res.offsets) if abs(o) <= window and np.isfinite(d[k])]
    if not near or not np.isfinite(d).any():
        return float("-inf")
    return float(np.nanmedian(d) - d[near].min())


def shift_audio(wav: np.ndarray, offset_frames: int) -> np.ndarray:
    """Delay (offset > 0) or advance (offset < 0) audio by whole video frames, keeping its length."""
    n = offset_frames * A.SAMPLES_PER_FRAME
    if n > 0:
        return np.concatenate([np.zeros(n, wav.dtype), wav[:len(wav) - n]])
    if n < 0:
        return np.concatenate([wav[-n:], np.zeros(-n, wav.dtype)])
    return wav.copy()


class LipSyncInference:
    """Load a checkpoint once, then score, fix offsets, dub and batch.

    ``checkpoint_path``: a sync expert (checkpoints/best_model.pth), a generator checkpoint (which carries
    its expert), or a presenter model (``synclip.presenter``; scored with the shipped expert); None (or
    "pretrained"): the real-footage expert that ships with synclip. ``device``: None
    picks CUDA when available. ``detector``: the face detector backend.
    ``max_offset``: the offset search range in frames (training.max_offset_frames).
    """

    def __init__(self, checkpoint_path: str | Path | None = None, device: str | torch.device | None = None,
                 detector: str = "mediapipe", max_offset: int = 15):
        from .presenter import load_presenter, read_presenter

        self.device = select_device(device, setting="--device")
        self.checkpoint_path = resolve_checkpoint(checkpoint_path)
        presenter = read_presenter(self.checkpoint_path) if self.checkpoint_path.is_file() else None
        data = load_checkpoint(resolve_checkpoint(None) if presenter else self.checkpoint_path, map_location="cpu")
        self.kind = "presenter" if presenter else data["kind"]
        self.expert = expert_from(data, self.checkpoint_path, self.device)
        if presenter:
            self.generator = load_presenter(self.checkpoint_path, self.device, presenter)
            self.data_cfg = replace(self.generator.data, detector=detector)
        else:
            self.generator = generator_from(data, self.checkpoint_path, self.device) if self.kind == "generator" \
                else None
            self.data_cfg = replace(stored_data_config(data), detector=detector)
        self.audio_feature = self.expert.dims.audio_feature
        self.detector = FaceDetector(detector, self.data_cfg.min_detection_confidence)
        self.max_offset = max_offset

    def _load_audio(self, video: Path, audio: Path | None, info: media.VideoInfo) -> np.ndarray:
        return A.fit_to_frames(media.read_audio(audio or video), info.num_frames)

    def analyse(self, video_path: str | Path, audio_path: str | Path | None = None) -> tuple[list[TrackScore], dict]:
        """Every face track scored against the audio; the speaker first (``speaking_margin``)."""
        video = Path(video_path)
        info = media.probe_video(video)
        wav = self._load_audio(video, Path(audio_path) if audio_path else None, info)
        if A.is_silent(wav):
            raise MediaError("the audio is silent", path=audio_path or video, fix="give audio with speech in it")
        mesh_only = isinstance(self.expert.dims, LipSyncDims) and self.expert.dims.face_input == "landmarks"
        if mesh_only:  # detection, tracking and the face mesh in one decoding pass
            tracks = [t for t in scan_faces(video, info, self.detector, FaceMesh, self.data_cfg.face_pad)
                      if t.coverage >= MIN_TRACK_COVERAGE]
            squares = [subject_squares(t, self.data_cfg)[2] for t in tracks]
        else:
            tracks, squares = candidate_tracks(video, info, self.detector, self.data_cfg)
        if not tracks:
            raise NoFaceError("no face found in the video", path=video,
                              fix="use footage where a face is visible, frontal, and not tiny")
        n = min(len(s) for s in squares)
        squares = [s[:n] for s in squares]
        feats = A.features_for(wav[:A.frames_to_samples(n)], self.audio_feature)
        if mesh_only:
            meshed = [LipTrack(dense_mesh(t)[:n], None) for t in tracks]
            faces, present = landmark_window_embeddings(self.expert, meshed, self.device)
        elif isinstance(self.expert.dims, LipSyncDims):  # face mesh per track (the dims: exports have them too)
            scale = decode_scale(info, squares, MESH_INPUT_PX, oversample=1.0)  # the mesh sees 192 px at most
            size = detection_size(info.width, info.height)[1] if scale < 1 else None
            faces, present = lip_window_embeddings(self.expert, video, squares, self.device, size, scale)
        else:
            faces = face_window_embeddings(self.expert, video, info, squares, self.device)
            present = [~np.isnan(sq[:, 0]) for sq in squares]
        out = []
        for k, (t, seen, face) in enumerate(zip(tracks, present, faces)):
            if len(face) == 0 or len(seen) < A.SYNC_FRAMES or not window_valid(torch.from_numpy(seen)).any():
                continue  # the lips were never read in 5 frames running: nothing to score on this face
            res, score, best, ws = score_track(self.expert, face, seen, feats, self.max_offset, self.device)
            box = [round(float(v), 1) for v in np.nanmedian(t.boxes, axis=0)]
            out.append(TrackScore(k, t.coverage, res, score, best, ws, box))
        if not out:
            raise NoFaceError("the lips could not be read in any 5 frames running (0.2 s)", path=video,
                              fix="use footage where a face is frontal, sharp and not tiny for a second or more")
        out.sort(key=lambda s: -speaking_margin(s.result))
        return out, {"num_frames": n, "duration_s": n / A.VIDEO_FPS, "source_fps": info.fps}

    def compute_sync_score(self, video_path: str | Path, audio_path: str | Path | None = None) -> tuple[float, dict]:
        """-> (score in [0, 1], details).

        score: how in sync the video plays, in [0, 1] (see ``score_track``; > 0.5 = in sync); details:
        score_at_best_offset (what fix-offset would reach), offset_frames (+ = audio leads, 40 ms each),
        offset_ms, confidence (LSE-C: median - min of the distance curve), min_distance (LSE-D),
        window_scores, face_coverage, speaker (index into tracks: the face whose lips go best with the sound
        as played, see ``speaking_margin``), speaker_box, tracks (every face scored), curve (offsets, distances)."""
        scores, meta = self.analyse(video_path, audio_path)
        best = scores[0]
        details = {
            "score": best.score, "score_at_best_offset": best.score_at_best,
            "offset_frames": best.result.offset_frames,
            "offset_ms": best.result.offset_frames * 1000 // A.VIDEO_FPS, "confidence": best.result.confidence,
            "min_distance": best.result.min_distance, "face_coverage": best.coverage, "speaker": best.track,
            "speaker_box": best.box,
            "num_faces": len(scores), "window_scores": best.window_scores,
            "curve": {"offsets": best.result.offsets, "distances": best.result.distances},
            "tracks": [{"track": s.track, "score": s.score, "offset_frames": s.result.offset_frames,
                        "confidence": s.result.confidence, "coverage": s.coverage, "box": s.box} for s in scores],
            **meta,
        }
        return best.score, details

    def sync_video_audio(self, video_path: str | Path, audio_path: str | Path | None, output_path: str | Path,
                         mode: str | None = None, progress: Callable[[int, int], None] | None = None,
                         options=None) -> tuple[bool, str]:
        """Write an mp4 whose audio matches the lips. mode "shift": move the audio by the found offset;
        "generate": redraw the mouth for the audio (needs a generator checkpoint; the default then).
        ``options``: a ``synclip.dub.DubOptions`` for "generate" (pads, resize factor, smoothing, box...)."""
        mode = mode or ("generate" if self.generator is not None else "shift")
        output = Path(output_path)
        if not output.parent.is_dir():
            raise MediaError("output folder does not exist", path=output.parent, fix="create it first")
        if mode == "generate":
            if self.generator is None:
                raise CheckpointError("mode 'generate' needs a generator checkpoint, this one is a sync expert",
                                      path=self.checkpoint_path, fix="pass checkpoints/generator/best_model.pth")
            if audio_path is None:
                raise MediaError("dubbing needs new audio", path=video_path, fix="give the audio file to dub to")
            return dub_video(self.generator, video_path, audio_path, output, data=self.data_cfg,
                             detector=self.detector, opts=options or DubOptions(), progress=progress)
        if mode != "shift":
            raise InputError(f"mode must be 'shift' or 'generate', not {mode!r}")
        score, details = self.compute_sync_score(video_path, audio_path)
        video = Path(video_path)
        info = media.probe_video(video)
        wav = self._load_audio(video, Path(audio_path) if audio_path else None, info)
        fixed = shift_audio(wav, details["offset_frames"])
        with media.VideoWriter(output, info.width, info.height) as w:
            for i, frame in enumerate(media.iter_frames(video)):
                w.write(frame)
                if progress:
                    progress(i + 1, info.num_frames)
            w.close(fixed)
        return True, (f"shifted the audio by {details['offset_frames']:+d} frames "
                      f"({details['offset_ms']:+d} ms; confidence {details['confidence']:.2f}) -> {output}")

    def stream(self, source: str | Path, audio_chunks: Iterable[np.ndarray], options=None,
               peak_db: float | None = None):
        """Dub ``source`` (video or photo) to audio that arrives in pieces, frame by frame as it comes:
        ``for frame in model.stream("face.mp4", chunks): sock.send(frame.image.tobytes())``.

        audio_chunks: (n,) float32 pieces of any size, 16 kHz mono in [-1, 1]. Yields ``synclip.stream.StreamFrame``
        (index, image (H, W, 3) uint8 RGB, its 640 samples of audio, ...) as soon as the audio window it is drawn
        from has arrived: ``synclip.stream.LOOKAHEAD_MS`` (117.5 ms) after the frame's centre at most. The face
        is found in the whole source first (now, not lazily). ``options``: a DubOptions; ``peak_db``: the
        loudness scale (None: the loudest heard so far; see ``synclip.stream``)."""
        from .stream import Streamer

        if self.generator is None or self.kind == "presenter":
            raise CheckpointError(f"streaming needs a one-stage generator checkpoint, this one is a {self.kind} "
                                  f"model (a presenter dubs whole files: it meshes the source first)",
                                  path=self.checkpoint_path, fix="stream with a generator trained with "
                                                                 "model.generator=unet, or dub the file")
        streamer = Streamer(self.generator, source, data=self.data_cfg, detector=self.detector,
                            opts=options or DubOptions(), peak_db=peak_db)
        return streamer(audio_chunks)

    def batch_process(self, pairs: Iterable[tuple[str | Path, str | Path | None]] | str | Path,
                      output_dir: str | Path | None = None, mode: str = "score",
                      report_path: str | Path | None = None,
                      progress: Callable[[int, int, str], None] | None = None) -> list[dict]:
        """Many (video, audio-or-None) pairs, or a folder of videos. mode: score, shift or generate.
        Bad files are reported in their row (ok=False, error=...) and the batch goes on. Writes a CSV and a
        JSON report (``report_path`` without suffix, default output_dir/report)."""
        if mode not in ("score", "shift", "generate"):
            raise InputError(f"mode must be 'score', 'shift' or 'generate', not {mode!r}")
        items = _pairs(pairs)
        out_dir = Path(output_dir) if output_dir else None
        if mode != "score":
            if out_dir is None:
                raise InputError(f"mode {mode!r} writes videos: give output_dir")
            out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for k, (video, audio) in enumerate(items):
            row = {"video": str(video), "audio": str(audio) if audio else "", "ok": False}
            try:
                if mode == "score":
                    score, d = self.compute_sync_score(video, audio)
                    row.update(score=round(score, 4), offset_frames=d["offset_frames"], offset_ms=d["offset_ms"],
                               confidence=round(d["confidence"], 4), min_distance=round(d["min_distance"], 4),
                               face_coverage=round(d["face_coverage"], 4), ok=True)
                else:
                    target = out_dir / f"{Path(video).stem}{'_' + Path(audio).stem if audio else ''}_synced.mp4"
                    ok, msg = self.sync_video_audio(video, audio, target, mode=mode)
                    row.update(ok=ok, output=str(target), message=msg)
            except SynclipError as e:
                row["error"] = str(e)
            except Exception as e:  # a bug met on an odd file must not stop the batch; the row says so
                log.debug("unexpected failure on %s", video, exc_info=True)
                row["error"] = f"{video}: internal error: {type(e).__name__}: {e} (report it, with this file)"
            rows.append(row)
            if progress:
                progress(k + 1, len(items), row.get("error", ""))
        base = Path(report_path) if report_path else (out_dir / "report" if out_dir else None)
        if base is not None:
            write_report(rows, base)
        return rows


def _pairs(pairs) -> list[tuple[Path, Path | None]]:
    if isinstance(pairs, (str, Path)):
        folder = Path(pairs)
        if not folder.is_dir():
            raise MediaError("not a folder", path=folder, fix="give a folder of videos or a list of pairs")
        return [(p, None) for p in sorted(folder.iterdir()) if p.suffix.lower() in media.VIDEO_EXTS]
    return [(Path(v), Path(a) if a else None) for v, a in pairs]


def write_report(rows: list[dict], base: Path) -> tuple[Path, Path]:
    """rows -> base.csv and base.json (atomic writes)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("video", "audio", "ok"), k))
    csv_path, json_path = base.with_suffix(".csv"), base.with_suffix(".json")
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    write_json_atomic(json_path, rows)
    return csv_path, json_path
