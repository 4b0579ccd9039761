"""Uploads to the studio server: the body size limit, saving under server-chosen names, probing media.

A client's file name gives only an extension, and only one from the allowed list (ASCII, lower-cased); the
file is written to ``<job folder>/<role><ext>`` through a temp name and a rename. Media are probed right
away, so a file that does not decode, or is longer than allowed, is refused with 422 before any job exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import av

from . import media
from .audio import SAMPLE_RATE_HZ
from .errors import SynclipError

COPY_CHUNK_BYTES = 1 << 20
DRAIN_FACTOR = 4  # a too-large body up to this many times the limit is read and dropped, so the client
#                   gets the 413 (a server that stops reading mid-upload leaves most clients a broken pipe)


class ApiError(Exception):
    """An HTTP error answered as JSON ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _too_large(mb: float) -> bytes:
    return json.dumps({"error": f"the upload is larger than the limit of {mb:g} MB "
                                f"(send a smaller file, or start the server with a larger --max-upload-mb)"}
                      ).encode()


class BodyLimit:
    """ASGI middleware: a request body over ``max_mb`` MiB is answered 413, whether it declares its length
    (refused before the app sees it) or not (counted as it arrives; the app's answer is replaced)."""

    def __init__(self, app, max_mb: float):
        self.app, self.max_mb, self.max_bytes = app, max_mb, int(max_mb * 2**20)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            if int(declared) <= DRAIN_FACTOR * self.max_bytes:
                while (await receive()).get("more_body"):
                    pass
            return await _send_json(send, 413, _too_large(self.max_mb))
        seen, over, answered = 0, False, False

        async def counted():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # the app sees the client leave and gives up on the body
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message):
            nonlocal answered
            if not over:
                await send(message)
            elif message["type"] == "http.response.start" and not answered:
                answered = True
                await _send_json(send, 413, _too_large(self.max_mb))

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over and not answered:
            await _send_json(send, 413, _too_large(self.max_mb))


async def _send_json(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def allowed_suffix(filename: str | None, allowed: tuple[str, ...], shown: str) -> str:
    """The extension of a client's file name when it is one of ``allowed``; else ApiError 422."""
    name = (filename or "").strip()
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot >= 0 else ""
    if ext not in allowed:
        kind = f"type {ext!r}" if ext else "name has no extension, so its type"
        raise ApiError(422, f"{shown}: file {kind} is not accepted here; send one of {' '.join(allowed)}")
    return ext


def save_upload(upload, folder: Path, role: str, allowed: tuple[str, ...], max_mb: float, shown: str) -> Path:
    """Copy an upload to ``folder/<role><ext>`` (temp name, then rename); 413 past ``max_mb``, 422 when empty.
    ``shown``: how errors name the file (the field and the client's name, for showing only)."""
    target = folder / f"{role}{allowed_suffix(upload.filename, allowed, shown)}"
    tmp = folder / f".{role}.upload.tmp"
    limit, size = int(max_mb * 2**20), 0
    try:
        with open(tmp, "wb") as out:
            while chunk := upload.file.read(COPY_CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"{shown}: the file is larger than the limit of {max_mb:g} MB "
                                        "(send a smaller file, or start the server with a larger --max-upload-mb)")
                out.write(chunk)
        if size == 0:
            raise ApiError(422, f"{shown}: the file is empty (0 bytes); send the whole file")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _refused(shown: str, e: SynclipError, path: Path) -> ApiError:
    """422 naming the file as uploaded; a decoder's message that quotes the server's copy quotes the upload."""
    fix = f" ({e.fix})" if e.fix else ""
    return ApiError(422, f"{shown}: {e.reason}{fix}".replace(str(path), shown))


def probe_source(path: Path, shown: str, max_s: float) -> str:
    """'video' or 'image' after checking the file decodes and a video is no longer than ``max_s``."""
    try:
        if path.suffix in media.IMAGE_EXTS:
            media.read_image(path)
            return "image"
        info = media.probe_video(path)
    except SynclipError as e:
        raise _refused(shown, e, path) from e
    except Exception as e:  # noqa: BLE001  (a decoder's own error on a hostile file: still a clean refusal)
        raise ApiError(422, f"{shown}: the file could not be decoded ({type(e).__name__}); check it is a "
                            "complete video or photo, or re-export it") from e
    if info.duration_s > max_s:
        raise ApiError(422, f"{shown}: the video lasts {info.duration_s:.1f} s; the limit is {max_s:g} s "
                            "(cut it shorter, or start the server with a larger --max-seconds)")
    return "video"


def probe_audio_s(path: Path, shown: str, max_s: float) -> float:
    """The duration of a file's audio track in seconds, after checking it has one and it is short enough."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ApiError(422, f"{shown}: the file has no audio track (send speech: wav, mp3, m4a, flac)")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                seconds = None
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise ApiError(422, f"{shown}: not a readable audio file ({type(e).__name__}); check it is complete, "
                            "or re-export it as wav") from e
    if seconds is None:  # no declared length: decode it (the body limit bounds how much there is)
        try:
            seconds = len(media.read_audio(path)) / SAMPLE_RATE_HZ
        except SynclipError as e:
            raise _refused(shown, e, path) from e
    if seconds > max_s:
        raise ApiError(422, f"{shown}: the audio lasts {seconds:.1f} s; the limit is {max_s:g} s "
                            "(cut it shorter, or start the server with a larger --max-seconds)")
    return seconds
