"""Background jobs for the studio server: records on disk, a bounded queue, worker threads, progress, cancel.

Each job has its own folder ``<root>/<id>/``; the id is 32 hex digits made here, never taken from a client.
The folder holds ``job.json`` (the record, rewritten atomically whenever the status or stage changes) and the
job's files, under names the server chose. A restarted server reads the records back: finished jobs keep
their results; jobs cut off while queued or running are marked failed with the reason.

The work itself is not in this module: a ``Work`` object says a job's stages (``plan``) and does them
(``run``), reporting through :class:`Progress`, which raises :class:`JobCancelled` once the job is cancelled.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Protocol

from .errors import SynclipError
from .store import write_json_atomic

log = logging.getLogger(__name__)

RECORD_NAME = "job.json"
JOB_ID = re.compile(r"[0-9a-f]{32}")
FINISHED = ("done", "failed", "cancelled")
ETA_MIN_PERCENT = 3.0  # below this much progress an ETA is a guess, so none is given


class QueueFull(SynclipError):
    """Every waiting place of the queue is taken."""


class JobBusy(SynclipError):
    """The job is queued or running, and the operation needs it finished."""


class JobCancelled(Exception):
    """Raised inside a job's work when the job has been cancelled (not an error: the job ends 'cancelled')."""


@dataclass
class Job:
    """A job's record: what it was asked (``params``), where it stands, and the files it made (``outputs``:
    role -> file name inside the job's folder)."""

    id: str
    kind: str
    params: dict
    status: str = "queued"  # queued, running, done, failed, cancelled
    stage: str = "queued"
    percent: float = 0.0
    eta_s: float | None = None
    message: str = ""
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    outputs: dict = field(default_factory=dict)
    version: int = 0  # bumped at every change, so watchers know when to send an update

    def public(self) -> dict:
        return asdict(self)


def new_job_id() -> str:
    return uuid.uuid4().hex


def valid_job_id(job_id: str) -> bool:
    return bool(JOB_ID.fullmatch(job_id))


class Work(Protocol):
    def plan(self, job: Job) -> list[tuple[str, float]]:
        """The job's stages in order, each with its share of the whole (shares need not add up to 1)."""

    def run(self, job: Job, folder: Path, progress: Progress) -> dict:
        """Do the job with the files in ``folder``; return its outputs (role -> file name in ``folder``)."""


class Progress:
    """How work reports: ``stage(name)`` on entering a stage of the plan, ``fraction(done, total)`` within it.
    Both raise :class:`JobCancelled` once the job is cancelled."""

    def __init__(self, queue: JobQueue, job: Job, plan: list[tuple[str, float]], cancelled: threading.Event):
        total = sum(w for _, w in plan) or 1.0
        self._starts, acc = {}, 0.0
        for name, weight in plan:
            self._starts[name] = (100.0 * acc / total, 100.0 * weight / total)
            acc += weight
        self._queue, self._job, self._cancelled = queue, job, cancelled
        self._stage = plan[0][0] if plan else "running"
        self._t0 = time.monotonic()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled()

    def stage(self, name: str, message: str = "") -> None:
        self.check()
        self._stage = name
        start, _ = self._starts.get(name, (self._job.percent, 0.0))
        self._queue.update(self._job, stage=name, percent=round(start, 1), eta_s=self._eta(start),
                           message=message, persist=True)

    def fraction(self, done: float, total: float) -> None:
        self.check()
        start, width = self._starts.get(self._stage, (self._job.percent, 0.0))
        pct = start + width * min(max(done / total, 0.0), 1.0) if total > 0 else start
        self._queue.update(self._job, percent=round(pct, 1), eta_s=self._eta(pct))

    def _eta(self, pct: float) -> float | None:
        if pct < ETA_MIN_PERCENT:
            return None
        elapsed = time.monotonic() - self._t0
        return round(elapsed * (100.0 - pct) / pct, 1)


class JobQueue:
    """Jobs on disk under ``root``, run by ``workers`` threads; at most ``max_waiting`` wait for a worker."""

    def __init__(self, root: Path, work: Work, workers: int = 1, max_waiting: int = 8):
        self.root, self.work = Path(root), work
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_waiting = max_waiting
        self._lock = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._waiting: collections.deque[str] = collections.deque()
        self._cancel: dict[str, threading.Event] = {}
        self._stopping = False
        self._load()
        self._threads = [threading.Thread(target=self._serve, name=f"synclip-job-{k}", daemon=True)
                         for k in range(max(1, workers))]
        for t in self._threads:
            t.start()

    # ---- records ----------------------------------------------------------------------------------------
    def folder(self, job_id: str) -> Path:
        if not valid_job_id(job_id):  # the one gate between an id and the filesystem
            raise KeyError(job_id)
        return self.root / job_id

    def _save(self, job: Job) -> None:
        write_json_atomic(self.folder(job.id) / RECORD_NAME, job.public())

    def _load(self) -> None:
        """Records of an earlier run: finished jobs as they were; cut-off ones marked failed."""
        known = {f.name for f in fields(Job)}
        for path in sorted(self.root.glob(f"*/{RECORD_NAME}")):
            if not valid_job_id(path.parent.name):
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                job = Job(**{k: v for k, v in data.items() if k in known})
            except (OSError, ValueError, TypeError) as e:
                log.warning("skipping unreadable job record %s: %s", path, e)
                continue
            if job.id != path.parent.name:
                continue
            if job.status not in FINISHED:
                job.status, job.finished = "failed", time.time()
                job.error = f"the server stopped while this job was {job.stage}; submit it again"
                self._save(job)
            self._jobs[job.id] = job

    # ---- the API the server uses ------------------------------------------------------------------------
    def new_folder(self) -> tuple[str, Path]:
        """A fresh id and its (created) folder, for the caller to put the job's input files in."""
        job_id = new_job_id()
        folder = self.folder(job_id)
        folder.mkdir(parents=True)
        return job_id, folder

    def discard_folder(self, job_id: str) -> None:
        """Remove the folder of a job that was never submitted (its upload was refused)."""
        with self._lock:
            if job_id not in self._jobs:
                shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def submit(self, job: Job) -> Job:
        """Queue a job whose folder holds its inputs; raises QueueFull when ``max_waiting`` jobs wait."""
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"the queue is full ({self.max_waiting} jobs waiting)",
                                fix="try again when a job has finished")
            self._jobs[job.id] = job
            self._cancel[job.id] = threading.Event()
            self._save(job)
            self._waiting.append(job.id)
            self._lock.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: -j.created)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, a running one at its next progress report; finished: unchanged."""
        with self._lock:
            job = self._jobs[job_id]
            if job.status == "queued":
                self._waiting.remove(job_id)
                self._finish(job, "cancelled", message="cancelled before it started")
            elif job.status == "running":
                self._cancel[job_id].set()
            return job

    def delete(self, job_id: str) -> None:
        """Forget a finished job and remove its folder; raises JobBusy while it is queued or running."""
        with self._lock:
            job = self._jobs[job_id]
            if job.status not in FINISHED:
                raise JobBusy(f"job {job_id} is {job.status}", fix="cancel it first, then delete it")
            del self._jobs[job_id]
            self._cancel.pop(job_id, None)
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers: running jobs are cancelled, queued ones stay queued (failed on restart)."""
        with self._lock:
            self._stopping = True
            for ev in self._cancel.values():
                ev.set()
            self._lock.notify_all()
        for t in self._threads:
            t.join(timeout)

    # ---- progress ---------------------------------------------------------------------------------------
    def update(self, job: Job, persist: bool = False, **changes) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(job, k, v)
            job.version += 1
            if persist:
                self._save(job)

    def _finish(self, job: Job, status: str, **changes) -> None:
        """Called with the lock held."""
        job.status, job.finished, job.eta_s = status, time.time(), None
        if status == "done":
            job.percent = 100.0
        for k, v in changes.items():
            setattr(job, k, v)
        job.stage = status
        job.version += 1
        self._save(job)

    # ---- workers ----------------------------------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                job = self._jobs[self._waiting.popleft()]
                job.status, job.stage, job.started = "running", "starting", time.time()
                job.version += 1
                self._save(job)
            self._run(job)

    def _run(self, job: Job) -> None:
        """One job, whatever happens in it: the worker always goes on to the next."""
        try:
            plan = self.work.plan(job)
            progress = Progress(self, job, plan, self._cancel[job.id])
            outputs = self.work.run(job, self.folder(job.id), progress)
            end = ("done", {"outputs": outputs, "message": "finished"})
        except JobCancelled:
            end = (("failed", {"error": "the server stopped while this job was running; submit it again"})
                   if self._stopping else ("cancelled", {"message": "cancelled while running"}))
        except SynclipError as e:
            end = ("failed", {"error": str(e)})
        except Exception as e:  # a bug or a library's crash: the job fails with it, the server goes on
            log.exception("job %s crashed", job.id)
            end = ("failed", {"error": f"internal error ({type(e).__name__}: {str(e)[:300]}); "
                                       "the server goes on, report this with the input files"})
        with self._lock:
            self._finish(job, end[0], **end[1])
