"""``synclip serve``: the studio's HTTP API and web page (FastAPI), on 127.0.0.1 by default.

Routes (the OpenAPI description is at ``/openapi.json``):
  GET  /                         the web page (its scripts and styles from /static/, all inside synclip)
  GET  /health                   limits, queue, whether dubbing and text input are ready
  GET  /voices                   the text-to-speech voices installed here
  POST /jobs                     a presenter video or photo + an audio file or text -> a dub job (202)
  POST /score                    a video (+ audio) -> a score job (202)
  GET  /jobs, /jobs/{id}         job records: status, stage, percent, ETA, error, files
  GET  /jobs/{id}/events         the same record as server-sent events, at every change, until it ends
  GET  /jobs/{id}/files/{role}   source, audio, speech, result (mp4) or report (JSON)
  POST /jobs/{id}/cancel; DELETE /jobs/{id}
Every error is JSON ``{"error": "one line naming the file or field and what to do"}``. No name or path a
client sends reaches the filesystem: uploads are stored under names the server chooses (the client's name
gives only the extension, checked against a list), and job ids are checked to be 32 hex digits first.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import logging
import unicodedata
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from . import __version__, media
from .jobs import FINISHED, Job, JobBusy, JobQueue, QueueFull, valid_job_id
from .studio import LANGS, Studio, StudioSettings
from .uploads import ApiError, BodyLimit, probe_audio_s, probe_source, save_upload

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent / "web"
STATIC = {"studio.js": "text/javascript", "studio.css": "text/css", "icon.svg": "image/svg+xml"}
FILE_ROLES = ("source", "audio", "speech", "result", "report")
EVENT_POLL_S = 0.05
KEEPALIVE_S = 15.0
RATE_RANGE = (0.5, 2.0)


def create_app(settings: StudioSettings, work=None) -> FastAPI:
    """The studio app. ``work``: what runs the jobs (default: a :class:`~synclip.studio.Studio`)."""
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["queue"] = JobQueue(Path(settings.data_dir) / "jobs", work or Studio(settings),
                                  workers=settings.workers, max_waiting=settings.max_waiting)
        yield
        state["queue"].stop()

    app = FastAPI(title="synclip studio", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Lip-sync dubbing and scoring jobs. Offsets: + = the audio leads the video, "
                              "in 40 ms frames. Every error is JSON {\"error\": \"...\"}.")
    app.add_middleware(BodyLimit, max_mb=settings.max_upload_mb)
    _add_error_handlers(app)
    queue = lambda: state["queue"]  # noqa: E731  (made in lifespan, after the routes are declared)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((WEB_DIR / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> FileResponse:
        if name not in STATIC:
            raise ApiError(404, f"no static file {name!r}")
        return FileResponse(WEB_DIR / name, media_type=STATIC[name])

    @app.get("/health", summary="limits, queue and readiness")
    def health() -> dict:
        q = queue()
        gen = Path(settings.generator_checkpoint)
        return {"ok": True, "version": __version__, "dub_ready": gen.is_file(),
                "dub_problem": None if gen.is_file() else f"no generator checkpoint at {gen}: train one "
                               "with `synclip train --stage generator` or start with --checkpoint",
                "text_ready": _tts_available(), "langs": list(LANGS),
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_media_s": settings.max_media_s,
                           "max_text_chars": settings.max_text_chars},
                "queue": {"waiting": q.waiting(), "max_waiting": q.max_waiting, "workers": settings.workers}}

    @app.get("/voices", summary="the text-to-speech voices installed here (for the 'voice' field of POST /jobs)")
    def voices() -> dict:
        if not _tts_available():
            return {"voices": []}
        from . import tts

        return {"voices": [{"id": v.id, "lang": v.lang, "description": v.description, "licence": v.licence}
                           for v in tts.list_voices()]}

    @app.post("/jobs", status_code=202, summary="dub a presenter video or photo to an audio file or text")
    def create_dub(face: UploadFile = File(..., description="presenter video (mp4 mov avi mkv webm) or photo "
                                                            "(jpg png bmp webp)"),
                   audio: UploadFile | None = File(None, description="speech: wav mp3 m4a flac ogg aac, or a "
                                                                     "video's sound track"),
                   text: str | None = Form(None, description="script to speak instead of an audio file"),
                   lang: Literal["zh", "en"] = Form("en"), voice: str | None = Form(None),
                   rate: float = Form(1.0, description="speaking rate, 0.5-2.0"),
                   static: bool = Form(False, description="use only the first frame of the video")) -> dict:
        audio = audio if audio is not None and audio.filename else None
        text = (text or "").strip() or None
        if (audio is None) == (text is None):
            raise ApiError(422, "give either an audio file (field 'audio') or a script (field 'text'), not "
                                f"{'both' if audio else 'neither'}")
        if text and len(text) > settings.max_text_chars:
            raise ApiError(422, f"the text has {len(text)} characters; the limit is {settings.max_text_chars} "
                                "(split it, or start the server with a larger --max-text-chars)")
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise ApiError(422, f"rate {rate} is out of range {RATE_RANGE[0]}-{RATE_RANGE[1]}")
        with _UploadFolder(queue()) as (job_id, folder):
            src, src_kind = _take_source(face, folder, settings, "face", media.VIDEO_EXTS + media.IMAGE_EXTS)
            params = {"source": src, "source_kind": src_kind, "source_name": _display(face.filename),
                      "static": static, "lang": lang, "voice": voice, "rate": rate}
            if audio is not None:
                params["audio"] = _take_audio(audio, folder, settings)
                params["audio_name"] = _display(audio.filename)
            else:
                params["text"] = text
            return _public(queue().submit(Job(id=job_id, kind="dub", params=params)))

    @app.post("/score", status_code=202, summary="score a video's lip sync (against its own or another audio)")
    def create_score(video: UploadFile = File(...), audio: UploadFile | None = File(None)) -> dict:
        audio = audio if audio is not None and audio.filename else None
        with _UploadFolder(queue()) as (job_id, folder):
            src, _ = _take_source(video, folder, settings, "video", media.VIDEO_EXTS)
            params = {"source": src, "source_kind": "video", "source_name": _display(video.filename)}
            if audio is not None:
                params["audio"] = _take_audio(audio, folder, settings)
                params["audio_name"] = _display(audio.filename)
            return _public(queue().submit(Job(id=job_id, kind="score", params=params)))

    @app.get("/jobs", summary="every job, newest first")
    def list_jobs() -> dict:
        return {"jobs": [_public(j) for j in queue().list()]}

    @app.get("/jobs/{job_id}", summary="one job's record")
    def get_job(job_id: str) -> dict:
        return _public(_job(queue(), job_id))

    @app.get("/jobs/{job_id}/events", summary="the job's record as server-sent events until it ends")
    async def job_events(job_id: str) -> StreamingResponse:
        _job(queue(), job_id)
        return StreamingResponse(_events(queue(), job_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/jobs/{job_id}/files/{role}", summary="a job's file: source, audio, speech, result or report")
    def job_file(job_id: str, role: Literal["source", "audio", "speech", "result", "report"]) -> FileResponse:
        job = _job(queue(), job_id)
        name = job.outputs.get(role) or (job.params.get(role) if role in ("source", "audio") else None)
        path = queue().folder(job_id) / name if name else None
        if path is None or not path.is_file():
            raise ApiError(404, f"job {job_id} has no {role} file" + ("" if job.status in FINISHED else
                                                                      f" yet (it is {job.status})"))
        return FileResponse(path, media_type=_media_type(path))

    @app.post("/jobs/{job_id}/cancel", summary="cancel a queued or running job")
    def cancel_job(job_id: str) -> dict:
        _job(queue(), job_id)
        return _public(queue().cancel(job_id))

    @app.delete("/jobs/{job_id}", status_code=204, summary="delete a finished job and its files")
    def delete_job(job_id: str) -> Response:
        _job(queue(), job_id)
        try:
            queue().delete(job_id)
        except JobBusy as e:
            raise ApiError(409, str(e)) from e
        return Response(status_code=204)

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        parts = []
        for err in e.errors():
            field = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
            parts.append(f"field '{field}': {err.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(parts)}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request, e: Exception):
        return JSONResponse({"error": f"internal error ({type(e).__name__}); the server goes on"}, status_code=500)


class _UploadFolder:
    """A fresh job folder for an upload; removed again when the upload is refused (any exception)."""

    def __init__(self, queue: JobQueue):
        self.queue = queue

    def __enter__(self) -> tuple[str, Path]:
        if self.queue.waiting() >= self.queue.max_waiting:  # before the upload is stored (submit checks again)
            raise ApiError(503, f"the queue is full ({self.queue.max_waiting} jobs waiting); try again when a "
                                "job has finished", headers={"Retry-After": "5"})
        self.job_id, folder = self.queue.new_folder()
        return self.job_id, folder

    def __exit__(self, kind, err, tb) -> bool:
        if kind is not None:
            self.queue.discard_folder(self.job_id)
        if isinstance(err, QueueFull):
            raise ApiError(503, str(err), headers={"Retry-After": "5"}) from err
        return False


def _take_source(upload: UploadFile, folder: Path, settings: StudioSettings, field: str,
                 allowed: tuple[str, ...]) -> tuple[str, str]:
    """Save a presenter video/photo as source.<ext>, check it decodes and its length; (file name, kind)."""
    shown = _display(upload.filename)
    path = save_upload(upload, folder, "source", allowed, settings.max_upload_mb, f"{field} {shown}")
    kind = probe_source(path, shown, settings.max_media_s)
    return path.name, kind


def _take_audio(upload: UploadFile, folder: Path, settings: StudioSettings) -> str:
    shown = _display(upload.filename)
    path = save_upload(upload, folder, "audio", media.AUDIO_EXTS + media.VIDEO_EXTS, settings.max_upload_mb,
                       f"audio {shown}")
    probe_audio_s(path, shown, settings.max_media_s)
    return path.name


def _display(name: str | None) -> str:
    """A client's file name for showing only: its last component, printable characters, at most 120."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] not in "CZ"
                   or c == " ")
    return base[:120] or "upload"


def _job(queue: JobQueue, job_id: str) -> Job:
    job = queue.get(job_id) if valid_job_id(job_id) else None
    if job is None:
        raise ApiError(404, f"no job {job_id[:64]!r} (ids are 32 hex digits, as POST /jobs returned them)")
    return job


def _public(job: Job) -> dict:
    out = job.public()
    names = {**{r: job.params.get(r) for r in ("source", "audio")}, **job.outputs}
    out["files"] = {r: f"/jobs/{job.id}/files/{r}" for r in FILE_ROLES if names.get(r)}
    return out


def _media_type(path: Path) -> str:
    types = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".mkv": "video/x-matroska",
             ".avi": "video/x-msvideo", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
             ".flac": "audio/flac", ".ogg": "audio/ogg", ".aac": "audio/aac", ".jpg": "image/jpeg",
             ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp", ".webp": "image/webp",
             ".json": "application/json"}
    return types.get(path.suffix.lower(), "application/octet-stream")


async def _events(queue: JobQueue, job_id: str):
    """Server-sent events: the job's record at each change (event 'progress'), until it is finished."""
    last, quiet = -1, 0.0
    while True:
        job = queue.get(job_id)
        if job is None:
            yield "event: deleted\ndata: {}\n\n"
            return
        if job.version != last:
            last, quiet = job.version, 0.0
            yield f"event: progress\ndata: {json.dumps(_public(job))}\n\n"
            if job.status in FINISHED:
                return
        elif quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(EVENT_POLL_S)
        quiet += EVENT_POLL_S


def _tts_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("synclip.tts") is not None


def serve(settings: StudioSettings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Run the studio until Ctrl+C."""
    import ipaddress

    import uvicorn

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning("the studio has no login: anyone who can reach %s:%d can upload files and run jobs", host, port)

    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


class BackgroundServer:
    """The studio in a thread of this process on a loopback port the OS picks (tests, benchmarks):
    ``with BackgroundServer(settings) as url: ...``; leaving the block stops it and its workers."""

    def __init__(self, settings: StudioSettings, work=None, host: str = "127.0.0.1", startup_s: float = 60.0):
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings, work), log_level="warning", lifespan="on")
        self.server, self.startup_s = uvicorn.Server(config), startup_s
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="synclip-studio")

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.startup_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the studio server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()
