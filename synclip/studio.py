"""The work behind the studio server's jobs: text or speech in, presenter video and a sync report out.

A ``dub`` job: (text -> speech with :func:`synclip.tts.speak`) -> :func:`synclip.dub.dub_video` (the one
dubbing door, with the generator and the face settings it was trained with, as ``synclip dub`` calls it) ->
the result scored by :class:`synclip.infer.LipSyncInference` (as ``synclip score`` does) -> ``report.json``.
A ``score`` job: the scorer on an uploaded video (+ audio).

The report: score, offset (frames, ms; + = audio leads), confidence, the offset search curve (distance per
offset) and the sync score per second of the video (the window scores averaged over each second).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import audio as A
from .errors import ConfigError, InputError, SynclipError
from .jobs import Job, Progress
from .store import write_json_atomic

LANGS = ("zh", "en")


@dataclass(frozen=True)
class StudioSettings:
    """What ``synclip serve`` is started with: where jobs live, the models, and the limits on uploads."""

    data_dir: Path = Path("studio")  # job folders go under data_dir/jobs
    generator_checkpoint: Path = Path("checkpoints/generator/best_model.pth")  # dubbing's generator
    score_checkpoint: str | None = None  # the sync expert of reports; None: the one shipped with synclip
    device: str | None = None  # cpu, cuda, cuda:N; None: cuda when available
    detector: str = "mediapipe"
    max_offset: int = 15  # offset search range of reports, frames
    max_upload_mb: float = 200.0  # one request's body; more answers 413
    max_media_s: float = 300.0  # longest video or audio accepted; longer answers 422
    max_text_chars: int = 5000  # longest script accepted; longer answers 422
    workers: int = 1  # jobs run at once (each holds its own models)
    max_waiting: int = 8  # jobs that may wait for a worker; one more answers 503
    score_results: bool = True  # score every dub's result (the report); off saves that time

    def __post_init__(self):
        ranges = {"--max-upload-mb": self.max_upload_mb > 0, "--max-seconds": self.max_media_s > 0,
                  "--max-text-chars": self.max_text_chars > 0, "--workers": self.workers >= 1,
                  "--queue": self.max_waiting >= 0}
        bad = [flag for flag, ok in ranges.items() if not ok]
        if bad:
            raise ConfigError(f"{', '.join(bad)} out of range",
                              fix="the limits and --workers must be above 0, --queue 0 or more")


def jsonable(value):
    """NaN and infinities -> None, numpy scalars -> Python: JSON a browser's JSON.parse accepts."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def per_second(window_scores: list[float], num_frames: int) -> list[float | None]:
    """Mean in-sync probability of each whole or part second of the video. Window k covers frames k..k+4
    and is counted in the second of its centre frame k+2; windows without a face (NaN) are left out."""
    seconds = max(1, -(-num_frames // A.VIDEO_FPS))
    sums, counts = np.zeros(seconds), np.zeros(seconds)
    for k, value in enumerate(window_scores):
        if value is None or not math.isfinite(value):
            continue
        s = min((k + 2) // A.VIDEO_FPS, seconds - 1)
        sums[s] += value
        counts[s] += 1
    return [float(sums[s] / counts[s]) if counts[s] else None for s in range(seconds)]


def sync_report(details: dict) -> dict:
    """``LipSyncInference.compute_sync_score`` details -> the report the server writes and the page draws."""
    keep = ("score", "score_at_best_offset", "offset_frames", "offset_ms", "confidence", "min_distance",
            "face_coverage", "num_faces", "duration_s", "num_frames")
    report = {k: details[k] for k in keep if k in details}
    report["curve"] = details["curve"]
    report["per_second"] = per_second(details["window_scores"], details["num_frames"])
    report["offset_sign"] = "+ = the audio leads the video, in 40 ms frames"
    return jsonable(report)


class Studio:
    """The server's ``Work``: plans and runs dub and score jobs. Models are loaded on first use and kept, one
    set per worker thread (the face detector inside the scorer is not shared between threads)."""

    def __init__(self, settings: StudioSettings):
        self.settings = settings
        self._models = threading.local()

    def plan(self, job: Job) -> list[tuple[str, float]]:
        if job.kind == "score":
            return [("load", 1.0), ("score", 9.0)]
        stages = [("speech", 2.0)] if job.params.get("text") else []
        stages += [("load", 0.5), ("dub", 6.0)]
        return stages + ([("score", 2.0)] if self.settings.score_results else [])

    def run(self, job: Job, folder: Path, progress: Progress) -> dict:
        try:
            if job.kind == "score":
                return self._score_job(job, folder, progress)
            if job.kind == "dub":
                return self._dub_job(job, folder, progress)
            raise InputError(f"unknown job kind {job.kind!r}")
        except SynclipError as e:
            raise _as_uploaded(e, job, folder) from e

    # ---- models -----------------------------------------------------------------------------------------
    def _generator(self):
        from .checkpoint import select_device
        from .presenter import load_dub_model

        if getattr(self._models, "generator", None) is None:
            s = self.settings
            generator, trained_on = load_dub_model(s.generator_checkpoint, select_device(s.device, "--device"))
            self._models.generator = generator, replace(trained_on, detector=s.detector)
        return self._models.generator

    def _scorer(self):
        from .infer import LipSyncInference

        if getattr(self._models, "scorer", None) is None:
            s = self.settings
            self._models.scorer = LipSyncInference(s.score_checkpoint, device=s.device, detector=s.detector,
                                                   max_offset=s.max_offset)
        return self._models.scorer

    # ---- jobs -------------------------------------------------------------------------------------------
    def _dub_job(self, job: Job, folder: Path, progress: Progress) -> dict:
        from .dub import DubOptions, dub_video

        p, outputs = job.params, {}
        if p.get("text"):
            progress.stage("speech")
            speech = _speak(p["text"], p.get("lang", "en"), folder / "speech.wav", p.get("voice"),
                            float(p.get("rate", 1.0)))
            outputs["speech"] = speech.name
            audio = speech
        else:
            audio = folder / p["audio"]
        progress.stage("load")
        generator, data = self._generator()
        progress.stage("dub")
        opts = DubOptions(static=bool(p.get("static", False)), allow_silence=bool(p.get("allow_silence", False)))
        dub_video(generator, folder / p["source"], audio, folder / "result.mp4", data=data, opts=opts,
                  progress=progress.fraction)
        outputs["result"] = "result.mp4"
        if self.settings.score_results:
            progress.stage("score")
            try:
                _, details = self._scorer().compute_sync_score(folder / "result.mp4")
                report = sync_report(details)
            except SynclipError as e:  # the video is made; only its report is missing, and says why
                report = {"score": None, "error": f"the result could not be scored: {e.reason}",
                          "curve": {"offsets": [], "distances": []}, "per_second": []}
            write_json_atomic(folder / "report.json", report)
            outputs["report"] = "report.json"
        return outputs

    def _score_job(self, job: Job, folder: Path, progress: Progress) -> dict:
        p = job.params
        progress.stage("load")
        scorer = self._scorer()
        progress.stage("score")
        audio = folder / p["audio"] if p.get("audio") else None
        _, details = scorer.compute_sync_score(folder / p["source"], audio)
        write_json_atomic(folder / "report.json", sync_report(details))
        return {"report": "report.json"}


def _as_uploaded(e: SynclipError, job: Job, folder: Path) -> SynclipError:
    """The error naming the file as the client uploaded it, not the server's copy in the job folder."""
    names = {job.params.get("source"): job.params.get("source_name"), job.params.get("audio"):
             job.params.get("audio_name"), "speech.wav": "the spoken text", "result.mp4": "the dubbed result"}
    if e.path is None or e.path.parent != folder or not names.get(e.path.name):
        return e
    shown = names[e.path.name]
    return type(e)(e.reason.replace(str(e.path), shown), path=shown, fix=e.fix)


def _speak(text: str, lang: str, out_wav: Path, voice: str | None, rate: float) -> Path:
    """Text -> a wav through synclip.tts (imported here: the server runs without it for audio uploads)."""
    try:
        from . import tts
    except ImportError as e:
        raise InputError("text input needs synclip.tts, which this installation lacks",
                         fix="upload a recorded voice instead of text") from e
    return Path(tts.speak(text, lang, out_wav, voice=voice, rate=rate))
