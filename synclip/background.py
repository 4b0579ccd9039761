"""Work on a thread of its own: an iterator produced ahead of its consumer."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Iterator


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
