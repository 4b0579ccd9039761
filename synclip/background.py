"""Work on a thread of its own: an iterator produced ahead of its consumer, and a consumer behind its producer."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any, Callable, Iterator


def prefetched(items: Iterator, depth: int = 4, name: str = "synclip-decode") -> Iterator:
    """The items of ``items``, produced by a thread of their own up to ``depth`` ahead of the caller, so that
    producing them (decoding, detecting: PyAV, OpenCV and mediapipe work mostly outside the GIL) overlaps the
    caller's work. Errors are raised in the caller's thread; closing the iterator stops the thread."""
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    end, failed, stop = object(), [], threading.Event()

    def run() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                waiting.put(item)
        except BaseException as e:  # raised again in the caller's thread
            failed.append(e)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            waiting.put(end)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while (item := waiting.get()) is not end:
            yield item
        if failed:
            raise failed[0]
    finally:
        stop.set()
        while thread.is_alive():  # let the thread finish a put and see the stop
            with contextlib.suppress(queue.Empty):
                waiting.get(timeout=0.1)


class BackgroundSink:
    """The other direction: hands frames to ``write(frame)`` on a thread of its own, so encoding one frame overlaps drawing the next
    (the encoder and the generator each spend most of their time outside the GIL). At most ``depth`` frames
    wait; a full queue makes the caller wait, so memory stays bounded. An error in ``write`` is raised again
    in the caller's thread at its next call or at ``close``.
    """

    def __init__(self, write: Callable[[Any], None], depth: int = 8):
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="synclip-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (frame := self._queue.get()) is not None:
            if not self._error:  # after a failure, frames are only drained
                try:
                    self._write(frame)
                except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
                    self._error.append(e)

    def __call__(self, frame: Any) -> None:
        if self._error:
            raise self._error[0]
        self._queue.put(frame)

    def close(self) -> None:
        """Wait until every frame handed over is written."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error:
            raise self._error[0]

    def __enter__(self) -> "BackgroundSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
